"""What this machine has: GPUs (via nvidia-smi), RAM, free disk, CPU cores and how busy other
programs keep them; loopback addresses."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import config


@dataclass(frozen=True)
class GPU:
    """One NVIDIA GPU as nvidia-smi reports it (memory in MiB)."""

    name: str
    memory_total_mib: int
    memory_used_mib: int
    driver: str

    @property
    def memory_free_mib(self) -> int:
        """Memory not in use."""
        return self.memory_total_mib - self.memory_used_mib


def gpus(timeout: float = 5.0) -> list[GPU]:
    """NVIDIA GPUs via `nvidia-smi`; [] when there is none or the tool is missing or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,memory.used,driver_version",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=timeout, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []  # a broken driver means no usable GPU; doctor() says so
    found: list[GPU] = []
    for line in out.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            continue
        try:
            found.append(GPU(fields[0], int(float(fields[1])), int(float(fields[2])), fields[3]))
        except ValueError:
            continue  # "[N/A]" on some virtual GPUs
    return found


def ram() -> tuple[int, int]:
    """(total, available) RAM in bytes."""
    import psutil

    vm = psutil.virtual_memory()
    return vm.total, vm.available


def disk_free(path: str | os.PathLike[str] | None = None) -> tuple[str, int]:
    """(path checked, free bytes) for `path`, or for where Ollama keeps models."""
    target = Path(path) if path else config.ollama_models_dir()
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # the folder may not exist yet: measure the disk it will live on
    return str(target), shutil.disk_usage(probe).free


def cpu_cores() -> tuple[int, int]:
    """(physical, logical) CPU cores."""
    import psutil

    logical = os.cpu_count() or 1
    return psutil.cpu_count(logical=False) or logical, logical


#: Other programs keeping this share of the logical cores busy (and at least half a core) make
#: the CPU "busy": llama.cpp splits each token over one thread per core and every step waits for
#: the slowest thread, so one core taken by another program holds all of them back (two
#: llama.cpp processes on 2 cores slowed each other 10-50x here: docs/benchmarks-journal.md).
BUSY_SHARE = 0.25
BUSY_MIN_CORES = 0.5


@dataclass(frozen=True)
class CpuLoad:
    """How many cores other programs kept busy over a sample (this process's own work left
    out, so a notebook that just ran a model does not count as busy)."""

    others: float  # cores' worth of CPU time other programs used, on average
    cores: int  # logical cores
    seconds: float = 0.0  # how long the sample was

    @property
    def busy(self) -> bool:
        """Whether other programs took enough of the CPU to slow a measurement down."""
        return self.others >= max(BUSY_MIN_CORES, BUSY_SHARE * self.cores)

    def describe(self) -> str:
        """'other programs kept 1.6 of 2 cores busy'."""
        return f"other programs kept {self.others:.1f} of {self.cores} cores busy"


def _busy_cpu_seconds() -> float:
    """CPU-seconds all cores spent working since boot (idle and waiting for disk left out)."""
    import psutil

    t = psutil.cpu_times()
    # Linux counts guest time inside user and nice already (psutil.cpu_percent does the same).
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    return total - t.idle - getattr(t, "iowait", 0.0)


def _own_cpu_seconds() -> float:
    """CPU-seconds this process has used, all its threads (llama.cpp's included)."""
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


class CpuMeter:
    """Measures other programs' CPU use from its creation until `load()`."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._busy = _busy_cpu_seconds()
        self._own = _own_cpu_seconds()

    def load(self) -> CpuLoad:
        """Other programs' CPU use since this meter was made, in cores."""
        wall = max(time.monotonic() - self._wall, 1e-3)
        busy = _busy_cpu_seconds() - self._busy
        own = _own_cpu_seconds() - self._own
        cores = os.cpu_count() or 1
        # Clock ticks of the two counters do not line up exactly: keep the result in range.
        others = min(max((busy - own) / wall, 0.0), float(cores))
        return CpuLoad(round(others, 2), cores, round(wall, 2))


def cpu_load(seconds: float = 0.5) -> CpuLoad:
    """How busy other programs keep the CPU right now, sampled over `seconds`."""
    meter = CpuMeter()
    time.sleep(seconds)
    return meter.load()


def gib(n: float) -> str:
    """Bytes as a short GiB string."""
    return f"{n / 2**30:.1f} GiB"


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or 'localhost') is only reachable from this machine."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface
