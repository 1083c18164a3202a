"""The work one file may cost a knowledge base: what it may unpack to, and the CPU time,
memory, elements and pages spent reading it. A file over any of them fails with the reason.

Size caps alone are not enough: a 300 KB file can be built to make a parser run for minutes or
hold gigabytes (millions of elements, thousands of pages sharing one stream). Readers call
`Work.element`, `Work.step` and `Work.pages` as they go, so a file is stopped while it is
read, not after.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import LoadError

MB = 1024 * 1024
#: A container (DOCX, PDF) may unpack to this many times the file-size cap: compressed XML and
#: content streams are a few times larger than their file; a decompression bomb is thousands.
UNPACK_FACTOR = 4
#: A file may hold one XML or HTML element per this many bytes it may unpack to (10.5 M for the
#: 20 MB cap, about 16 s of parsing). Word writes 30–60 bytes per element, python-docx 12 for
#: a short paragraph; an empty element takes 4. This bounds time where the text cap cannot (an
#: empty element has no text).
ELEMENT_BYTES = 8
#: PDF pages a file may have per MB of the cap (10,000 for 20 MB).
PAGES_PER_MB = 500
#: CPU seconds a file may take to read: a base plus this much per MB of the file itself, so a
#: small file gets a small budget (10.5 s for 100 KB, 110 s for 20 MB). Ordinary files take
#: a tenth of it (bench/bench_hostile_files.py).
SECONDS_BASE = 10.0
SECONDS_PER_MB = 5.0
#: How much reading one file may grow the process's resident memory: this many MB per MB of
#: the cap, at least `MEMORY_MIN_MB` (500 MB for the 20 MB cap).
MEMORY_PER_MB = 25
MEMORY_MIN_MB = 256
#: Time and memory are looked at once every this many steps (a look costs about 30 µs).
CHECK_EVERY = 4096
#: What the reasons suggest.
_RAISE = "raise max_file_mb to include it"


def _mb(size: float) -> str:
    return f"{size / MB:.1f}"


def _size(size: int) -> str:
    """A file's size as people say it: 2 KB, 0.3 MB is 307 KB, 4.1 MB."""
    return f"{max(1, round(size / 1024))} KB" if size < MB else f"{size / MB:.1f} MB"


@dataclass(frozen=True)
class Limits:
    """How much one file may unpack to and hold, derived from the file-size cap `max_mb`.

    Checked while unpacking, never after: an archive member or a PDF stream over `unpacked`
    bytes is refused before it is decompressed, and extraction stops at `chars` characters
    (a plain-text file at the size cap holds about that many).
    """

    max_mb: float
    unpacked: int
    chars: int
    elements: int
    pages: int
    memory: int

    @classmethod
    def for_cap(cls, max_mb: float) -> Limits:
        """The limits for files of at most `max_mb` megabytes."""
        size = int(max_mb * MB)
        return cls(max_mb, UNPACK_FACTOR * size, size, UNPACK_FACTOR * size // ELEMENT_BYTES,
                   max(100, int(max_mb * PAGES_PER_MB)),
                   int(max(MEMORY_MIN_MB, MEMORY_PER_MB * max_mb) * MB))

    def too_big(self, what: str, size: int) -> LoadError:
        """The reason a file that unpacks to more than its limits is skipped."""
        return LoadError(
            f"{what} unpacks to {_mb(size)} MB, over the {_mb(self.unpacked)} MB allowed for "
            f"a {self.max_mb:g} MB file (a decompression bomb?); {_RAISE}", "skipped")

    def too_much_text(self) -> LoadError:
        """The reason a file whose text is over the character cap is skipped."""
        return LoadError(
            f"the text in this file is over {self.chars:,} characters, the cap for "
            f"{self.max_mb:g} MB files (a decompression bomb?); {_RAISE}", "skipped")


@lru_cache(maxsize=1)
def _process() -> Any:
    import psutil

    return psutil.Process()


def _rss() -> int:
    return int(_process().memory_info().rss)


class Work:
    """The work spent reading one file, stopped with a `LoadError` (status failed) once it is
    over the file's budget: CPU seconds, memory growth, elements or pages.

    CPU time is the reading thread's own (`time.thread_time`), so a busy machine or another
    thread does not make a file fail; memory is the process's resident size, which another
    thread can grow too, hence a generous budget.
    """

    def __init__(self, limits: Limits, size: int, seconds: float | None = None) -> None:
        self.limits = limits
        self.size = size
        self.seconds = seconds if seconds is not None else \
            SECONDS_BASE + SECONDS_PER_MB * size / MB
        self.elements = 0
        self.steps = 0
        self._next_check = CHECK_EVERY
        self._cpu0 = time.thread_time()
        self._rss0 = _rss()

    def element(self, count: int = 1) -> None:
        """Count `count` parsed elements (XML or HTML)."""
        self.elements += count
        if self.elements > self.limits.elements:
            raise LoadError(
                f"it holds over {self.limits.elements:,} elements, the most a "
                f"{self.limits.max_mb:g} MB file may have (built to be slow to read?); "
                f"{_RAISE}")
        self.step(count)

    def step(self, count: int = 1) -> None:
        """Count `count` steps of work (an element, a PDF operator, a row); look at time and
        memory every `CHECK_EVERY` steps."""
        self.steps += count
        if self.steps >= self._next_check:
            self._next_check = self.steps + CHECK_EVERY
            self.check()

    def pages(self, count: int) -> None:
        """Refuse a document of more pages than the budget allows."""
        if count > self.limits.pages:
            raise LoadError(
                f"it has {count:,} pages, over the {self.limits.pages:,} a "
                f"{self.limits.max_mb:g} MB file may have; {_RAISE}")

    def check(self) -> None:
        """`LoadError` when reading has taken more CPU time or memory than the budget."""
        spent = time.thread_time() - self._cpu0
        if spent > self.seconds:
            raise LoadError(
                f"reading it took over {self.seconds:.1f} s of CPU, the budget for a "
                f"{_size(self.size)} file (built to be slow to read?); raise "
                "max_file_seconds to include it")
        grew = _rss() - self._rss0
        if grew > self.limits.memory:
            raise LoadError(
                f"reading it took over {_mb(self.limits.memory)} MB of memory, the budget for "
                f"a {self.limits.max_mb:g} MB file (built to be costly to read?); {_RAISE}")
