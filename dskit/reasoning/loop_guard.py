"""Degenerate repetition, decided in one place: the stream's loop guard and the graders' test.

Small models (and R1-1.5b) fall into loops: the same character, phrase or paragraph over and
over until the token limit ("！" 4,093 times). Two questions are asked about such text here:

- `LoopGuard` watches a reply as it streams and says when to stop it: the last `min_bytes`
  (360) or more bytes of text are one unit of at most `max_unit` characters (200) repeated
  verbatim at least `min_repeats` times (10) in a row. Bytes of UTF-8, not characters: a
  Chinese character is three bytes and often as many tokens for a small model's byte-level
  vocabulary, so a Chinese loop is stopped after 120 characters, an English one after 360.
  Legitimate text does not repeat itself like that: counting changes its numbers, lists and
  table rows change their contents, code repeats a line a few times, Chinese repeats a
  character a few times ("哈哈哈哈"). A reply that really
  must print 360 identical characters, or fifteen identical table rows in a row, is stopped
  too: pass `loop_guard=False` for it.
- `has_degenerate_run` is the graders' stricter test on a finished answer: a short word
  repeated four or more times in a row is not an answer, whatever words it repeats (measured
  on labelled answers: docs/graders.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: `done_reason` of a reply the guard stopped.
REPETITION = "repetition"

#: Graders: a word of up to 8 characters repeated 4+ times in a row (not "……", not spaces).
DEGENERATE_RUN = re.compile(r"(\w.{0,7}?)\1{3,}")


def has_degenerate_run(text: str) -> bool:
    """Whether a finished answer holds a short word repeated 4+ times in a row (graders)."""
    return DEGENERATE_RUN.search(text) is not None


@dataclass(frozen=True)
class Loop:
    """A loop found at the end of a stream: the unit, how often it repeats, over how much text."""

    unit: str
    repeats: int
    chars: int  # characters the repetition spans

    def note(self) -> str:
        """What a reply stopped by the guard says about it."""
        shown = self.unit if len(self.unit) <= 30 else self.unit[:29] + "…"
        return (f"Stopped by the loop guard: the reply repeated {shown!r} {self.repeats} times in "
                f"a row ({self.chars} characters), a loop that would have run to the token "
                "limit. Pass loop_guard=False to let such a reply run.")


class LoopGuard:
    """Feed it a stream's text; `feed()` returns a `Loop` once the tail is a degenerate loop.

    Checked every `check_every` new characters, on a window just long enough to decide, so
    watching costs well under a millisecond per check whatever the reply's length.
    """

    def __init__(self, *, min_bytes: int = 360, min_repeats: int = 10, max_unit: int = 200,
                 check_every: int = 32) -> None:
        self.min_bytes, self.min_repeats, self.max_unit = min_bytes, min_repeats, max_unit
        self.check_every = check_every
        self._window = max(min_bytes, min_repeats * max_unit) + max_unit
        self._tail = ""
        self._unchecked = 0
        #: The loop found, once `feed` returned it.
        self.loop: Loop | None = None

    def feed(self, text: str) -> Loop | None:
        """Add streamed text; the `Loop` when the stream has become one, else None."""
        if self.loop is not None:
            return self.loop
        self._tail = (self._tail + text)[-self._window:]
        self._unchecked += len(text)
        if self._unchecked < self.check_every or len(self._tail) < self.min_repeats:
            return None
        self._unchecked = 0
        self.loop = find_loop(self._tail, min_bytes=self.min_bytes,
                              min_repeats=self.min_repeats, max_unit=self.max_unit)
        return self.loop


def find_loop(text: str, *, min_bytes: int = 360, min_repeats: int = 10,
              max_unit: int = 200) -> Loop | None:
    """The shortest unit whose verbatim repetition makes up the end of `text`, if long enough
    (at least `min_repeats` times and `min_bytes` bytes of UTF-8)."""
    n = len(text)
    for p in range(1, min(max_unit, n // min_repeats) + 1):
        if text[-1] != text[-1 - p]:
            continue  # cheap filters: a p-periodic tail repeats its last character p back,
        unit = text[-p:]
        if text[-2 * p:-p] != unit:
            continue  # and its last unit once
        reps = max(min_repeats, -(-min_bytes // len(unit.encode("utf-8"))))
        if reps * p > n:
            continue
        if text[-reps * p:] != unit * reps:
            continue
        while (reps + 1) * p <= n and text[-(reps + 1) * p: -reps * p] == unit:
            reps += 1
        return Loop(unit=unit, repeats=reps, chars=reps * p)
    return None
