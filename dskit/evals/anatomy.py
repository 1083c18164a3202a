"""Inside one reasoning trace: where a candidate answer appears, changes and settles, how many
tokens follow once it has settled, and how often the model reflects ("wait", "等等"), measured
with the prompt's own grader on the reasoning as it grows (issue 23's trace anatomy; the
per-comparison tables are `ds.compare.anatomy` and `anatomy_traces`, the plots
`plots.trace_timeline` and `plots.thinking_length`).

What is read, by kind of prompt:

- maths: a *candidate* is an answer the trace commits to (`grading.stated_answers`: a box, "the
  answer is 7", the result of a "so … / 所以 …" sentence); a *right* value may also first appear
  as a computed one (`grading.derived_values`: "3 + 4 = 7", "5减2是3"). Both are judged by the
  grader's own comparison (`grading.numbers_equal`).
- the cup puzzle: a candidate is each place a clause puts the ball (`grading.cup_claims`, what
  `grade_cup` chooses from); the right one is the bed.
- other graders: no candidates; where a right answer first appears is the first end of a step
  at which the reasoning so far, graded as an answer, is right.

Positions are token indices into the reasoning: the word-based estimate of `estimate_tokens`
up to a character, scaled to the reply's own count of thinking tokens (`Stats.thinking_tokens`)
when it is known, so every backend gives them without a tokenizer.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..language import CJK
from . import grading

#: What counts as reflection, English and Chinese: the words R1-style traces use when they stop
#: to re-check or change course (DeepSeek-R1's paper points at "wait" as the "aha moment").
#: Matched case-insensitively, English as whole words ("hmmm" counts as "hmm"), longest first,
#: without overlaps. A marker written with a leading "^" counts only where a clause starts (after
#: punctuation, a line break, or "but / oh / no / so / and / hmm / okay / 但 / 不过 / 嗯 / 哦"):
#: "Wait," and "But wait" do, "we wait for the bus" does not; "等等，" does, "苹果、梨等等" (etc.)
#: does not. Pass `markers=` to count your own.
REFLECTION_MARKERS: tuple[str, ...] = (
    "^wait", "hmm", "hold on", "let me check", "let me verify", "let me double-check",
    "double-check", "double check", "re-check", "recheck", "actually", "alternatively",
    "on second thought",
    "^等等", "等一下", "不对", "再检查", "重新检查", "检查一下", "验证", "其实", "再想想",
    "换个思路", "另一种方法",
)
#: Where a step of reasoning ends (other graders are read at each).
_STEP = re.compile(r"[。！？；\n]+|[.!?;](?=\s|$)")
_TOKENS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|(?:(?![\u3400-\u9fff\uf900-\ufaff])\w)+|"
                     r"[^\w\s]")
_OPENERS = r"(?:but|oh|no|so|and|hmm+|okay|ok|但是|但|不过|可是|嗯|哦|啊)"
# "不对称" is asymmetric, not a correction; "验证码" a captcha.
_NOT_AFTER = {"不对": "称劲", "验证": "码"}


def _pattern(markers: Sequence[str], initial: bool) -> re.Pattern[str] | None:
    parts = []
    for marker in sorted({m.lstrip("^") for m in markers if m.startswith("^") == initial},
                         key=len, reverse=True):
        if not marker:
            continue
        text = re.escape(marker)
        if CJK.search(marker):  # Chinese has no spaces between words: found anywhere
            exclude = _NOT_AFTER.get(marker)
            parts.append(f"{text}(?![{exclude}])" if exclude else text)
        else:  # whole words: "wait" is not in "await"; a drawn-out last letter is the word
            parts.append(rf"(?<![\w-]){text}{re.escape(marker[-1])}*(?![\w-])")
    if not parts:
        return None
    body = "|".join(parts)
    if initial:  # the marker in group 1, after a clause start and an optional opener
        body = (rf"(?:^|(?<=[^\w\s])|(?<=\n))\s*(?:{_OPENERS}[\s,，、]*)?"
                rf"({body})")
    return re.compile(body, re.IGNORECASE)


def reflections(text: str, markers: Sequence[str] = REFLECTION_MARKERS) -> list[tuple[int, str]]:
    """(character offset, marker as written) of every reflection marker in `text`."""
    if not markers or not text:
        return []
    found: list[tuple[int, int, str]] = []
    for initial in (False, True):
        pattern = _pattern(markers, initial)
        if pattern is None:
            continue
        group = 1 if initial else 0
        found += [(m.start(group), m.end(group), m.group(group))
                  for m in pattern.finditer(text)]
    out: list[tuple[int, str]] = []
    reached = 0
    for start, end, marker in sorted(found, key=lambda f: (f[0], -f[1])):
        if start >= reached:  # overlapping markers ("let me double-check") count once
            out.append((start, marker))
            reached = end
    return out


def estimate_tokens(text: str) -> int:
    """A token count without a tokenizer: a Chinese character one, a word or sign 1.3."""
    return round(_Scale(text).total)


class _Scale:
    """Character offsets of one text as token indices (`estimate_tokens`' weights up to the
    offset, scaled to a known count of the text's tokens)."""

    def __init__(self, text: str, tokens: int | None = None) -> None:
        self.ends: list[int] = []
        self.weights: list[float] = []
        total = 0.0
        for m in _TOKENS.finditer(text):
            total += 1.0 if CJK.match(m.group()) else 1.3
            self.ends.append(m.end())
            self.weights.append(total)
        self.total = total
        self.tokens = tokens if tokens else round(total)

    def at(self, offset: int) -> int:
        """The token index at a character offset (the tokens that end at or before it)."""
        i = bisect.bisect_right(self.ends, offset)
        done = self.weights[i - 1] if i else 0.0
        return round(done * self.tokens / self.total) if self.total else 0


def token_index(text: str, offset: int, tokens: int | None = None) -> int:
    """The token index of character `offset` in `text`, as `anatomy` counts positions (`tokens`:
    the text's own token count, when known)."""
    return _Scale(text, tokens).at(offset)


@dataclass(frozen=True)
class Anatomy:
    """One trace, measured. Token indices count from the start of the reasoning."""

    tokens: int  # thinking tokens in the trace
    candidates: list[tuple[int, str]]  # (token, candidate) each time the candidate changes
    first_correct: int | None  # where a right answer first appears; None if never
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
    def reflections(self) -> int:
        """How many reflection markers the trace has."""
        return len(self.markers)

    @property
    def reflections_per_1k(self) -> float:
        """Reflection markers per 1,000 thinking tokens."""
        return 1000 * len(self.markers) / self.tokens if self.tokens else float("nan")


def _value(text: str) -> str:
    """One written form per value, as `grading.final_answer` gives it ("0.5" and "1/2": 1/2)."""
    number = grading.parse_number(text)
    return str(number) if number is not None else " ".join(text.split())


def _is_cup(grader: Any) -> bool:
    return grader == "cup" or grader is grading.grade_cup


def candidate_right(value: str, expected: Any, kind: str = "math", grader: Any = None) -> bool:
    """Whether a candidate `anatomy` read (a maths value, a cup place) is the right answer."""
    if grading.is_missing(expected):
        return False
    if kind == "math":
        return grading.numbers_equal(str(expected), value)
    return _is_cup(grader) and value == grading.CUP_ANSWER


def _read(thinking: str, expected: Any, kind: str, grader: Any
          ) -> tuple[list[tuple[int, str]], int | None]:
    """The candidates (character offset, value) as they change, and the offset where a right
    answer first appears."""
    graded = not grading.is_missing(expected)
    if kind == "math":
        verdicts: dict[str, bool] = {}

        def right(value: str) -> bool:
            if value not in verdicts:  # math-verify is slow: each value is judged once
                verdicts[value] = candidate_right(value, expected, kind, grader)
            return verdicts[value]

        stated = [(end, _value(v)) for end, v in grading.stated_answers(thinking)]
        seen = sorted(set(stated) | {(end, _value(v))
                                     for end, v in grading.derived_values(thinking)})
        first = next((end for end, v in seen if right(v)), None)
        return _changes(stated), first
    if _is_cup(grader):
        claims = grading.cup_claims(thinking)
        first = next((end for end, place in claims
                      if candidate_right(place, expected, kind, grader)), None)
        return _changes(claims), first
    if not graded:
        return [], None
    ends = [m.end() for m in _STEP.finditer(thinking)]
    if not ends or ends[-1] < len(thinking):
        ends.append(len(thinking))
    first = next((end for end in ends if grading.grade(thinking[:end], expected, kind, grader)),
                 None)
    return [], first


def _changes(readings: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The readings where the value differs from the one before."""
    out: list[tuple[int, str]] = []
    for end, value in readings:
        if not out or out[-1][1] != value:
            out.append((end, value))
    return out


def anatomy(thinking: str, answer: str, expected: Any, *, kind: str = "math",
            grader: str | Callable[[str, Any], bool | None] | None = None,
            thinking_tokens: int | None = None,
            markers: Sequence[str] = REFLECTION_MARKERS) -> Anatomy:
    """Measure a trace against `expected` with the prompt's grader (`kind`, `grader`, as
    `grading.grade` takes them): its candidate answers as they change, where a right answer
    first appears, where the candidate settles, reflection markers, and the final `answer`'s
    verdict (see the module's docstring for what is read)."""
    thinking = thinking if isinstance(thinking, str) else ""
    answer = answer if isinstance(answer, str) else ""
    scale = _Scale(thinking, thinking_tokens)
    readings, first = _read(thinking, expected, kind, grader)
    candidates = [(scale.at(end), value) for end, value in readings]
    correct = grading.grade(answer, expected, kind, grader, thinking=thinking)
    settled = candidates[-1][0] if candidates else None
    return Anatomy(
        tokens=scale.tokens, candidates=candidates,
        first_correct=None if first is None else scale.at(first), settled=settled,
        overthinking=None if settled is None else max(0, scale.tokens - settled),
        found_then_lost=first is not None and correct is False, correct=correct,
        markers=[(scale.at(offset), marker) for offset, marker in reflections(thinking,
                                                                             markers)])
