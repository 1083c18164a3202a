"""Hostile files: the time and memory one small file may cost a knowledge base, against an
ordinary file of the same type read in the same run.

What it measures
    Each file is made here (tests/kbfiles.py), then read by ``dskit.kb.loaders.load`` and cut
    into chunks (``dskit.kb.chunking.split``) in a fresh process with the default 20 MB cap and
    work budget: what a knowledge base spends on a file before embedding it. The parent takes
    the process's wall time, its peak resident memory (VmHWM, as the process reports it; for a
    process killed at ``--timeout``, the largest size polled) and its outcome. The hostile files
    are the instances of issue 22 (a DOCX of sibling elements, one of millions of runs, a PDF of
    2,000 pages sharing one stream, HTML of ``<!`` and ``<a``) and others of the same classes
    (cells in one row, attributes, a form drawn over and over, unclosed comments and quotes,
    runs of punctuation for the chunker). Each is shown beside the ordinary file of its type,
    read in the same run: ``time x`` and ``memory x`` are the ratios to it, and the outcome is
    what a knowledge base would report (the text and chunks, or the reason the file failed).

How to run
    cd bench && ../.venv/bin/python bench_hostile_files.py [--timeout 300] [--only html]

    About 3 minutes on 2 idle cores. Exit code 0 always: a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import kbfiles  # the test suite's file makers

_READ = """
import sys
from pathlib import Path
from dskit.errors import LoadError
from dskit.kb import chunking, loaders
try:
    segments = loaders.load(Path(sys.argv[1]))
    chunks = len(chunking.split(segments, 512, 64))
    said = f"read: {sum(len(s.text) for s in segments):,} chars, {chunks:,} chunks"
except LoadError as exc:
    said = f"{exc.status}: {exc}"
# VmHWM: this process's own peak (ru_maxrss would carry the parent's from before the exec)
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(int(peak.split()[1]) // 1024)
print(said)
"""

_PARAGRAPH = ("第三季度的销售额比上一季度增长了百分之十二，主要来自华东地区的新客户。"
              "The quarterly report shows steady growth in every region we serve. ")
_DRAW = b"BT /F1 9 Tf 9 9 Td (AAAA) Tj ET\n"


def _html(body: str) -> Callable[[Path], Path]:
    return lambda d: kbfiles.write(d / "page.html", body)


#: (type, name, maker): the ordinary file of each type comes first.
FILES: list[tuple[str, str, Callable[[Path], Path]]] = [
    ("docx", "ordinary: 3,000 paragraphs",
     lambda d: kbfiles.docx_file(d / "report.docx", [_PARAGRAPH] * 3_000)),
    ("docx", "2.4 M sibling elements in the body",
     lambda d: kbfiles.docx_elements(d / "siblings.docx", 2_400_000)),
    ("docx", "3.5 M runs in one paragraph",
     lambda d: kbfiles.docx_elements(d / "runs.docx", 3_500_000, "<w:r><w:t>a</w:t></w:r>",
                                     "paragraph")),
    ("docx", "1 M cells in one table row",
     lambda d: kbfiles.docx_elements(d / "cells.docx", 1_000_000,
                                     "<w:tc><w:p><w:r><w:t>格</w:t></w:r></w:p></w:tc>", "row")),
    ("docx", "1 M attributes on one element",
     lambda d: kbfiles.docx_elements(d / "attributes.docx", 1, "<w:p " + " ".join(
         f'w:a{i}="x"' for i in range(1_000_000)) + "/>")),
    ("pdf", "ordinary: 100 pages",
     lambda d: kbfiles.pdf(d / "report.pdf", ["Quarterly report. " * 150] * 100)),
    ("pdf", "2,000 pages sharing one stream",
     lambda d: kbfiles.pdf_with_stream(d / "shared.pdf", _DRAW * 1_200, pages=2_000)),
    ("pdf", "one page drawing a form 100 times",
     lambda d: kbfiles.pdf_with_form(d / "form.pdf", _DRAW * 20_000, draws=100)),
    ("html", "ordinary: 1 MB of paragraphs",
     _html("<html><body>" + f"<p>{_PARAGRAPH}</p>\n" * 5_000 + "</body></html>")),
    ("html", "1 MB of '<!'", _html("<!" * 500_000)),
    ("html", "1 MB of '<a'", _html("<a" * 500_000)),
    ("html", "1 MB after an unclosed comment", _html("<p>前言</p><!--" + "x" * 1_000_000)),
    ("html", "1 MB of '</'", _html("</" * 500_000)),
    ("html", "1 MB of '<a b=\"'", _html("<p>x</p><a b=\"" + "<" * 1_000_000)),
    ("html", "1 MB of '&#'", _html("&#" * 500_000)),
    ("txt", "ordinary: 4 MB of lines",
     lambda d: kbfiles.write(d / "notes.txt", (_PARAGRAPH + "\n") * 25_000)),
    ("txt", "1 MB of '.'", lambda d: kbfiles.write(d / "dots.txt", "." * 1_000_000)),
    ("txt", "1 MB of '.' then quotes",
     lambda d: kbfiles.write(d / "quotes.txt", "." + "'" * 1_000_000)),
]


def read(path: Path, timeout: float) -> tuple[float, float, str]:
    """Seconds and peak MB of a fresh process reading `path`, and what it reported (the peak
    as the process saw it; for one killed at `timeout`, the largest size polled)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _READ, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    polled = 0
    try:
        while proc.poll() is None and time.perf_counter() - start < timeout:
            with contextlib.suppress(psutil.Error):  # it may end between poll and look
                polled = max(polled, psutil.Process(proc.pid).memory_info().rss)
            time.sleep(0.05)
    finally:
        proc.kill()
        out = proc.communicate()[0].strip().splitlines()
    seconds = time.perf_counter() - start
    if seconds >= timeout:
        return seconds, polled / 2**20, f"killed after {timeout:g} s"
    if len(out) < 2 or not out[-2].isdigit():
        return seconds, polled / 2**20, f"exit {proc.returncode}: {out[-1:] or ''}"
    return seconds, int(out[-2]), out[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--only", help="one type: docx, pdf, html or txt")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; each file read in a fresh "
          "process, default cap and budget")
    print(f"{'type':5} {'file':36} {'size KB':>8} {'s':>7} {'peak MB':>8} {'time x':>7} "
          f"{'memory x':>8}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        base: dict[str, tuple[float, float]] = {}
        for kind, name, make in FILES:
            if args.only and kind != args.only:
                continue
            folder = Path(tmp) / str(len(os.listdir(tmp)))
            folder.mkdir()
            path = make(folder)
            seconds, peak, outcome = read(path, args.timeout)
            base.setdefault(kind, (seconds, peak))
            print(f"{kind:5} {name:36} {path.stat().st_size / 1024:>8,.0f} {seconds:>7.2f} "
                  f"{peak:>8.0f} {seconds / base[kind][0]:>7.1f} {peak / base[kind][1]:>8.1f}  "
                  f"{outcome[:110]}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
