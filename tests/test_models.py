"""The model catalog, tag lookup and what-fits recommendations."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dskit.errors import ConfigurationError
from dskit.models import family
from dskit.models.family import (
    FACTS,
    FIGURES,
    GB,
    THINKING_CONTROLS,
    WHERE,
    ModelSpec,
    catalog,
    platform_mode,
    reported,
    spec_for,
    specs,
)
from dskit.models.fit import GPU_RESERVE_GB, ROOMY, Machine, ram_headroom_gb, recommend
from dskit.models.manage import MEASURE_COLUMNS, lesson, measure
from dskit.sysinfo import GPU, CpuLoad
from dskit.weights import files as model_files

# Download sizes of the Ollama tags run on this machine (ollama.com/library/deepseek-r1 and
# deepseek-v3): the only DeepSeek rows recommend() assesses.
SIZES = {
    "deepseek-r1:1.5b": 1.1, "deepseek-r1:7b": 4.7, "deepseek-r1:8b": 5.2,
    "deepseek-r1:8b-llama-distill-q4_K_M": 4.9, "deepseek-r1:14b": 9.0, "deepseek-r1:32b": 20.0,
    "deepseek-r1:70b": 43.0, "deepseek-r1:671b": 404.0, "deepseek-r1:671b-q4_K_M": 404.0,
    "deepseek-v3:671b": 404.0,
}
# The January distills (the paper's table reports all four scores for them).
DISTILLS = ["deepseek-r1:1.5b", "deepseek-r1:7b", "deepseek-r1:8b-llama-distill-q4_K_M",
            "deepseek-r1:14b", "deepseek-r1:32b", "deepseek-r1:70b"]
# A local Ollama tag whose download size the catalog could not find: listed, never assessed.
UNSIZED = {"deepseek-v3.1:671b"}
# Rows that do not run on this machine: Ollama cloud tags, platform names, open weights only.
ELSEWHERE = {"deepseek-v4-flash:cloud", "deepseek-v4-pro:cloud", "deepseek-flash",
             "deepseek-ai/DeepSeek-V3.1-Terminus", "deepseek-ai/DeepSeek-V3.2-Exp",
             "deepseek-ai/DeepSeek-V3.2", "deepseek-ai/DeepSeek-V3.2-Speciale"}
HYBRID = {"deepseek-v3.1:671b", "deepseek-ai/DeepSeek-V3.1-Terminus",
          "deepseek-ai/DeepSeek-V3.2-Exp", "deepseek-ai/DeepSeek-V3.2", "deepseek-v4-flash:cloud",
          "deepseek-v4-pro:cloud", "deepseek-flash"}
FITS = {"GPU", "partial GPU", "CPU only", "tight", "does not fit"}
MIB = 2**20


def said(df: pd.DataFrame, key: str = "summary") -> str:
    """A sentence dskit stores in `df.attrs`, its wrapped lines joined again."""
    return df.attrs[key].replace("\n  ", " ")


def by_tag(df):
    return df.set_index("tag")


# Fake machines: GPU hosts are not available here, so their hardware is described, not probed.
def laptop() -> Machine:
    return Machine(gpus=[], ram_total=int(8 * GB), ram_available=int(6.5 * GB),
                   disk_free=int(200 * GB), disk_path="/home/me/.ollama/models")


def rtx4090() -> Machine:
    return Machine(gpus=[GPU("NVIDIA GeForce RTX 4090", 24564, 400, "550.54")],
                   ram_total=int(64 * GB), ram_available=int(56 * GB), disk_free=int(1000 * GB))


def a100_node() -> Machine:
    gpus = [GPU("NVIDIA A100-SXM4-80GB", 81920, 0, "550.54") for _ in range(2)]
    return Machine(gpus=gpus, ram_total=int(256 * GB), ram_available=int(240 * GB),
                   disk_free=int(2000 * GB))


def tiny_disk() -> Machine:
    return Machine(gpus=[], ram_total=int(32 * GB), ram_available=int(28 * GB),
                   disk_free=int(3 * GB), disk_path="/data/ollama")


def test_catalog_has_every_tag_with_its_download_size():
    df = by_tag(catalog())
    for tag, gb in SIZES.items():
        assert df.loc[tag, "download_GB"] == gb
    for col in ("params", "base", "architecture", "download_GB", "memory_GB", "context",
                "AIME2024", "MATH500", "GPQA", "LiveCodeBench", "deepseek", "note"):
        assert col in df.columns
    assert df.loc["deepseek-r1:7b", "base"] == "Qwen2.5-Math-7B"
    assert df.loc["deepseek-r1:70b", "base"] == "Llama-3.3-70B-Instruct"
    # deepseek-r1:8b is the R1-0528 Qwen3-8B distill; the Llama one kept its explicit tag
    assert df.loc["deepseek-r1:8b", "architecture"] == "qwen3"
    assert df.loc["deepseek-r1:8b-llama-distill-q4_K_M", "architecture"] == "llama"


def test_catalog_shows_where_each_model_runs_and_how_it_thinks():
    df = by_tag(catalog())
    for col in ("where", "local", "hybrid", "active_params", "AIME2025", "thinking_control",
                "tools_while_thinking", "effort_levels"):
        assert col in df.columns, col
    assert df.loc["deepseek-r1:7b", "where"] == "ollama" and df.loc["deepseek-r1:7b", "local"]
    assert df.loc["deepseek-v4-pro:cloud", "where"] == "ollama-cloud, platform, weights"
    assert df.loc["deepseek-v4-pro:cloud", "effort_levels"] == "low/high/max"
    assert df.loc["deepseek-v3.1:671b", "thinking_control"] == (
        "ollama think, chat_template_kwargs thinking")
    assert set(df.index[df["hybrid"]]) == HYBRID
    assert set(df.index[~df["local"]]) == ELSEWHERE
    # a model that does not run here has no memory need, and says why in its sources
    for tag in ELSEWHERE | UNSIZED:
        assert pd.isna(df.loc[tag, "memory_GB"]), tag
        assert catalog().attrs["sources"][tag]["memory_gb"].startswith("None"), tag
    assert "ollama-cloud" in catalog().attrs["where"]


def test_catalog_is_sorted_by_size_and_can_leave_out_stand_ins():
    full = catalog()
    sized = list(full["params"].dropna())
    assert sized == sorted(sized)
    assert full["params"].isna().sum() == 1 and pd.isna(full["params"].iloc[-1])  # V4.1-Flash
    only_ds = catalog(include_standins=False)
    assert set(only_ds["tag"]) == set(SIZES) | UNSIZED | ELSEWHERE
    assert only_ds["deepseek"].all()


def test_every_figure_names_its_source():
    for spec in specs():
        assert set(FIGURES) | set(FACTS) <= set(spec.sources), spec.tag
        assert all(spec.sources[k].strip() for k in (*FIGURES, *FACTS)), spec.tag
    assert set(catalog().attrs["sources"]) == {s.tag for s in specs()}


MISSING = ("not found", "None", "not applicable", "not reported")


@pytest.mark.parametrize("spec", specs(), ids=lambda s: s.tag)
def test_a_figure_that_is_missing_says_so_in_its_source(spec):
    """No number is made up: a None figure's source says it was not found (or why none)."""
    for figure, value in (("params_b", spec.params_b), ("download_gb", spec.download_gb),
                          ("context_length", spec.context_length),
                          ("memory_gb", spec.memory_gb)):
        if value is None:
            assert any(w in spec.sources[figure] for w in MISSING), (spec.tag, figure)
    scores = (spec.aime2024, spec.aime2025, spec.math500, spec.gpqa_diamond, spec.livecodebench)
    if spec.deepseek and any(v is None for v in scores):
        assert any(w in spec.sources["scores"] for w in MISSING) or spec.tag in (
            "deepseek-v3:671b",  # its source says why LiveCodeBench is not mixed in
            *(s.tag for s in specs() if s.family == "deepseek-r1" and s.aime2025 is None),
        ), spec.tag


def test_new_rows_quote_what_their_sources_say():
    sources = spec_for("deepseek-r1:671b").sources
    assert "'AIME 2025 (Pass@1) | 70.0 | 87.5'" in sources["scores"]
    assert "93.1" in spec_for("deepseek-v3.1:671b").sources["scores"]
    assert "'| DeepSeek-R1-0528-Qwen3-8B | 86.0 | 76.3" in spec_for("deepseek-r1:8b").sources[
        "scores"]
    assert "low / high / max" in spec_for("deepseek-v4-pro").sources["effort_levels"]
    assert "July 15, 2026" in spec_for("deepseek-v3.1:671b").sources["where"]


def test_facts_use_the_documented_vocabulary():
    for spec in specs():
        assert spec.where and set(spec.where) <= set(WHERE), spec.tag
        assert spec.thinking_control and set(spec.thinking_control) <= set(THINKING_CONTROLS)
        assert not set(spec.effort_levels) - {"low", "high", "max"}, spec.tag
        if spec.hybrid:  # a hybrid model's thinking is switched somehow
            assert not set(spec.thinking_control) & {family.ALWAYS, family.NEVER}, spec.tag
        if spec.effort_levels:
            assert spec.hybrid, spec.tag
    for tag in (*DISTILLS, "deepseek-r1:8b", "deepseek-r1:671b", "deepseek-r1:671b-q4_K_M"):
        spec = spec_for(tag)
        assert not spec.hybrid and spec.thinking_control == ("always",), tag
    assert spec_for("deepseek-v3:671b").thinking_control == ("never",)


def test_hybrid_flags_and_tools_while_thinking():
    v31, v32 = spec_for("deepseek-v3.1:671b"), spec_for("deepseek-ai/DeepSeek-V3.2")
    assert v31.hybrid and not v31.tool_calls_while_thinking  # tools only without thinking
    assert v32.hybrid and v32.tool_calls_while_thinking  # "thinking with tools"
    assert spec_for("deepseek-r1:671b").tool_calls_while_thinking  # R1-0528: function calling
    assert not spec_for("deepseek-r1:671b-q4_K_M").tool_calls_while_thinking  # January R1
    speciale = spec_for("deepseek-ai/DeepSeek-V3.2-Speciale")
    assert not speciale.hybrid and not speciale.tool_calls_while_thinking
    assert spec_for("deepseek-v4-flash:cloud").effort_levels == ("high", "max")
    assert spec_for("deepseek-flash").effort_levels == ("low", "high", "max")
    assert spec_for("deepseek-v3.1:671b").effort_levels == ()


def test_published_scores_for_every_r1_model():
    df = by_tag(catalog())
    for tag in [*DISTILLS, "deepseek-r1:671b-q4_K_M"]:
        assert df.loc[tag, ["AIME2024", "MATH500", "GPQA", "LiveCodeBench"]].notna().all(), tag
    for tag in ("deepseek-r1:8b", "deepseek-r1:671b"):  # R1-0528: no MATH-500, AIME 2025 too
        assert df.loc[tag, ["AIME2024", "AIME2025", "GPQA", "LiveCodeBench"]].notna().all(), tag
        assert pd.isna(df.loc[tag, "MATH500"]), tag
    assert tuple(df.loc["deepseek-r1:7b", ["AIME2024", "MATH500", "GPQA", "LiveCodeBench"]]) == (
        55.5, 92.8, 49.1, 37.6)
    assert df.loc["deepseek-r1:671b-q4_K_M", "AIME2024"] == 79.8
    assert tuple(df.loc["deepseek-r1:671b", ["AIME2024", "AIME2025", "GPQA", "LiveCodeBench"]]
                 ) == (91.4, 87.5, 81.0, 73.3)
    assert tuple(df.loc["deepseek-r1:8b", ["AIME2024", "AIME2025", "GPQA", "LiveCodeBench"]]
                 ) == (86.0, 76.3, 61.1, 60.5)
    assert tuple(df.loc["deepseek-v3.1:671b", ["AIME2024", "AIME2025", "GPQA", "LiveCodeBench"]]
                 ) == (93.1, 88.4, 80.1, 74.8)
    # Distillation helps with size, as the paper reports.
    assert df.loc["deepseek-r1:1.5b", "AIME2024"] < df.loc["deepseek-r1:32b", "AIME2024"]


def test_stand_ins_are_marked_not_deepseek():
    for name, model in model_files.STANDINS.items():
        spec = spec_for(name)
        assert spec is not None
        assert spec.family == "stand-in" and not spec.deepseek
        assert "not DeepSeek" in spec.note
        assert spec.download_gb == pytest.approx(model.size / GB, abs=1e-3)
        assert spec.aime2024 is None


def test_notes_say_what_the_tags_hide():
    assert "R1-0528 Qwen3-8B" in spec_for("deepseek-r1:8b").note
    assert "deepseek-r1:8b-llama-distill-q4_K_M" in spec_for("deepseek-r1:8b").note
    assert "January R1" in spec_for("deepseek-r1:671b").note
    for tag in ("deepseek-r1:671b", "deepseek-r1:671b-q4_K_M", "deepseek-v3:671b"):
        spec = spec_for(tag)
        assert spec.active_params_b == 37.0 and spec.params_b == 671.0
        assert "641 GB" in spec.note


def test_memory_is_weights_plus_kv_cache_plus_overhead():
    spec = spec_for("deepseek-r1:7b")
    kv = spec.kv_bytes_per_token * 8192 / GB
    assert spec.memory_gb == round(spec.download_gb + kv + 1.0, 1)
    assert spec.memory_gb_at(32768) > spec.memory_gb > spec.download_gb
    for s in specs():
        if s.memory_gb is not None:
            assert s.memory_gb > s.download_gb
        else:
            assert not s.local or s.download_gb is None, s.tag


def test_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec_for("deepseek-r1:7b").download_gb = 1.0  # type: ignore[misc]
    assert isinstance(spec_for("deepseek-r1:7b"), ModelSpec)


@pytest.mark.parametrize(("tag", "expected"), [
    ("deepseek-r1:7b", "deepseek-r1:7b"),
    ("deepseek-r1:latest", "deepseek-r1:8b"),
    ("deepseek-r1", "deepseek-r1:8b"),
    ("deepseek-r1:7b-qwen-distill-q4_K_M", "deepseek-r1:7b"),
    ("deepseek-r1:1.5b-qwen-distill-fp16", "deepseek-r1:1.5b"),
    ("deepseek-r1:70b-llama-distill-q8_0", "deepseek-r1:70b"),
    ("deepseek-r1:671b-q8_0", "deepseek-r1:671b-q4_K_M"),  # the January build's variants
    ("deepseek-r1:671b-0528-fp16", "deepseek-r1:671b"),
    ("deepseek-r1:671b-0528-q4_K_M", "deepseek-r1:671b"),
    ("deepseek-r1:8b-0528-qwen3-q8_0", "deepseek-r1:8b"),
    ("deepseek-r1:8b-llama-distill-fp16", "deepseek-r1:8b-llama-distill-q4_K_M"),
    ("deepseek-v3.1", "deepseek-v3.1:671b"),
    ("deepseek-v3.1:671b-cloud", "deepseek-v3.1:671b"),
    ("deepseek-v3.1:671b-q4_K_M", "deepseek-v3.1:671b"),
    ("deepseek-v3.2:cloud", "deepseek-ai/DeepSeek-V3.2"),
    ("deepseek-v4-flash:cloud", "deepseek-v4-flash:cloud"),
    ("deepseek-v4-pro:cloud", "deepseek-v4-pro:cloud"),
    ("DeepSeek-R1:14B", "deepseek-r1:14b"),
    ("registry.ollama.ai/library/deepseek-r1:32b", "deepseek-r1:32b"),
    ("deepseek-v3", "deepseek-v3:671b"),
    ("smollm2:135m", "smollm2:135m"),
    ("qwen2.5-coder:0.5b", "qwen2.5-coder:0.5b"),
    ("llama3:8b", None),
    ("deepseek-r1:3b", None),
    ("deepseek-r1:unknown", None),
    ("deepseek-v5", None),
])
def test_spec_for_tag_variants(tag, expected):
    spec = spec_for(tag)
    assert (spec.tag if spec else None) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("deepseek-ai/DeepSeek-V3.1", "deepseek-v3.1:671b"),
    ("deepseek-ai/deepseek-v3.1", "deepseek-v3.1:671b"),
    ("https://huggingface.co/deepseek-ai/DeepSeek-R1-0528", "deepseek-r1:671b"),
    ("hf.co/deepseek-ai/DeepSeek-R1-0528-Qwen3-8B", "deepseek-r1:8b"),
    ("deepseek-ai/DeepSeek-R1", "deepseek-r1:671b-q4_K_M"),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "deepseek-r1:8b-llama-distill-q4_K_M"),
    ("deepseek-ai/DeepSeek-V3.2-Exp", "deepseek-ai/DeepSeek-V3.2-Exp"),
    ("deepseek-ai/DeepSeek-V3.2-Speciale", "deepseek-ai/DeepSeek-V3.2-Speciale"),
    ("deepseek-ai/DeepSeek-V4-Flash", "deepseek-v4-flash:cloud"),
    ("deepseek-ai/DeepSeek-V4-Pro", "deepseek-v4-pro:cloud"),
    ("deepseek-ai/DeepSeek-V9", None),
])
def test_spec_for_hugging_face_names(name, expected):
    spec = spec_for(name)
    assert (spec.tag if spec else None) == expected


@pytest.mark.parametrize(("name", "expected", "mode"), [
    # DeepSeek's platform now: deepseek-flash is V4.1-Flash, which also serves the old V4 names
    ("deepseek-flash", "deepseek-flash", None),
    ("deepseek-v4-flash", "deepseek-flash", None),
    ("deepseek-v4-flash-vision-exp", "deepseek-flash", None),
    ("deepseek-v4-pro", "deepseek-v4-pro:cloud", None),
    # retired on 2026-07-24: they find the model they last reached, in a fixed mode
    ("deepseek-chat", "deepseek-v4-flash:cloud", "non-thinking"),
    ("DeepSeek-Reasoner", "deepseek-v4-flash:cloud", "thinking"),
    ("deepseek-coder", None, None),
])
def test_spec_for_platform_names(name, expected, mode):
    spec = spec_for(name)
    assert (spec.tag if spec else None) == expected
    assert platform_mode(name) == mode
    if spec is not None:
        assert family.PLATFORM in spec.where or name.lower() in family.RETIRED_PLATFORM_NAMES


def test_no_gpu_laptop_runs_small_sizes_on_the_cpu():
    df = recommend(laptop())
    rows = by_tag(df)
    assert set(df["fit"]) <= FITS and "GPU" not in set(df["fit"])
    assert rows.loc["deepseek-r1:1.5b", "fit"] == "CPU only"
    assert "slowly" in rows.loc["deepseek-r1:1.5b", "advice"]
    # 7b needs 6.2 of the 6.5 GB available: it would leave less than 1 GB free, so it is tight
    assert rows.loc["deepseek-r1:7b", "fit"] == "tight"
    assert "6.2 GB of 6.5 GB available RAM" in rows.loc["deepseek-r1:7b", "advice"]
    for tag in ("deepseek-r1:14b", "deepseek-r1:70b", "deepseek-r1:671b"):
        assert rows.loc[tag, "fit"] == "does not fit"
        assert rows.loc[tag, "why_not"].startswith("memory")
        assert "smaller size" in rows.loc[tag, "advice"]
        assert pd.isna(rows.loc[tag, "load_time"]) and pd.isna(rows.loc[tag, "speed"])
    summary = said(df)
    assert summary.startswith("No GPU found")
    assert "deepseek-r1:1.5b runs on the CPU" in summary
    assert "deepseek-r1:7b is tight: less than 1.0 GB of RAM would stay free" in summary
    assert "do not fit in memory" in summary and "suggested: deepseek-r1:1.5b" in summary
    assert set(df["tag"]) == set(SIZES)  # stand-ins only on request


def test_24gb_gpu_runs_up_to_32b_and_offloads_70b():
    df = recommend(rtx4090())
    rows = by_tag(df)
    for tag in ("deepseek-r1:1.5b", "deepseek-r1:7b", "deepseek-r1:14b", "deepseek-r1:32b"):
        assert rows.loc[tag, "fit"] == "GPU", tag
    assert rows.loc["deepseek-r1:70b", "fit"] == "partial GPU"
    assert "on the GPU" in rows.loc["deepseek-r1:70b", "advice"]
    assert rows.loc["deepseek-r1:671b", "fit"] == "does not fit"
    assert rows.loc["deepseek-r1:7b", "speed"].startswith("fast")
    assert rows.loc["deepseek-r1:7b", "load_time"] == "seconds"
    assert rows.loc["deepseek-r1:70b", "load_time"] == "tens of seconds"
    summary = said(df)
    assert summary.startswith("1 GPU (NVIDIA GeForce RTX 4090")
    assert "run fully on the GPU" in summary and "suggested: deepseek-r1:32b" in summary


def test_two_80gb_gpus_hold_70b_but_not_671b():
    rows = by_tag(recommend(a100_node()))
    assert rows.loc["deepseek-r1:70b", "fit"] == "GPU"
    assert "split" not in rows.loc["deepseek-r1:70b", "advice"]  # one 80 GB card suffices
    assert rows.loc["deepseek-r1:671b", "fit"] == "does not fit"
    assert "vLLM/SGLang" in rows.loc["deepseek-r1:671b", "advice"]
    assert rows.loc["deepseek-r1:671b", "download_fits_disk"]


def test_two_24gb_gpus_split_70b_across_both():
    two = Machine(gpus=[GPU("NVIDIA GeForce RTX 3090", 24576, 0, "550")] * 2,
                  ram_total=int(128 * GB), ram_available=int(120 * GB),
                  disk_free=int(500 * GB))
    rows = by_tag(recommend(two))
    assert rows.loc["deepseek-r1:70b", "fit"] == "GPU"
    assert "split across 2" in rows.loc["deepseek-r1:70b", "advice"]
    assert said(recommend(two)).startswith("2 GPUs (NVIDIA GeForce RTX 3090")


def test_tiny_disk_refuses_downloads_that_do_not_fit():
    df = recommend(tiny_disk())
    rows = by_tag(df)
    assert rows.loc["deepseek-r1:1.5b", "fit"] == "CPU only"
    assert rows.loc["deepseek-r1:1.5b", "download_fits_disk"]
    assert rows.loc["deepseek-r1:7b", "fit"] == "does not fit"
    assert rows.loc["deepseek-r1:7b", "why_not"] == "disk"
    assert not rows.loc["deepseek-r1:7b", "download_fits_disk"]
    assert "OLLAMA_MODELS" in rows.loc["deepseek-r1:7b", "advice"]
    assert "/data/ollama" in rows.loc["deepseek-r1:7b", "advice"]
    assert rows.loc["deepseek-r1:671b", "why_not"] == "memory and disk"
    assert "do not fit on disk (3.0 GB free)" in said(df)


def test_stand_ins_fit_anywhere_when_asked_for():
    rows = by_tag(recommend(laptop(), include_standins=True))
    assert rows.loc["smollm2:135m", "fit"] == "CPU only"
    assert "not DeepSeek" in rows.loc["qwen2.5-coder:0.5b", "advice"]


def big_node() -> Machine:
    """Eight 141 GB cards and 2 TB of RAM: room for anything that runs locally."""
    gpus = [GPU("NVIDIA H200", 141 * 1024, 0, "560") for _ in range(8)]
    return Machine(gpus=gpus, ram_total=int(2048 * GB), ram_available=int(2000 * GB),
                   disk_free=int(8000 * GB))


@pytest.mark.parametrize("machine", [laptop, rtx4090, a100_node, tiny_disk, big_node])
def test_models_that_do_not_run_here_are_never_assessed_nor_suggested(machine):
    for standins in (False, True):
        df = recommend(machine(), include_standins=standins)
        assert not set(df["tag"]) & (ELSEWHERE | UNSIZED)
        assert all(spec_for(t).local for t in df["tag"])
        suggested = re.search(r"suggested: (\S+?)\.(?:\s|$)", said(df))
        if suggested:
            assert spec_for(suggested.group(1)).local
    # the local tag without a size is named, so its absence is not a silent one
    assert "deepseek-v3.1:671b is not assessed" in said(recommend(machine()))


def test_a_big_node_runs_the_full_models_locally_but_not_the_cloud_ones():
    df = recommend(big_node())
    rows = by_tag(df)
    assert rows.loc["deepseek-r1:671b", "fit"] == "GPU"  # R1-0528, 446 GB over eight cards
    assert "deepseek-v4-pro:cloud" not in rows.index and "deepseek-flash" not in rows.index
    assert "suggested: deepseek-" in said(df)


def test_this_machine():
    m = Machine.read()
    assert m.ram_total >= m.ram_available > 0 and m.disk_free > 0 and m.disk_path
    df = recommend()
    assert list(df.columns) == ["tag", "download_GB", "memory_GB", "fit", "download_fits_disk",
                                "why_not", "load_time", "speed", "tokens_per_s", "advice"]
    assert set(df["tag"]) == set(SIZES) and set(df["fit"]) <= FITS
    assert df["advice"].str.len().gt(0).all()
    summary = said(df)
    assert summary.endswith(".")
    if not m.gpus:
        assert summary.startswith("No GPU found")
        assert "GPU" not in set(df["fit"])


def test_a_size_rated_too_slow_is_never_the_suggestion():
    two_cores = Machine(ram_total=int(24 * GB), ram_available=int(22 * GB),
                        disk_free=int(80 * GB), cpu_bandwidth_gbs=12.0)
    df = recommend(two_cores)
    rows = by_tag(df)
    assert rows.loc["deepseek-r1:8b", "tokens_per_s"] < 10  # fits in RAM, but ~2 tok/s
    suggested = said(df).split("suggested: ")[1].rstrip(".")
    assert rows.loc[suggested, "tokens_per_s"] >= 10
    slower = Machine(ram_total=int(24 * GB), ram_available=int(22 * GB),
                     disk_free=int(80 * GB), cpu_bandwidth_gbs=4.0)
    summary = said(recommend(slower))
    assert "suggested" not in summary and "no DeepSeek size is usable here" in summary
    assert "use a GPU instance" in summary


def test_measured_speed_calibrates_the_cpu_estimate():
    machine = Machine(ram_total=int(24 * GB), ram_available=int(22 * GB), disk_free=int(80 * GB))
    fast = by_tag(recommend(machine, measured={"qwen2.5-coder:0.5b": 60.0}))
    slow = by_tag(recommend(machine, measured={"qwen2.5-coder:0.5b": 6.0}))
    assert fast.loc["deepseek-r1:7b", "tokens_per_s"] == pytest.approx(
        10 * slow.loc["deepseek-r1:7b", "tokens_per_s"], rel=0.05)
    assert "measured here" in recommend(machine, measured={"qwen2.5-coder:0.5b": 6.0}).attrs[
        "assumptions"]
    with pytest.raises(ConfigurationError):
        recommend(machine, measured={"unknown:1b": 5.0})


# --- memory headroom: a model that fits only into the margin is tight, never "runs" ----------

def test_a_model_needing_nearly_all_the_memory_is_tight_not_runs():
    """Issue 27: 32b was said to run with 23.1 of 23.9 GB needed."""
    machine = Machine(ram_total=int(32 * GB), ram_available=int(23.9 * GB),
                      disk_free=int(200 * GB), cpu_bandwidth_gbs=12.0)
    df = recommend(machine)
    rows = by_tag(df)
    assert rows.loc["deepseek-r1:32b", "memory_GB"] == 23.1
    assert rows.loc["deepseek-r1:32b", "fit"] == "tight"
    advice = rows.loc["deepseek-r1:32b", "advice"]
    assert "23.1 GB of 23.9 GB available RAM" in advice and "less than 2.4 GB" in advice
    assert rows.loc["deepseek-r1:14b", "fit"] == "CPU only"  # 11.6 GB leaves plenty
    summary = said(df)
    assert "deepseek-r1:32b is tight" in summary and "32b run" not in summary
    assert "2.4 GB of RAM" in said(df, "assumptions")


def test_a_gpu_nearly_full_spills_to_the_cpu_instead_of_running_fully_on_it():
    # 7b needs 6.2 GB; 6.5 GB free on the card leaves less than the CUDA reserve of 0.5 GB
    card = Machine(gpus=[GPU("NVIDIA GeForce RTX 3060", 6200, 0, "550")],
                   ram_total=int(32 * GB), ram_available=int(28 * GB), disk_free=int(200 * GB))
    assert by_tag(recommend(card)).loc["deepseek-r1:7b", "fit"] == "partial GPU"
    roomier = dataclasses.replace(card, gpus=[GPU("NVIDIA GeForce RTX 3060", 8192, 0, "550")])
    assert by_tag(recommend(roomier)).loc["deepseek-r1:7b", "fit"] == "GPU"


def test_gpu_and_ram_together_nearly_full_are_tight():
    # 70b needs 46.7 GB: 25.3 GB free VRAM + 23 GB RAM hold it only without the headroom
    machine = Machine(gpus=[GPU("NVIDIA GeForce RTX 4090", 24564, 400, "550.54")],
                      ram_total=int(32 * GB), ram_available=int(23 * GB), disk_free=int(500 * GB))
    df = recommend(machine)
    row = by_tag(df).loc["deepseek-r1:70b"]
    assert row["fit"] == "tight" and "0.5 GB per GPU" in row["advice"]
    assert "suggested: deepseek-r1:32b" in said(df)  # 32b still fits the card


def test_no_suggestion_when_every_fitting_size_is_tight():
    cramped = Machine(ram_total=int(4 * GB), ram_available=int(1.8 * GB), disk_free=int(50 * GB),
                      cpu_bandwidth_gbs=20.0)
    df = recommend(cramped)
    assert by_tag(df).loc["deepseek-r1:1.5b", "fit"] == "tight"  # 1.6 of 1.8 GB
    summary = said(df)
    assert "suggested" not in summary and "no DeepSeek size fits with memory to spare" in summary


gpu_cards = st.lists(st.integers(0, 96 * 1024).map(lambda mib: GPU("NVIDIA", mib, 0, "550")),
                     max_size=3)


@settings(max_examples=60, deadline=None)
@given(gpus=gpu_cards, ram=st.floats(0.5, 600), disk=st.floats(0, 3000))
def test_every_size_that_runs_leaves_the_headroom_free(gpus, ram, disk):
    machine = Machine(gpus=gpus, ram_total=int(ram * 1.2 * GB), ram_available=int(ram * GB),
                      disk_free=int(disk * GB))
    spare_vram = sum(max(0.0, v - GPU_RESERVE_GB) for v in machine.vram_free_gb())
    usable = spare_vram + max(0.0, ram - ram_headroom_gb(ram))
    everything = sum(machine.vram_free_gb()) + ram
    df = recommend(machine, include_standins=True)
    for row in df.to_dict("records"):
        if row["fit"] in ROOMY:
            assert row["memory_GB"] <= usable + 1e-9, row
        elif row["fit"] == "tight":
            assert usable < row["memory_GB"] <= everything + 1e-9, row
        else:
            assert row["why_not"] == "disk" or row["memory_GB"] > everything, row
    suggested = re.search(r"suggested: (\S+?)\.(?:\s|$)", said(df))
    if suggested:
        assert by_tag(df).loc[suggested.group(1), "fit"] in ROOMY


# --- a busy CPU: said, and a speed measured under load does not flip the suggestion ----------

TWO_CORES = Machine(ram_total=int(24 * GB), ram_available=int(22 * GB), disk_free=int(80 * GB),
                    cpu_bandwidth_gbs=12.0)


def _speeds(tps: float, busy: bool) -> pd.DataFrame:
    df = pd.DataFrame([{"model": "qwen2.5-coder:0.5b", "params_B": 0.5, "file_GB": 0.49,
                        "load_s": 0.5, "memory_GB": 0.6, "tokens_per_s": tps, "ttft_s": 0.3,
                        "cpu_busy": busy}], columns=MEASURE_COLUMNS)
    df.attrs["cpu_load"] = {"qwen2.5-coder:0.5b": CpuLoad(1.6 if busy else 0.1, 2, 4.0)}
    return df


def test_a_speed_measured_on_a_busy_cpu_does_not_flip_the_suggestion():
    """Issue 27: notebook 02 swung from '1.5b suggested' to 'no size usable' with the load."""
    alone = said(recommend(TWO_CORES))
    assert "suggested: deepseek-r1:1.5b" in alone
    loaded = recommend(TWO_CORES, measured=_speeds(5.0, busy=True))
    assert "suggested: deepseek-r1:1.5b" in said(loaded)
    assert ("The speed measured for qwen2.5-coder:0.5b is not used: the CPU was busy then "
            "(other programs kept 1.6 of 2 cores busy)" in said(loaded))
    assert "estimated from the CPU cores" in said(loaded, "assumptions")
    # The same slow speed measured on an idle CPU is the machine's own: it is believed.
    idle = recommend(TWO_CORES, measured=_speeds(5.0, busy=False))
    assert "no DeepSeek size is usable here" in said(idle)
    assert "not used" not in said(idle)
    assert "measured here" in said(idle, "assumptions")


def test_recommend_says_when_the_cpu_is_busy_now():
    busy = dataclasses.replace(TWO_CORES, cpu_load=CpuLoad(1.6, 2, 0.5))
    summary = said(recommend(busy))
    assert summary.endswith("The CPU is busy now (other programs kept 1.6 of 2 cores busy): a "
                            "speed measured now would be lower than this machine gives.")
    calm = dataclasses.replace(TWO_CORES, cpu_load=CpuLoad(0.1, 2, 0.5))
    assert "busy" not in said(recommend(calm))


def test_the_size_lesson_warns_first_when_a_row_was_measured_on_a_busy_cpu():
    df = _measured(cpu_busy=True)
    df.attrs["cpu_load"] = {"qwen2.5-coder:0.5b": CpuLoad(1.2, 2, 3.0)}
    text = lesson(df)
    assert text.startswith("Careful: the CPU was busy while qwen2.5-coder:0.5b was measured "
                           "(other programs kept 1.2 of 2 cores busy)")
    assert "3.7× the parameters" in text
    assert "busy" not in lesson(_measured())
    both = _measured(cpu_busy=True)
    both.loc[0, "cpu_busy"] = True
    both.attrs["cpu_load"] = {"smollm2:135m": CpuLoad(0.9, 2, 1.0),
                              "qwen2.5-coder:0.5b": CpuLoad(1.7, 2, 3.0)}
    assert lesson(both).startswith(
        "Careful: the CPU was busy while smollm2:135m and qwen2.5-coder:0.5b were measured (at "
        "worst other programs kept 1.7 of 2 cores busy)")


def _measured(**large: object) -> pd.DataFrame:
    rows = [{"model": "smollm2:135m", "params_B": 0.135, "file_GB": 0.1, "load_s": 0.5,
             "memory_GB": 0.2, "tokens_per_s": 60.0, "ttft_s": 0.1, "cpu_busy": False},
            {"model": "qwen2.5-coder:0.5b", "params_B": 0.5, "file_GB": 0.4, "load_s": 0.5,
             "memory_GB": 0.6, "tokens_per_s": 20.0, "ttft_s": 0.3, "cpu_busy": False, **large}]
    return pd.DataFrame(rows, columns=MEASURE_COLUMNS)


def test_the_size_lesson_is_written_from_the_numbers_it_is_given():
    text = lesson(_measured())
    assert "3.7× the parameters" in text and "3.0× fewer tokens per second (20 vs 60)" in text
    assert "0.6 GB of memory against 0.2 GB" in text and "no slower here" in text
    text = lesson(_measured(tokens_per_s=58.0, load_s=2.5))
    assert "about as fast (58 vs 60 tokens/s)" in text and "loaded more slowly (2.5 s" in text
    assert "fewer tokens" not in text and "no slower" not in text
    assert lesson(_measured().iloc[:1]) == "Measure at least two sizes to compare them."


def test_measure_loads_each_stand_in_cold_and_reports_what_it_saw(embedded_client):
    df = measure(["smollm2:135m", "qwen2.5-coder:0.5b"], client=embedded_client, max_tokens=8)
    assert list(df.columns) == MEASURE_COLUMNS and list(df.model) == ["smollm2:135m",
                                                                       "qwen2.5-coder:0.5b"]
    assert (df.load_s > 0).all() and (df.tokens_per_s > 0).all() and (df.memory_GB > 0).all()
    # the larger file takes more memory, and the lesson quotes the measured figures
    assert df.memory_GB.iloc[1] > df.memory_GB.iloc[0]
    assert said(df, "lesson") == lesson(df) and f"{df.memory_GB.iloc[1]:g} GB" in lesson(df)
    # how busy other programs kept the CPU is measured for each row, whatever it was
    loads = df.attrs["cpu_load"]
    assert set(loads) == set(df.model) and all(isinstance(v, CpuLoad) for v in loads.values())
    assert list(df.cpu_busy) == [loads[m].busy for m in df.model]


def test_reported_cites_deepseek_and_refuses_unknown_benchmarks():
    text = " ".join(reported("math500").split())  # it wraps at 100 columns for a page
    assert "MATH-500" in text and "deepseek-r1:1.5b" in text and "model card" in text
    with pytest.raises(ConfigurationError, match="unknown benchmark"):
        reported("nosuch")
