"""Machine facts printed by every benchmark (the numbers only mean something next to them)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine_facts() -> dict[str, Any]:
    """CPU model, core count, Python, llama-cpp-python and its build features, dskit."""
    import llama_cpp

    import dskit

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(" |"),
        "dskit": getattr(dskit, "__version__", "?"),
    }


def se_median(xs: list[float]) -> float:
    """Standard error of the median, from a robust spread (1.4826 x median absolute deviation)."""
    import statistics

    m = statistics.median(xs)
    sigma = 1.4826 * statistics.median([abs(x - m) for x in xs])
    return 1.2533 * sigma / len(xs) ** 0.5
