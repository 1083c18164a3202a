"""Graders: is a model's answer right? Maths by value, the cup puzzle by its conclusion.

`grade(answer, expected, kind, grader)` is what comparisons use; the pieces (`parse_number`,
`math_answer`, `grade_cup`, …) are public for notebooks and tests.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from .errors import ConfigurationError
from .reasoning import extract_boxed

_EN_BED = re.compile(r"\b(?:on|onto|upon|in|at)\s+(?:the\s+|a\s+|my\s+|your\s+)?"
                     r"(?:bed|mattress|bedsheets?|sheets?)\b")
_EN_BED_NEG = re.compile(r"\b(?:not|isn't|is\s+no\s+longer|no\s+longer|never)\s+"
                         r"(?:\w+\s+)?(?:on|in)\s+(?:the\s+)?bed\b")
_EN_WRONG = re.compile(
    r"\b(?:is|remains|stays|stayed|still|now|goes|went|moved|travels|travelled|traveled)\s+"
    r"(?:\w+\s+)?(?:in|inside|within|into|under)\s+(?:the\s+|a\s+)?"
    r"(?:cup|other\s+room|another\s+room|next\s+room|new\s+room|different\s+room|second\s+room)\b"
)
_ZH_BED = re.compile(r"床上|在床|床面|床单上|留在床|落在床|掉在床")
_ZH_BED_NEG = re.compile(r"(?:不|没|没有|并不|并没有)(?:会|是)?(?:在|留在)床")
_ZH_WRONG = re.compile(
    r"(?:球|它)(?:还|仍|仍然|依然|就|也|会|跟着|随着)*(?:在|留在|到了|进了|被带到)"
    r"(?:杯子|杯中|杯里|杯内|另一个房间|另一间|别的房间|其他房间|隔壁)"
    r"|(?:还|仍|仍然|依然)(?:在|留在)(?:杯子|杯中|杯里|杯内)"
)


def grade_cup(answer: str, expected: str | None = None) -> bool:
    """Grade the cup puzzle in Chinese or English: the ball is on the bed.

    A heuristic over the answer text: it must place the ball on the bed without negating it;
    when it also claims the ball is in the cup or the other room, the first claim wins (answers
    usually state their conclusion first).
    """
    text = answer.lower().replace("’", "'")
    if _EN_BED_NEG.search(text) or _ZH_BED_NEG.search(text):
        return False
    bed = [m.start() for p in (_EN_BED, _ZH_BED) if (m := p.search(text))]
    if not bed:
        return False
    wrong = [m.start() for p in (_EN_WRONG, _ZH_WRONG) if (m := p.search(text))]
    return not wrong or min(bed) < min(wrong)


def _norm_text(s: str) -> str:
    return re.sub(r"[\s\W_]+", " ", s.lower()).strip()


def grade_contains(answer: str, expected: str | None) -> bool | None:
    """Default text grader: the expected text appears in the answer (case and punctuation
    ignored)."""
    if expected is None:
        return None
    want = _norm_text(str(expected))
    return bool(want) and want in _norm_text(answer)


# --- maths ------------------------------------------------------------------------------------

_NUM = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:\s*/\s*\d+)?")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_CN_RUN = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+")


def chinese_number(text: str) -> int | None:
    """Value of a Chinese numeral such as 十二, 二十六, 八百零一, 两千 (None if not one)."""
    if not text or any(ch not in _CN_DIGITS and ch not in _CN_UNITS for ch in text):
        return None
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
            continue
        unit = _CN_UNITS[ch]
        if unit >= 10_000:
            section = (section + (digit or 0)) * unit
            total += section
            section = 0
        else:
            section += (1 if digit is None else digit) * unit
        digit = None
    return total + section + (digit or 0)


def last_number(text: str) -> str | None:
    """The last number written in `text` (1,234 / -2.5 / 3/4), else a Chinese numeral."""
    text = text.replace("−", "-").replace("－", "-")
    found = None
    for m in _NUM.finditer(text):
        start = m.start()
        s = m.group()
        if s.startswith("-") and start > 0 and (text[start - 1].isalnum() or text[start - 1]
                                                in ")]}"):
            s = s[1:]  # a subtraction, not a negative number
        found = s
    if found is not None:
        return found
    runs = [r for r in _CN_RUN.findall(text) if chinese_number(r) is not None]
    if runs:
        return str(chinese_number(runs[-1]))
    return None


_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEXT_CMD = re.compile(r"\\(?:text|mathrm|mbox|textbf|mathbf)\s*\{[^{}]*\}")


def parse_number(text: str | float | int | None) -> Fraction | None:
    """A careful numeric parse: `42`, `1,234`, `-2.5`, `3/4`, `\\frac{3}{4}`, `60%`, `$30`,
    `26 \\text{ pencils}`, `x = 5`. Returns None when `text` is not a single number."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        if isinstance(text, float) and not math.isfinite(text):
            return None
        return Fraction(text).limit_denominator(10**9)
    s = str(text).strip()
    s = _TEXT_CMD.sub("", s)
    s = _LATEX_FRAC.sub(r"(\1)/(\2)", s)
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    s = s.replace("\\!", "").replace("\\,", "").replace("−", "-").replace("{", "").replace(
        "}", "")
    s = re.sub(r"^\s*[a-zA-Z]\s*=\s*", "", s)  # x = 5
    s = s.replace("(", "").replace(")", "").strip().rstrip(".。")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = s.strip()
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?:\s*/\s*(-?\d+(?:\.\d+)?))?", s)
    if not m:
        cn = chinese_number(s)
        return Fraction(cn) if cn is not None else None
    num = Fraction(m.group(1))
    if m.group(2) is not None:
        den = Fraction(m.group(2))
        if den == 0:
            return None
        num /= den
    return num


def math_answer(answer: str, thinking: str = "") -> str | None:
    """The final answer of a maths reply: the last `\\boxed{}`, else the last number.

    When the reply has no answer at all (it stopped while reasoning), a box in the reasoning
    still counts; the reasoning's loose numbers do not.
    """
    boxed = extract_boxed(answer)
    if boxed is not None:
        return boxed
    if answer.strip():
        return last_number(answer)
    return extract_boxed(thinking)


def _symbolic_equal(expected: str, candidate: str) -> bool:
    try:
        from math_verify import parse, verify
    except ImportError:
        return False
    # math-verify times out with SIGALRM, which only works in the main thread.
    main = threading.current_thread() is threading.main_thread()
    timeout = 5 if main else None
    gold = parse(f"${expected}$", parsing_timeout=timeout)
    pred = parse(f"\\boxed{{{candidate}}}", parsing_timeout=timeout)
    if not gold or not pred:
        return False
    return bool(verify(gold, pred, timeout_seconds=timeout))


def numbers_equal(expected: str | float | int, candidate: str) -> bool:
    """Numeric equality (relative 1e-6), else symbolic equality through math-verify."""
    want, got = parse_number(expected), parse_number(candidate)
    if want is not None and got is not None:
        return _close(want, got)
    if _symbolic_equal(str(expected), candidate):
        return True
    # "26 pencils", "x = 5 cm": the last number of the final answer.
    inner = last_number(candidate)
    got = parse_number(inner) if inner is not None else None
    return want is not None and got is not None and _close(want, got)


def _close(want: Fraction, got: Fraction) -> bool:
    return abs(float(want - got)) <= 1e-6 * max(1.0, abs(float(want)))


def grade_math(answer: str, expected: str | float | int | None, thinking: str = "") -> bool | None:
    """Whether a maths reply's final answer equals `expected` (None when nothing is expected)."""
    if expected is None:
        return None
    candidate = math_answer(answer, thinking)
    if candidate is None:
        return False
    return numbers_equal(expected, candidate)


Grader = Callable[[str, Any], "bool | None"]

#: Text graders by name: `grader(answer, expected) -> bool | None`.
GRADERS: dict[str, Grader] = {"cup": grade_cup, "contains": grade_contains}


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array is a value, not a missing one
        return False


def grade(answer: str | None, expected: Any, kind: str = "text", grader: Any = None, *,
          thinking: str = "") -> bool | None:
    """Grade one answer: None when nothing is expected; maths by value; text by its grader
    (a name in `GRADERS` or a callable `(answer, expected) -> bool`), else by containment."""
    if is_missing(expected):
        return None
    answer = answer if isinstance(answer, str) else ""
    thinking = thinking if isinstance(thinking, str) else ""
    if kind == "math":
        return grade_math(answer, expected, thinking)
    if callable(grader):
        return grader(answer, expected)
    if is_missing(grader):
        return grade_contains(answer, str(expected))
    if grader not in GRADERS:
        raise ConfigurationError(f"unknown grader {grader!r}: choose one of {sorted(GRADERS)}")
    return GRADERS[grader](answer, str(expected))
