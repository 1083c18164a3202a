"""What fits this machine: GPU, partly on the GPU, CPU only, or not at all; load and speed."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .. import sysinfo
from ..errors import ConfigurationError
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

    @classmethod
    def read(cls) -> Machine:
        """This machine, via nvidia-smi, psutil and the free space where Ollama keeps models."""
        total, available = sysinfo.ram()
        path, free = sysinfo.disk_free()
        cores = sysinfo.cpu_cores()[0]
        return cls(sysinfo.gpus(), total, available, free, path,
                   min(CPU_BANDWIDTH_GBS, CPU_GBS_PER_CORE * cores))

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
    need = spec.memory_gb
    vram = m.vram_free_gb()
    best, total_vram = (vram[0] if vram else 0.0), sum(vram)
    ram = m.ram_available / GB
    disk = m.disk_free / GB
    on_disk = spec.download_gb <= disk
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
    else:
        fit, gpu_share = "does not fit", 0.0
        where = f"{ram:.1f} GB available RAM" + (f" + {total_vram:.1f} GB free VRAM"
                                                  if total_vram else "")
        advice = f"needs about {need:.1f} GB but has {where}: choose a smaller size"
        if spec.active_params_b:
            advice += "; serve it on a multi-GPU cluster (vLLM/SGLang) instead"
    why = "memory" if fit == "does not fit" else ""
    if fit in ("partial GPU", "CPU only") and need > 0.9 * (total_vram + ram):
        advice += "; tight: little memory left for other programs"
    if not on_disk:
        disk_msg = (f"download is {spec.download_gb:g} GB but only {disk:.1f} GB is free "
                    f"at {m.disk_path or 'the model folder'}: free space or point "
                    "OLLAMA_MODELS at a bigger disk (unless already pulled)")
        advice = (f"{advice}; {disk_msg}" if why
                  else f"{disk_msg}; memory would suffice ({fit})")
        fit, why = "does not fit", ("memory and disk" if why else "disk")
    if not spec.deepseek:
        advice += " (embedded stand-in, not DeepSeek)"
    runs = fit != "does not fit"
    weights = spec.download_gb
    load_s = weights / DISK_READ_GBS + weights * gpu_share / PCIE_GBS
    active = weights * spec.active_fraction
    cpu = m.cpu_bandwidth_gbs or CPU_BANDWIDTH_GBS
    per_token = (active * gpu_share / GPU_BANDWIDTH_GBS + active * (1 - gpu_share) / cpu)
    return {
        "tag": spec.tag, "download_GB": spec.download_gb, "memory_GB": need, "fit": fit,
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


def _summary(df: pd.DataFrame, m: Machine) -> str:
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
                "FIT", "does not fit" if one else "do not fit")
            parts.append(f"{_short(found, tags)} {verb}")

    say(pick("fit", "GPU"), "VERB fully on the GPU")
    say(pick("fit", "partial GPU"), "VERB partly on the GPU, partly on the CPU (slower)")
    say(pick("fit", "CPU only"), "VERB on the CPU (slowly)")
    say(pick("why_not", "memory", "memory and disk"),
        f"FIT in memory ({m.ram_available / GB:.1f} GB RAM available)")
    say(pick("why_not", "disk"), f"FIT on disk ({m.disk_free / GB:.1f} GB free)")
    if best := _suggest(df):
        parts.append(f"suggested: {best}")
    else:
        fits = df[df["tag"].map(_is_deepseek) & df["tokens_per_s"].notna()]
        if len(fits):
            first = fits.iloc[0]
            minutes = 1000 / float(first["tokens_per_s"]) / 60
            parts.append(f"no DeepSeek size is usable here (≥ {USABLE_TOKENS_PER_S:g} tok/s): "
                         f"the smallest, {first['tag']}, makes about {first['tokens_per_s']:g} "
                         f"tok/s, {minutes:.0f} min for a 1,000-token reasoning answer; use a GPU "
                         "instance")
        else:
            parts.append("no DeepSeek size fits: use a GPU instance")
    return f"{head}: " + "; ".join(parts or ["nothing to assess"]) + "."


def _is_deepseek(tag: str) -> bool:
    """Whether `tag` is a DeepSeek model of the catalog."""
    spec = spec_for(tag)
    return spec is not None and spec.deepseek


def _suggest(df: pd.DataFrame) -> str | None:
    """The largest DeepSeek model fully on a GPU, else the largest that is usable (≥ 10 tok/s
    estimated); None when no size is usable — a size rated unusable is never the suggestion."""
    ds = df[df["tag"].map(_is_deepseek) & (df["fit"] != "does not fit")]
    usable = ds[ds["tokens_per_s"].fillna(0) >= USABLE_TOKENS_PER_S]
    on_gpu = usable[usable["fit"] == "GPU"]
    for pool in (on_gpu, usable):
        if len(pool):
            return str(pool["tag"].iloc[-1])
    return None


def recommend(machine: Machine | None = None, include_standins: bool = False,
              measured: dict[str, float] | None = None) -> pd.DataFrame:
    """Which models fit `machine` (default: this one): on GPU, partly, CPU only, or not at all,
    how fast each would decode, and which size to pick (never one too slow to use).

    `measured`: tokens/s you measured on this machine's CPU for some models (the embedded
    stand-ins, say: `{"qwen2.5-coder:0.5b": 24.7}`); the CPU speed estimate then follows them.
    """
    import pandas as pd

    m = machine if machine is not None else Machine.read()
    if measured:
        m = replace(m, cpu_bandwidth_gbs=_bandwidth_from(measured))
    df = pd.DataFrame([_assess(s, m) for s in specs(include_standins)])
    df.attrs["summary"] = _summary(df, m)
    cpu = m.cpu_bandwidth_gbs or CPU_BANDWIDTH_GBS
    df.attrs["assumptions"] = (
        f"memory at {DEFAULT_CONTEXT} tokens of context; load from disk at ~{DISK_READ_GBS} "
        f"GB/s + PCIe ~{PCIE_GBS:g} GB/s; generation ~{GPU_BANDWIDTH_GBS:g} GB/s GPU, "
        f"~{cpu:.1f} GB/s CPU memory bandwidth ("
        + ("from the speeds measured here" if measured else "estimated from the CPU cores")
        + f"); usable means ≥ {USABLE_TOKENS_PER_S:g} tok/s"
    )
    return df


def _bandwidth_from(measured: dict[str, float]) -> float:
    """GB/s decoding gets on this CPU, from the measured speed of the largest known model (the
    smallest models are limited by per-token overhead, not by memory)."""
    known = [(spec.download_gb, tps) for tag, tps in measured.items()
             if (spec := spec_for(tag)) is not None and tps > 0]
    if not known:
        raise ConfigurationError("measured= needs tokens/s of models the catalog knows, e.g. "
                                 "{'qwen2.5-coder:0.5b': 24.7}")
    size, tps = max(known)
    return size * tps
