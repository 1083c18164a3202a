"""Machine facts: how busy other programs keep the CPU (the warning before a speed is trusted)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from dskit import sysinfo
from dskit.sysinfo import CpuLoad, CpuMeter


@pytest.mark.parametrize(("others", "cores", "busy"), [
    (0.0, 2, False), (0.4, 2, False), (0.5, 2, True), (1.6, 2, True),
    (0.4, 1, False), (0.5, 1, True),  # half a core at least, even on one core
    (3.9, 16, False), (4.0, 16, True),  # a quarter of the cores on a big machine
])
def test_busy_means_other_programs_take_a_real_share_of_the_cores(others, cores, busy):
    assert CpuLoad(others, cores).busy is busy


def test_a_load_says_how_many_cores_other_programs_kept_busy():
    assert CpuLoad(1.62, 2, 0.5).describe() == "other programs kept 1.6 of 2 cores busy"


def test_a_sample_stays_within_the_cores():
    load = sysinfo.cpu_load(0.2)
    assert 0.0 <= load.others <= load.cores and load.seconds >= 0.2


def test_this_process_s_own_work_is_left_out():
    """A notebook that just ran a model (llama.cpp threads in the kernel) is not 'busy'."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(i * i for i in range(1000))  # 计算：this process's own work

    meter = CpuMeter()
    worker = threading.Thread(target=spin)
    worker.start()
    try:
        stop.wait(0.6)
    finally:
        stop.set()
        worker.join()
    own = sysinfo._own_cpu_seconds() - meter._own
    load = meter.load()
    busy = sysinfo._busy_cpu_seconds() - meter._busy
    assert own > 0.1  # the thread really ran: counted as others it would add > 0.15 cores
    # What the meter gives other programs is the machine's work minus this process's.
    assert load.others <= max(0.0, (busy - own) / load.seconds) + 0.05


@pytest.mark.subprocess
def test_another_program_spinning_makes_the_cpu_look_used():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        load = sysinfo.cpu_load(1.0)
    finally:
        spinner.kill()
        spinner.wait()
    # One spinning program keeps about one core busy (less if the cores are shared with more).
    assert load.others >= 0.5
