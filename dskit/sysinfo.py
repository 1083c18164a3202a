"""What this machine has: GPUs (via nvidia-smi), RAM, free disk, CPU cores; loopback addresses."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
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
