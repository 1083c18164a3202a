"""Inside one reasoning trace: where a candidate answer appears, changes and settles, how many
tokens follow once it has settled, and how often the model reflects ("wait", "等等"), measured
with the prompt's own grader on the reasoning as it grows (issue 23's trace anatomy; the
per-comparison tables and plots build on `anatomy`).

Positions are token indices into the reasoning: a character offset scaled by the reply's own
count of thinking tokens (`Stats.thinking_tokens`), so every backend gives them without a
tokenizer; a word-based estimate stands in when the count is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..language import CJK
from . import grading

#: What counts as reflection, English and Chinese: the words R1-style traces use when they stop
#: to re-check or change course (DeepSeek-R1's paper points at "wait" as the "aha moment").
#: Matched case-insensitively, English as whole words, longest first, without overlaps; pass
#: `markers=` to count your own.
REFLECTION_MARKERS: tuple[str, ...] = (
    "wait", "hmm", "hold on", "let me check", "let me verify", "let me double-check",
    "double-check", "double check", "re-check", "recheck", "actually", "alternatively",
    "on second thought", "but wait",
    "等等", "等一下", "不对", "再检查", "重新检查", "检查一下", "验证", "其实", "再想想",
    "换个思路", "另一种方法",
)
#: Where a step of reasoning ends: the candidate answer is read at each.
_STEP = re.compile(r"[。！？；\n]+|[.!?;](?=\s|$)")
_WORDS = re.compile(r"\w+|[^\w\s]")


def _pattern(markers: Sequence[str]) -> re.Pattern[str]:
    parts = []
    for marker in sorted(set(markers), key=len, reverse=True):
        text = re.escape(marker)
        # English markers as whole words ("wait" not in "await"); Chinese ones anywhere.
        parts.append(text if CJK.search(marker) else rf"(?<![\w-]){text}(?![\w-])")
    return re.compile("|".join(parts), re.IGNORECASE)


def reflections(text: str, markers: Sequence[str] = REFLECTION_MARKERS) -> list[tuple[int, str]]:
    """(character offset, marker as written) of every reflection marker in `text`."""
    if not markers or not text:
        return []
    return [(m.start(), m.group()) for m in _pattern(markers).finditer(text)]


def estimate_tokens(text: str) -> int:
    """A token count without a tokenizer: a Chinese character one, a word or sign 1.3."""
    cjk = len(CJK.findall(text))
    rest = len(_WORDS.findall(CJK.sub(" ", text)))
    return cjk + round(1.3 * rest)


@dataclass(frozen=True)
class Anatomy:
    """One trace, measured. Token indices count from the start of the reasoning."""

    tokens: int  # thinking tokens in the trace
    candidates: list[tuple[int, str]]  # (token, candidate) each time the candidate changes
    first_correct: int | None  # where a right candidate first appears; None if never
    settled: int | None  # where the candidate last changed; None without any
    overthinking: int | None  # tokens after it settled
    found_then_lost: bool  # right in the reasoning, wrong in the final answer
    correct: bool | None  # the final answer's verdict (None: nothing expected)
    markers: list[tuple[int, str]] = field(default_factory=list)  # (token, marker)

    @property
    def changes(self) -> int:
        """How often the candidate changed after it first appeared."""
        return max(0, len(self.candidates) - 1)

    @property
    def overthinking_share(self) -> float:
        """The share of the trace spent after the candidate settled (NaN without one)."""
        if self.overthinking is None or not self.tokens:
            return float("nan")
        return self.overthinking / self.tokens

    @property
    def reflections_per_1k(self) -> float:
        """Reflection markers per 1,000 thinking tokens."""
        return 1000 * len(self.markers) / self.tokens if self.tokens else float("nan")


def anatomy(thinking: str, answer: str, expected: Any, *, kind: str = "math",
            grader: Any = None, thinking_tokens: int | None = None,
            markers: Sequence[str] = REFLECTION_MARKERS) -> Anatomy:
    """Measure a trace: the grader's candidate answer read at the end of every step of the
    reasoning (what `final_answer` would take if the reply stopped there), graded against
    `expected` as the final answer is; reflection markers found; the final `answer` graded."""
    thinking = thinking if isinstance(thinking, str) else ""
    tokens = thinking_tokens if thinking_tokens else estimate_tokens(thinking)

    def token_at(offset: int) -> int:
        return round(offset * tokens / len(thinking)) if thinking else 0

    candidates: list[tuple[int, str]] = []
    first_correct: int | None = None
    ends = [m.end() for m in _STEP.finditer(thinking)]
    if not ends or ends[-1] < len(thinking):
        ends.append(len(thinking))
    for end in ends:
        prefix = thinking[:end]
        found = grading.final_answer(prefix, kind, grader) if kind == "math" or grader == "cup" \
            else None
        if found is not None and (not candidates or candidates[-1][1] != found):
            candidates.append((token_at(end), found))
        if first_correct is None and grading.grade(prefix, expected, kind, grader):
            first_correct = token_at(end)
    correct = grading.grade(answer, expected, kind, grader, thinking=thinking)
    settled = candidates[-1][0] if candidates else None
    return Anatomy(
        tokens=tokens, candidates=candidates, first_correct=first_correct, settled=settled,
        overthinking=None if settled is None else max(0, tokens - settled),
        found_then_lost=first_correct is not None and correct is False, correct=correct,
        markers=[(token_at(offset), marker) for offset, marker in reflections(thinking,
                                                                             markers)])
