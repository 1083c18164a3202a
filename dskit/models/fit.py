"""What fits this machine: GPU, partly on the GPU, CPU only, or not at all; load and speed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .. import sysinfo
from ..errors import ConfigurationError
from ..evals.prose import prose
from .family import DEFAULT_CONTEXT, GB, ModelSpec, spec_for, specs

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Machine:
    """What a machine offers for running models (all sizes in bytes)."""

    gpus: list[sysinfo.GPU] = field(default_factory=list)
    ram_total: int = 0
    ram_available: int = 0
    disk_free: int = 0
    disk_path: str = ""
    #: Memory bandwidth decoding on the CPU gets, GB/s: measured (`recommend(measured=…)`),
    #: else estimated from the physical cores.
    cpu_bandwidth_gbs: float = 0.0
    #: How busy other programs kept the CPU when the machine was read (None: not sampled).
    cpu_load: sysinfo.CpuLoad | None = None

    @classmethod
    def read(cls) -> Machine:
        """This machine, via nvidia-smi, psutil and the free space where Ollama keeps models."""
        total, available = sysinfo.ram()
        path, free = sysinfo.disk_free()
        cores = sysinfo.cpu_cores()[0]
        return cls(sysinfo.gpus(), total, available, free, path,
                   min(CPU_BANDWIDTH_GBS, CPU_GBS_PER_CORE * cores), sysinfo.cpu_load())

    def vram_free_gb(self) -> list[float]:
        """Free memory of each GPU in GB, largest first."""
        return sorted((g.memory_free_mib * 2**20 / GB for g in self.gpus), reverse=True)


# Assumptions behind the load-time and speed classes (orders of magnitude, not benchmarks):
# a cold load reads the GGUF at about 1.5 GB/s (NVMe; SATA SSDs are ~0.5, the page cache far
# faster) and copies GPU layers over PCIe at about 10 GB/s. Generation is bound by memory
# bandwidth: every token reads the active weights once, at ~600 GB/s on a GPU (T4 0.3,
# RTX 4090 1.0, A100 2.0 TB/s) and ~20 GB/s on a CPU (dual-channel DDR4/5 in practice) — less
# on a small machine, where the cores cannot keep the memory busy: measured here on 2 cores,
# qwen2.5-coder:0.5b (0.49 GB) decodes at ~25 tok/s, i.e. ~12 GB/s, ~6 GB/s per core.
DISK_READ_GBS = 1.5
PCIE_GBS = 10.0
GPU_BANDWIDTH_GBS = 600.0
CPU_BANDWIDTH_GBS = 20.0
CPU_GBS_PER_CORE = 6.0
#: A reasoning model writes hundreds to thousands of tokens per answer: below this speed one
#: answer takes minutes, so a size that slow is never the suggestion.
USABLE_TOKENS_PER_S = 10.0

# Memory a model must leave free to count as fitting. In RAM: 10% of what is available, at
# least 1 GB, for what the estimate leaves out or gets wrong: the notebook's kernel, JupyterLab
# and the browser (0.7 GB measured for a kernel that chatted, docs/binder.md), a context longer
# than 8192 tokens, llama.cpp's buffers (the estimate's overhead is observed, not a spec), and
# the page cache the mapped weights live in (squeezed, every token reads them from disk again,
# long before the system runs out). On a GPU: 0.5 GB of each, for the CUDA context and
# runtime buffers nvidia-smi does not count until a model is loaded. A model that fits only
# into this margin is "tight", never "runs".
RAM_HEADROOM_SHARE = 0.10
RAM_HEADROOM_MIN_GB = 1.0
GPU_RESERVE_GB = 0.5


def ram_headroom_gb(available_gb: float) -> float:
    """GB of RAM a model should leave free, out of `available_gb`."""
    return max(RAM_HEADROOM_MIN_GB, RAM_HEADROOM_SHARE * available_gb)


#: Fits that leave the memory headroom free: the only ones a suggestion may be.
ROOMY = ("GPU", "partial GPU", "CPU only")


def _load_class(seconds: float) -> str:
    return "seconds" if seconds < 10 else "tens of seconds" if seconds < 60 else "minutes"


def _speed_class(tokens_per_s: float) -> str:
    label = ("fast" if tokens_per_s >= 30 else "usable" if tokens_per_s >= 10
             else "slow" if tokens_per_s >= 3 else "very slow")
    # Past ~100 tok/s compute and per-token overhead dominate: do not promise more.
    if tokens_per_s >= 100:
        return f"{label} (>100 tok/s)"
    return f"{label} (~{tokens_per_s:.0f} tok/s)" if tokens_per_s >= 1 else f"{label} (<1 tok/s)"


def _assess(spec: ModelSpec, m: Machine) -> dict[str, Any]:
    need, weights = spec.memory_gb, spec.download_gb
    if need is None or weights is None:  # only runnable() specs come here
        raise ConfigurationError(f"{spec.tag} does not run on this machine: nothing to assess")
    free_vram = m.vram_free_gb()
    vram = [max(0.0, v - GPU_RESERVE_GB) for v in free_vram]  # what a model may take
    best, total_vram = (vram[0] if vram else 0.0), sum(vram)
    ram_free = m.ram_available / GB
    margin = ram_headroom_gb(ram_free)
    ram = max(0.0, ram_free - margin)
    disk = m.disk_free / GB
    on_disk = weights <= disk
    where = f"{ram_free:.1f} GB available RAM" + (f" + {sum(free_vram):.1f} GB free VRAM"
                                                   if free_vram else "")
    if need <= best:
        fit, gpu_share = "GPU", 1.0
        advice = "runs fully on the GPU"
    elif len(vram) > 1 and need <= total_vram:
        fit, gpu_share = "GPU", 1.0
        advice = (f"runs on the GPUs, split across {len(vram)} of them "
                  "(Ollama spreads layers over GPUs; a little slower than one GPU)")
    elif total_vram > 0 and need <= total_vram + ram:
        fit, gpu_share = "partial GPU", total_vram / need
        advice = (f"about {gpu_share:.0%} on the GPU, the rest on the CPU: works but slower; "
                  "a smaller size (or a shorter context) runs fully on the GPU")
    elif need <= ram:
        fit, gpu_share = "CPU only", 0.0
        advice = "no usable GPU: runs on the CPU, slowly (a reasoning answer can take minutes)"
    elif need <= sum(free_vram) + ram_free:
        fit, gpu_share = "tight", min(1.0, total_vram / need)
        advice = (f"tight: needs about {need:.1f} GB of {where}, which would leave less than "
                  f"{margin:.1f} GB of RAM" + (f" and {GPU_RESERVE_GB:g} GB per GPU"
                                                if free_vram else "")
                  + " free (kept for the system, the notebook and longer contexts): it may "
                  "swap or be stopped for lack of memory; choose a smaller size, or close "
                  "other programs")
    else:
        fit, gpu_share = "does not fit", 0.0
        advice = f"needs about {need:.1f} GB but has {where}: choose a smaller size"
        if spec.active_params_b:
            advice += "; serve it on a multi-GPU cluster (vLLM/SGLang) instead"
    why = "memory" if fit == "does not fit" else ""
    if not on_disk:
        disk_msg = (f"download is {weights:g} GB but only {disk:.1f} GB is free "
                    f"at {m.disk_path or 'the model folder'}: free space or point "
                    "OLLAMA_MODELS at a bigger disk (unless already pulled)")
        advice = (f"{advice}; {disk_msg}" if why
                  else f"{disk_msg}; memory would "
                  + ("be tight" if fit == "tight" else f"suffice ({fit})"))
        fit, why = "does not fit", ("memory and disk" if why else "disk")
    if not spec.deepseek:
        advice += " (embedded stand-in, not DeepSeek)"
    runs = fit != "does not fit"
    load_s = weights / DISK_READ_GBS + weights * gpu_share / PCIE_GBS
    active = weights * spec.active_fraction
    cpu = m.cpu_bandwidth_gbs or CPU_BANDWIDTH_GBS
    per_token = (active * gpu_share / GPU_BANDWIDTH_GBS + active * (1 - gpu_share) / cpu)
    return {
        "tag": spec.tag, "download_GB": weights, "memory_GB": need, "fit": fit,
        "download_fits_disk": on_disk, "why_not": why or None,
        "load_time": _load_class(load_s) if runs else None,
        "speed": _speed_class(1 / per_token) if runs else None,
        "tokens_per_s": round(1 / per_token, 1) if runs else None,
        "advice": advice,
    }


def _short(tags: list[str], everything: list[str]) -> str:
    """'deepseek-r1:1.5b, 7b and 8b' (no repeated family name); '14b and larger' for a tail."""
    if len(tags) > 2 and everything[-len(tags):] == tags:
        return f"{tags[0]} and larger"
    out, prev = [], ""
    for t in tags:
        name, _, size = t.partition(":")
        out.append(size if name == prev else t)
        prev = name
    return out[0] if len(out) == 1 else f"{', '.join(out[:-1])} and {out[-1]}"


def _summary(df: pd.DataFrame, m: Machine, unsized: list[str] | None = None) -> str:
    tags = list(df["tag"])

    def pick(column: str, *values: str) -> list[str]:
        return list(df.loc[df[column].isin(values), "tag"])

    if not m.gpus:
        head = "No GPU found"
    else:
        names = ", ".join(sorted({g.name for g in m.gpus}))
        plural = "s" if len(m.gpus) > 1 else ""
        head = f"{len(m.gpus)} GPU{plural} ({names}; {sum(m.vram_free_gb()):.0f} GB free VRAM)"
    parts = []

    def say(found: list[str], verb: str) -> None:
        if found:
            one = len(found) == 1
            verb = verb.replace("VERB", "runs" if one else "run").replace(
                "FIT", "does not fit" if one else "do not fit").replace(
                "BE", "is" if one else "are")
            parts.append(f"{_short(found, tags)} {verb}")

    say(pick("fit", "GPU"), "VERB fully on the GPU")
    say(pick("fit", "partial GPU"), "VERB partly on the GPU, partly on the CPU (slower)")
    say(pick("fit", "CPU only"), "VERB on the CPU (slowly)")
    say(pick("fit", "tight"), f"BE tight: less than {ram_headroom_gb(m.ram_available / GB):.1f} "
        "GB of RAM would stay free (see advice)")
    say(pick("why_not", "memory", "memory and disk"),
        f"FIT in memory ({m.ram_available / GB:.1f} GB RAM available)")
    say(pick("why_not", "disk"), f"FIT on disk ({m.disk_free / GB:.1f} GB free)")
    if unsized:
        parts.append(f"{_short(unsized, tags)} {'is' if len(unsized) == 1 else 'are'} not "
                     "assessed (no download size in the catalog; `ollama show` gives it once "
                     "pulled)")
    deepseek = df[df["tag"].map(_is_deepseek)]
    roomy = deepseek[deepseek["fit"].isin(ROOMY)]
    if best := _suggest(df):
        parts.append(f"suggested: {best}")
    elif len(roomy):
        first = roomy.iloc[0]
        minutes = 1000 / float(first["tokens_per_s"]) / 60
        parts.append(f"no DeepSeek size is usable here (≥ {USABLE_TOKENS_PER_S:g} tok/s): "
                     f"the smallest, {first['tag']}, makes about {first['tokens_per_s']:g} "
                     f"tok/s, {minutes:.0f} min for a 1,000-token reasoning answer; use a GPU "
                     "instance")
    elif (deepseek["fit"] == "tight").any():
        parts.append("no DeepSeek size fits with memory to spare: close other programs, or use "
                     "a GPU instance")
    else:
        parts.append("no DeepSeek size fits: use a GPU instance")
    return f"{head}: " + "; ".join(parts or ["nothing to assess"]) + "."


def runnable(spec: ModelSpec) -> bool:
    """Whether `spec` runs on this machine and its memory need is known: what fit assesses."""
    return spec.local and spec.memory_gb is not None


def _is_deepseek(tag: str) -> bool:
    """Whether `tag` is a DeepSeek model of the catalog."""
    spec = spec_for(tag)
    return spec is not None and spec.deepseek


def _suggest(df: pd.DataFrame) -> str | None:
    """The largest DeepSeek model fully on a GPU, else the largest that is usable (≥ 10 tok/s
    estimated); None when no size is usable — a size rated unusable or tight in memory is never
    the suggestion."""
    ds = df[df["tag"].map(_is_deepseek) & df["fit"].isin(ROOMY)]
    usable = ds[ds["tokens_per_s"].fillna(0) >= USABLE_TOKENS_PER_S]
    on_gpu = usable[usable["fit"] == "GPU"]
    for pool in (on_gpu, usable):
        if len(pool):
            return str(pool["tag"].iloc[-1])
    return None


def recommend(machine: Machine | None = None, include_standins: bool = False,
              measured: dict[str, float] | pd.DataFrame | None = None) -> pd.DataFrame:
    """Which models fit `machine` (default: this one): on GPU, partly, CPU only, tight in
    memory, or not at all, how fast each would decode, and which size to pick (never one too
    slow to use, nor one that leaves too little memory free).

    Only models that run on this machine are assessed: Ollama cloud tags, DeepSeek platform
    models and weights-only releases (`ModelSpec.where`) are never offered here.

    `measured`: speeds measured on this machine's CPU — `models.measure()`'s table, or tokens/s
    per model (`{"qwen2.5-coder:0.5b": 24.7}`); the CPU speed estimate then follows them. Rows
    `measure()` took while other programs kept the CPU busy are left out (and the summary says
    so): a speed measured under load would swing the suggestion with the load, not the machine.
    """
    import pandas as pd

    m = machine if machine is not None else Machine.read()
    speeds, busy = _speeds(measured)
    if speeds:
        m = replace(m, cpu_bandwidth_gbs=_bandwidth_from(speeds))
    candidates = specs(include_standins)
    df = pd.DataFrame([_assess(s, m) for s in candidates if runnable(s)])
    notes = []
    # A local tag whose download size the catalog lacks cannot be weighed against the memory:
    # say so rather than leave it out silently. Cloud, platform and weights-only rows are not
    # run here at all, so they are never assessed nor suggested.
    unsized = [s.tag for s in candidates if s.local and not runnable(s)]
    if busy:
        one = len(busy) == 1
        notes.append(f"The speed{'' if one else 's'} measured for {' and '.join(busy)} "
                     f"{'is' if one else 'are'} not used: the CPU was busy then "
                     f"({_loads(measured, busy)}), so {'it says' if one else 'they say'} more "
                     "about the load than about this machine; measure again when it is idle.")
    if m.cpu_load is not None and m.cpu_load.busy:
        notes.append(f"The CPU is busy now ({m.cpu_load.describe()}): a speed measured now "
                     "would be lower than this machine gives.")
    df.attrs["summary"] = prose(" ".join([_summary(df, m, unsized), *notes]))
    cpu = m.cpu_bandwidth_gbs or CPU_BANDWIDTH_GBS
    spare = ram_headroom_gb(m.ram_available / GB)
    df.attrs["assumptions"] = prose(
        f"memory at {DEFAULT_CONTEXT} tokens of context, {spare:.1f} GB of RAM and "
        f"{GPU_RESERVE_GB:g} GB per GPU kept free; load from disk at ~{DISK_READ_GBS} GB/s + "
        f"PCIe ~{PCIE_GBS:g} GB/s; generation ~{GPU_BANDWIDTH_GBS:g} GB/s GPU, ~{cpu:.1f} GB/s "
        "CPU memory bandwidth ("
        + ("from the speeds measured here" if speeds else "estimated from the CPU cores")
        + f"); usable means ≥ {USABLE_TOKENS_PER_S:g} tok/s"
    )
    return df


def _speeds(measured: dict[str, float] | pd.DataFrame | None
            ) -> tuple[dict[str, float], list[str]]:
    """Tokens/s per model to calibrate on, and the models left out as measured on a busy CPU."""
    import pandas as pd

    if measured is None:
        return {}, []
    if isinstance(measured, dict):
        return dict(measured), []
    busy_col = (measured["cpu_busy"] if "cpu_busy" in measured
                else [False] * len(measured))
    speeds, busy = {}, []
    for model, tps, was_busy in zip(measured["model"], measured["tokens_per_s"], busy_col,
                                    strict=True):
        if pd.notna(was_busy) and bool(was_busy):  # a missing mark is not a busy CPU
            busy.append(str(model))
        else:
            speeds[str(model)] = float(tps)
    return speeds, busy


def busiest(loads: Iterable[sysinfo.CpuLoad]) -> str:
    """The worst of several loads in words ('at worst other programs kept 1.7 of 2 cores
    busy')."""
    found = list(loads)
    if not found:
        return "other programs were using it"
    worst = max(found, key=lambda load: load.others).describe()
    return worst if len(found) == 1 else f"at worst {worst}"


def _loads(measured: Any, tags: list[str]) -> str:
    """How busy the CPU was while `measure()` measured these models, as `measure()` recorded."""
    loads = getattr(measured, "attrs", {}).get("cpu_load", {})
    return busiest(loads[t] for t in tags if t in loads)


def _bandwidth_from(measured: dict[str, float]) -> float:
    """GB/s decoding gets on this CPU, from the measured speed of the largest known model (the
    smallest models are limited by per-token overhead, not by memory)."""
    known = [(spec.download_gb, tps) for tag, tps in measured.items()
             if (spec := spec_for(tag)) is not None and spec.download_gb is not None
             and spec.local and tps > 0]
    if not known:
        raise ConfigurationError("measured= needs tokens/s of models the catalog knows, e.g. "
                                 "{'qwen2.5-coder:0.5b': 24.7}")
    size, tps = max(known)
    return size * tps
