"""A sentence-transformers BERT model (safetensors + WordPiece) written as a GGUF for llama.cpp.

Numpy only (the `gguf` and `safetensors` packages; no torch, no transformers). The layout is
llama.cpp's `bert` architecture as its own converter (`convert_hf_to_gguf.py`, `BertModel`)
writes it: tensor names from gguf-py's name map, 1-D tensors, position and token-type
embeddings kept in F32, the WordPiece vocabulary in "phantom space" form (a word-initial piece
gets a leading U+2581, a `##` continuation loses its `##`, special tokens stay as they are),
the special token ids from the tokenizer files, and the pooling of the sentence-transformers
pipeline (`modules.json` → `1_Pooling/config.json`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ModelFileError

#: Bumped whenever the bytes this module writes change: cached files of an older version are
#: made again (the version is part of their stamp, see `model_files.made_path`).
VERSION = 1

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

# HF names that llama.cpp's BERT graph does not use (BertModel.filter_tensors skips the same).
_SKIP = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")
_PHANTOM = "\u2581"  # llama.cpp's word-start marker in a WPM vocabulary


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read {path}: {exc}; reinstall the model's package") from exc


def pooling(model_dir: Path) -> str:
    """"mean" or "cls": how the sentence-transformers pipeline pools token vectors."""
    modules = _json(model_dir / "modules.json") if (model_dir / "modules.json").is_file() else []
    folder = next((m.get("path", "") for m in modules
                   if str(m.get("type", "")).endswith("models.Pooling")), "1_Pooling")
    cfg = _json(model_dir / folder / "config.json")
    if cfg.get("pooling_mode_mean_tokens"):
        return "mean"
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    raise ModelFileError(f"{model_dir}: only mean or CLS pooling can be converted, not {cfg}")


def max_seq_length(model_dir: Path, default: int = 512) -> int:
    """The sentence-transformers truncation length (word pieces incl. [CLS] and [SEP])."""
    path = model_dir / "sentence_bert_config.json"
    return int(_json(path).get("max_seq_length", default)) if path.is_file() else default


def _vocab(model_dir: Path) -> tuple[list[str], list[int]]:
    """Tokens in phantom-space form and their llama.cpp token types, by id."""
    import gguf

    tok = _json(model_dir / "tokenizer.json")
    model = tok.get("model", {})
    if model.get("type") != "WordPiece":
        raise ModelFileError(f"{model_dir}: not a WordPiece tokenizer ({model.get('type')})")
    by_id = {int(i): t for t, i in model["vocab"].items()}
    added = {int(a["id"]): a for a in tok.get("added_tokens", [])}
    by_id.update({i: a["content"] for i, a in added.items()})
    prefix = model.get("continuing_subword_prefix", "##")
    tokens: list[str] = []
    types: list[int] = []
    for i in range(max(by_id) + 1):
        text = by_id.get(i)
        if text is None:  # a hole in the ids: llama.cpp wants every id named
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL if added[i].get("special")
                         else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(text[len(prefix):] if text.startswith(prefix) else _PHANTOM + text)
            types.append(gguf.TokenType.NORMAL)
    return tokens, types


def convert(model_dir: Path, out: Path, *, f16: bool, name: str = "",
            progress: Progress | None = None) -> None:
    """Write the GGUF of the sentence-transformers BERT model in `model_dir` to `out`."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    cfg = _json(model_dir / "config.json")
    if cfg.get("model_type") != "bert" or cfg.get("position_embedding_type",
                                                  "absolute") != "absolute":
        raise ModelFileError(f"{model_dir}: not a BERT model with absolute positions")
    n_layer = int(cfg["num_hidden_layers"])
    weights = load_file(str(model_dir / "model.safetensors"))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    always_f32 = (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES)
    tensors: list[tuple[str, np.ndarray]] = []
    for hf_name in sorted(weights):
        short = hf_name.removeprefix("bert.")
        if short in _SKIP:
            continue
        found = names.get_type_and_name(short, try_suffixes=(".weight", ".bias"))
        if found is None:
            raise ModelFileError(f"{model_dir}: tensor {hf_name!r} has no llama.cpp BERT name")
        kind, new_name = found
        data = weights[hf_name].astype(np.float32)
        if f16 and data.ndim > 1 and kind not in always_f32:
            data = data.astype(np.float16)
        tensors.append((new_name, np.ascontiguousarray(data)))

    tokens, types = _vocab(model_dir)
    w = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    w.add_name(name or model_dir.name)
    w.add_block_count(n_layer)
    w.add_context_length(int(cfg["max_position_embeddings"]))
    w.add_embedding_length(int(cfg["hidden_size"]))
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_head_count(int(cfg["num_attention_heads"]))
    w.add_layer_norm_eps(float(cfg.get("layer_norm_eps", 1e-12)))
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN if pooling(model_dir) == "mean"
                       else gguf.PoolingType.CLS)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_type_count(int(cfg.get("type_vocab_size", 1)))
    # [CLS] is llama.cpp's BOS for BERT (SpecialVocab takes it as such); a separate "cls" id has
    # no key in the format, so it is not asked for.
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens),
                      special_token_types=("bos", "eos", "unk", "sep", "pad", "mask"),
                      ).add_to_gguf(w, quiet=True)
    for tname, data in tensors:
        w.add_tensor_info(tname, data.shape, data.dtype, data.nbytes)

    total = sum(d.nbytes for _, d in tensors)
    done = 0
    w.write_header_to_file(out)
    try:
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for _, data in tensors:
            w.write_tensor_data(data)
            done += data.nbytes
            if progress:
                progress(done, total)
        w.flush()
    finally:
        w.close()
