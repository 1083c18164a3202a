"""Graders: is a model's answer right? Maths by value, the cup puzzle by its conclusion, how
often and how long by value, the user's name said back (not claimed).

`grade(answer, expected, kind, grader)` is what comparisons use; the pieces (`parse_number`,
`math_answer`, `grade_cup`, …) are public for notebooks and tests.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import ConfigurationError
from ..reasoning.loop_guard import has_degenerate_run
from ..reasoning.think import boxes, extract_boxed

# --- the cup-and-ball puzzle -------------------------------------------------------------------
# Hand-written: no library grades a free-text answer by the place it finally names. The answer is
# cut into clauses; a clause is a *claim* when it puts the ball (球/它/ball/it, or no subject in
# a short bare answer such as "在床上。") in a place, not negated and not hedged. The verdict is
# the last claim of the conclusion (the text after the last "所以 / 答案 / so / final answer"),
# else of the whole answer. Measured on 50 labelled answers: docs/graders.md.

_PLACES = {
    "bed": re.compile(r"床|\b(?:on|onto|upon|in|at)\s+(?:the\s+|a\s+|my\s+|your\s+)?"
                      r"(?:bed|mattress|bedsheets?|sheets?)\b"),
    "cup": re.compile(r"杯(?:子)?(?:里|中|内|下|底)|\b(?:in|inside|within|into|under|underneath|"
                      r"beneath)\s+(?:the\s+|a\s+|that\s+)?cup\b|\bwith\s+(?:the\s+)?cup\b"),
    "other room": re.compile(r"另一个房间|另一间|别的房间|其他房间|另外的房间|另一个屋|隔壁|厨房|"
                             r"\b(?:other|another|next|new|different|second)\s+room\b|\bkitchen\b"),
}
_UNDER_CUP = re.compile(r"杯(?:子)?(?:下|底下)|"
                        r"\b(?:under|underneath|beneath)\s+(?:the\s+|a\s+|that\s+)?cup\b")
_BALL = re.compile(r"球|\bballs?\b|^\s*(?:它|it\b|it's|it is)")
_CUP_SUBJECT = re.compile(r"杯子|杯|\bcup\b")
_NEGATED = re.compile(r"不在|不是|没有|没在|并非|不会在|\bnot\b|n't\b|\bno longer\b|\bnever\b")
_HEDGED = re.compile(r"可能|也许|或许|或者|如果|假如|要是|否则|不然|取决于|\bcould\b|\bmight\b|"
                     r"\bmay\b|\bpossibly\b|\bperhaps\b|\bdepends\b|\bif\b|\botherwise\b|"
                     r"\bunless\b")
# A clause that goes on about the same subject: "…, resting on the bed"; Chinese drops the
# subject before a verb of lying or falling ("球会掉下来，落在床上").
_CONTINUES = re.compile(r"^\s*(?:也|还|仍|又|而是|而且|并且|落|掉|留|躺|待|呆|停|and\b|also\b|"
                        r"inside\b|which\b|"
                        r"resting\b|lying\b|sitting\b|still\b)")
_FILLER = re.compile(r"^\s*(?:答案?|答|是|在|就在|它在|而是在|the answer is|answer|it's|it is)?"
                     r"\s*[:：]?\s*")
_CONCLUSION = re.compile(r"最终答案|答案|结论|所以|因此|综上所述|综上|\bfinal answer\b|\banswer\b|"
                         r"\btherefore\b|\bthus\b|\bso\b|\bin conclusion\b")
_CLAUSES = re.compile(r"[。！？!?；;\n，,、：:—]+|\.(?:\s|$)|\s+(?:but|and then|then|while|when|"
                      r"after|before|because|since|whereas)\s+")


def _normalise(text: str) -> str:
    """NFKC (full-width to half-width), lower case, Markdown emphasis removed."""
    return unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("*", "")


def _claims(text: str) -> list[tuple[int, str]]:
    """The places the ball is put in, clause by clause ("conflict" for two places at once),
    each with where its clause ends."""
    claims: list[tuple[int, str]] = []
    subject = ""
    start = 0
    for cut in [*_CLAUSES.finditer(text), None]:
        end = len(text) if cut is None else cut.start()
        clause, start = text[start:end], (end if cut is None else cut.end())
        if not clause.strip():
            continue
        places = [name for name, rx in _PLACES.items() if rx.search(clause)]
        # "杯子里" is a place, "杯子被拿走" a subject: look for the cup outside the places.
        rest = clause
        for rx in _PLACES.values():
            rest = rx.sub(" ", rest)
        if _BALL.search(clause) or _is_bare(clause, places):
            subject = "ball"
        elif _CUP_SUBJECT.search(rest):
            subject = "cup"
        elif not _CONTINUES.search(clause):
            subject = ""
        if subject != "ball" or not places or _NEGATED.search(clause) or _HEDGED.search(clause):
            continue
        if set(places) == {"bed", "cup"} and _UNDER_CUP.search(clause):
            places = ["bed"]  # "on the bed under the cup": lying on the bed, the cup over it
        claims.append((end, places[0] if len(places) == 1 else "conflict"))
    return claims


def _is_bare(clause: str, places: list[str]) -> bool:
    """A clause that is only a place ("在床上", "On the bed.", "inside the cup"): an answer."""
    if len(places) != 1:
        return False
    rest = _FILLER.sub("", clause)
    for rx in _PLACES.values():
        rest = rx.sub(" ", rest)
    cjk = sum(1 for ch in rest if "\u3400" <= ch <= "\u9fff")
    return cjk <= 2 and len(re.findall(r"[a-z]+", rest)) <= 2


def cup_place(answer: str) -> str | None:
    """Where the answer finally puts the ball: "bed", "cup", "other room", "conflict" or None."""
    text = _normalise(answer)
    if not text.strip() or has_degenerate_run(text):
        return None  # degenerate repetition is not an answer, whatever words it repeats
    marks = list(_CONCLUSION.finditer(text))
    if marks:
        conclusion = _claims(text[marks[-1].end():])
        if conclusion:
            return conclusion[-1][1]
    claims = _claims(text)
    return claims[-1][1] if claims else None


def cup_claims(text: str) -> list[tuple[int, str]]:
    """Every place a text puts the ball, in order, as (where its clause ends, the place): the
    claims `cup_place` chooses from, for reading a reasoning trace as it grows."""
    # Normalised character by character, so that offsets stay those of `text`.
    same_length = "".join(n if len(n := unicodedata.normalize("NFKC", ch).lower()) == 1 else ch
                          for ch in text)
    return _claims(same_length.replace("’", "'").replace("*", " "))


#: The place the cup puzzle's right answer puts the ball.
CUP_ANSWER = "bed"


def grade_cup(answer: str, expected: str | None = None) -> bool:
    """Grade the cup puzzle in Chinese or English: right when the answer concludes the ball is
    on the bed (see `cup_place`)."""
    return cup_place(answer) == CUP_ANSWER


def _norm_text(s: str) -> str:
    return re.sub(r"[\s\W_]+", " ", s.lower()).strip()


def grade_contains(answer: str, expected: str | None) -> bool | None:
    """Default text grader: the expected text appears in the answer (case and punctuation
    ignored). An expected frequency or duration ("once a week", "每周一次", "30 minutes") is
    read by value instead: the answer must state the same one in any wording (see `periods`)."""
    if expected is None:
        return None
    want = _norm_text(str(expected))
    if not want:
        return False
    wanted = period(str(expected))
    if wanted is not None:
        return any(same_period(wanted, said, answer_has_rate=_has_rate(answer))
                   for said in periods(answer))
    return want in _norm_text(answer)


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


# "The answer is 84. Check: 84 / 7 = 12": a stated answer comes first after its marker; "so 14
# pens cost 3 × 14 = 42": after a "so" the result is the last number of the sentence.
_STATED = re.compile(r"final answer|the answer is|answer is|answer:|答案是|答案为|答案：|答案:|"
                     r"最终答案|结果是|结果为", re.I)
_CONCLUDED = re.compile(r"\bso\b|\btherefore\b|\bthus\b|\bin total\b|所以|因此|一共|总共|共计",
                        re.I)
_SENTENCE_END = re.compile(r"[。!?！？;；\n]|\.(?:\s|$)|[,，]\s*(?:because|since|as)\b|"
                           r"[,，]?\s*因为")
_NEGATED_NUMBER = re.compile(r"(?:\bnot\b|不是|而不是|并非)\s*-?\d[\d,.]*")
# "125 is the result of 1000 divided by 8": the number stated before its role.
_STATED_BEFORE = re.compile(r"(-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?)\s*(?:is|was|would be)\s+"
                            r"(?:the\s+)?(?:final\s+|correct\s+)?(?:answer|result|total)\b", re.I)


def math_answer(answer: str, thinking: str = "") -> str | None:
    """The final answer of a maths reply: the last `\\boxed{}`, else the number its conclusion
    states ("the answer is 84", "所以……= 7"), else the last number not negated ("7, not 3").

    When the reply has no answer at all (it stopped while reasoning), a box in the reasoning
    still counts; the reasoning's loose numbers do not. Degenerate repetition has no answer.
    """
    boxed = extract_boxed(answer)
    if boxed is not None:
        return boxed
    if not answer.strip():
        return extract_boxed(thinking)
    if has_degenerate_run(unicodedata.normalize("NFKC", answer)):
        return None
    candidates: list[tuple[int, str]] = [(m.start(), m.group(1))
                                         for m in _STATED_BEFORE.finditer(answer)]
    marks = [(m, True) for m in _STATED.finditer(answer)] + \
        [(m, False) for m in _CONCLUDED.finditer(answer)]
    for mark, stated in sorted(marks, key=lambda pair: pair[0].start(), reverse=True):
        rest = answer[mark.end():]
        end = _SENTENCE_END.search(rest)
        span = rest[: end.start()] if end else rest
        numbers = [m.group() for m in _NUM.finditer(span)]
        if numbers:
            candidates.append((mark.start(), numbers[0] if stated else str(last_number(span))))
            break
        if (spelled := last_number(span)) is not None:  # a Chinese numeral: 答案：四十二元
            candidates.append((mark.start(), spelled))
            break
    if candidates:
        return max(candidates)[1]  # the statement made last is the conclusion
    return last_number(_NEGATED_NUMBER.sub(" ", answer))


# A Chinese numeral counts as a value in a trace only before a measure word or a stop: "一下",
# "一起", "一样" are words, not the number 1.
_CN_VALUE = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+(?=\s*(?:个|只|元|块|支|本|人|次|"
                       r"天|岁|米|分|倍|辆|头|条|张|把|杯|颗|斤|年|小时|盒|箱|瓶|袋|包|页|"
                       r"[。，,.！!？?；;、]|$))")
# A derived value: "= 7", "等于 7", "equals 7"; "is / are / 是 / 得 7" only in a clause that
# computes or starts from a number ("3 plus 4 is 7", "5减2是3", "两盒就是八个"), not "each pen
# is 3 yuan".
_EQUALS = re.compile(r"(?:=|＝|等于|\bequals\b|\bis equal to\b)\s*")
_IS = re.compile(r"(?:\bis\b|\bare\b|\bmakes\b|\bgives\b|是|得)\s*")
_OPERATOR = re.compile(r"\d\s*[-+×*/÷x]\s*\d|\b(?:plus|minus|times|divided|multiplied)\b|"
                       r"[加减乘除]")
# "Okay, so Xiaoming has 5 apples": a trace opening by restating the question, not concluding.
_OPENING = re.compile(r"\s*(?:okay|ok|alright|all right|well)[,，\s]*$", re.I)
_CLAUSE_START = re.compile(r"[。！？；，,;!?\n]|\.(?:\s|$)")


def _number_after(text: str, at: int) -> tuple[int, str] | None:
    """The number (or Chinese numeral) `text` gives right at `at`: (where it ends, it)."""
    m = _NUM.match(text, at)
    if m:
        return m.end(), m.group()
    m = _CN_VALUE.match(text, at)
    if m and chinese_number(m.group()) is not None:
        return m.end(), str(chinese_number(m.group()))
    return None


def _unnegated(span: str) -> str:
    """`span` with its negated numbers ("not 3", "不是 3") blanked, offsets kept."""
    return _NEGATED_NUMBER.sub(lambda m: " " * len(m.group()), span)


def stated_answers(text: str) -> list[tuple[int, str]]:
    """Every answer `text` commits to, in order, as (where it ends, the value as written): a
    `\\boxed{}`, the first number after "the answer is / 答案是", the last number of a sentence
    a conclusion opens ("so … 42", "所以……7", "一共 7 个"), a number that "is the answer".
    What `math_answer` reads in a final answer, read all along a reasoning trace (the latest
    is its candidate at that point); numbers only mentioned ("14 pens") are not answers."""
    found = [(end, value) for end, value in boxes(text)]
    found += [(m.end(1), m.group(1)) for m in _STATED_BEFORE.finditer(text)]
    for mark, stated in [(m, True) for m in _STATED.finditer(text)] + \
            [(m, False) for m in _CONCLUDED.finditer(text)
             if not _OPENING.match(text, 0, m.start())]:
        end = _SENTENCE_END.search(text, mark.end())
        stop = end.start() if end else len(text)
        at, span = mark.end(), _unnegated(text[mark.end():stop])
        values = [(at + m.end(), m.group()) for m in _NUM.finditer(span)]
        values += [(at + m.end(), str(chinese_number(m.group())))
                   for m in _CN_VALUE.finditer(span) if chinese_number(m.group()) is not None]
        if values:
            values.sort()
            found.append(values[0] if stated else values[-1])
    return sorted(set(found))


def derived_values(text: str) -> list[tuple[int, str]]:
    """Every value `text` computes, in order, as (where it ends, the value): the number after
    "=", "等于", "equals", or after "is / 是 / 得" in a clause that computes or starts from a
    number ("3 + 4 is 7", "14 pens is 42 yuan", "两盒就是八个")."""
    found = []
    for mark in _EQUALS.finditer(text):
        if (value := _number_after(text, mark.end())) is not None:
            found.append(value)
    starts = [0] + [m.end() for m in _CLAUSE_START.finditer(text)]
    for mark in _IS.finditer(text):
        clause = text[starts[bisect.bisect_right(starts, mark.start()) - 1]: mark.start()]
        computes = _OPERATOR.search(clause) or _NUM.search(clause) or _CN_VALUE.search(clause)
        if computes and (value := _number_after(text, mark.end())) is not None:
            found.append(value)
    return sorted(set(found))


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


# --- how often and how long -------------------------------------------------------------------
# "once a week", "weekly", "1 time per week", "every 7 days", "每周一次", "一周喂一次" are one
# value: once per 7 days; "twice a week", "2 weeks" and "每两周一次" are others. Hand-written
# patterns, English and Chinese: a *rate* is times per period, a *span* a length of time; both
# are kept in days, exactly (Fractions). A bare span answers a how-often question ("1 week":
# every week) only when the answer states no rate at all.

_DAYS = {"second": Fraction(1, 86400), "minute": Fraction(1, 1440), "hour": Fraction(1, 24),
         "day": Fraction(1), "week": Fraction(7), "fortnight": Fraction(14),
         "month": Fraction(365, 12), "year": Fraction(365)}
_WORD_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
                 "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
                 "sixty": 60, "ninety": 90}
_EN_NUM = r"(?:\d{1,4}(?:\.\d+)?|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + ")"
_EN_UNIT = (r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|wks?|"
            r"fortnights?|months?|years?|yrs?)\b")
_CN_NUM = r"(?:\d{1,3}(?:\.\d+)?|[零一二两三四五六七八九十百]+|半)"
# 月 alone is also a month's name (三月, March): only 个月 counts a span of months.
# Not the tail of a longer number, an ordinal (第一天) or a date (12月12日).
_CN_START = r"(?<![\d第月])"
_CN_UNIT = r"(?:秒钟?|分钟|小时|钟头|天|日|晚|周|星期|礼拜|个月|月|年)"
_EN_ADVERB = {"hourly": "hour", "daily": "day", "nightly": "day", "weekly": "week",
              "fortnightly": "fortnight", "monthly": "month", "yearly": "year",
              "annually": "year"}
_TIMES = {"once": 1, "twice": 2, "thrice": 3}
_PERIOD_PATTERNS = [  # in order: each match is blanked before the next pattern looks
    # "1-2 weeks", "一两周", "两到三天": a range is no one value; blanked, never matched.
    ("range", re.compile(rf"\b{_EN_NUM}\s*(?:-|–|to|or)\s*{_EN_NUM}\s+{_EN_UNIT}|"
                         rf"{_CN_NUM}\s*(?:到|至|-|–|~|或)\s*{_CN_NUM}\s*个?{_CN_UNIT}|"
                         rf"[一二两三四五六七八九]{{2}}个?{_CN_UNIT}")),
    # "once a week", "twice per day", "3 times every 2 weeks", "1 time per week"
    ("rate", re.compile(rf"\b(?P<times>once|twice|thrice|{_EN_NUM}\s*times?)\s+"
                        rf"(?:a|an|per|each|every|in\s+an?)\s+(?:(?P<n>{_EN_NUM})\s+)?"
                        rf"(?P<unit>{_EN_UNIT})")),
    # "every week", "every other day", "every 7 days", "each month"
    ("rate", re.compile(rf"\b(?:every|each)\s+(?:(?P<other>other|second)\s+|(?P<n>{_EN_NUM})"
                        rf"\s+)?(?P<unit>{_EN_UNIT})")),
    # "weekly", "twice daily"
    ("rate", re.compile(rf"\b(?:(?P<times>once|twice|thrice|{_EN_NUM}\s*times?)\s+)?"
                        r"(?P<adverb>" + "|".join(_EN_ADVERB) + r")\b")),
    # "每周一次", "每个星期喂一次", "每两周一次", "每天三次", "每隔三天"; without 次: once
    ("rate", re.compile(rf"每(?:隔)?\s*(?P<n>{_CN_NUM})?\s*个?\s*(?P<unit>{_CN_UNIT})"
                        rf"(?:[^，。,.;；!！?？\n\d]{{0,6}}?(?P<times>{_CN_NUM})\s*(?:次|回|遍))?")),
    ("rate", re.compile(r"(?P<other>隔)(?P<unit>天|日|周|星期|月|年)")),
    # "一周一次", "一周喂一次", "两周一次", "一天三次"
    ("rate", re.compile(rf"{_CN_START}(?P<n>{_CN_NUM})\s*个?\s*(?P<unit>{_CN_UNIT})"
                        rf"[^，。,.;；!！?？\n\d]{{0,4}}?(?P<times>{_CN_NUM})\s*(?:次|回|遍)")),
    # "2 weeks", "a week", "fourteen days", "half an hour"
    ("span", re.compile(rf"\b(?P<half>half\s+an?\s+)(?P<unit>hour|day|year)\b|"
                        rf"\b(?P<n>{_EN_NUM})[\s-]+(?P<unit2>{_EN_UNIT})")),
    # "两周", "十四天", "一个星期", "半小时", "三个月"
    ("span", re.compile(rf"{_CN_START}(?P<n>{_CN_NUM})\s*(?P<ge>个)?\s*(?P<unit>{_CN_UNIT})")),
]
_NEGATION = re.compile(r"(?:\bnot|\bnever|不是|并非|而不是|不要)\s*$")


@dataclass(frozen=True)
class Period:
    """A frequency ("rate": times per day) or a duration ("span": days), and its words."""

    kind: str
    value: Fraction
    text: str = ""


def _unit_days(word: str) -> Fraction | None:
    """Days in one English or Chinese unit of time ("weeks", "星期", "个月")."""
    word = word.lstrip("个")
    for prefix, unit in (("sec", "second"), ("秒", "second"), ("min", "minute"),
                         ("分", "minute"), ("h", "hour"), ("小时", "hour"), ("钟头", "hour"),
                         ("d", "day"), ("night", "day"), ("天", "day"), ("日", "day"),
                         ("晚", "day"), ("w", "week"), ("周", "week"), ("星期", "week"),
                         ("礼拜", "week"), ("f", "fortnight"), ("mo", "month"), ("月", "month"),
                         ("y", "year"), ("年", "year")):
        if word.startswith(prefix):
            return _DAYS[unit]
    return None


def _amount(word: str | None) -> Fraction | None:
    """A count as written: 2, 1.5, "two", "a", 两, 十四, 半; None when absent or not one."""
    if word is None:
        return Fraction(1)
    word = word.strip()
    if word in _TIMES:
        return Fraction(_TIMES[word])
    word = re.sub(r"\s*times?$", "", word)
    if word in _WORD_NUMBERS:
        return Fraction(_WORD_NUMBERS[word])
    if word == "半":
        return Fraction(1, 2)
    if re.fullmatch(r"\d+(?:\.\d+)?", word):
        return Fraction(word)
    value = chinese_number(word)
    return Fraction(value) if value else None


def _mention(kind: str, m: re.Match[str]) -> Period | None:
    """The value one pattern's match states, or None (a zero, a month's name)."""
    groups = m.groupdict()
    if groups.get("adverb"):
        times = _amount(groups.get("times"))
        return Period("rate", times / _DAYS[_EN_ADVERB[groups["adverb"]]], m.group()) \
            if times else None
    unit = groups.get("unit") or groups.get("unit2") or ""
    days = _unit_days(unit)
    if days is None:
        return None
    if groups.get("half"):
        return Period("span", days / 2, m.group())
    n = Fraction(2) if groups.get("other") else _amount(groups.get("n"))
    if kind == "span":
        if unit == "月" and not groups.get("ge"):
            return None  # 三月 is March
        return Period("span", n * days, m.group()) if n else None
    times = _amount(groups.get("times"))
    if not n or not times:
        return None
    return Period("rate", times / (n * days), m.group())


def periods(text: str) -> list[Period]:
    """Every frequency and duration `text` states, in order of the patterns that read them;
    one directly negated ("not once a week", "不是每周一次") is left out."""
    text = _normalise(text)
    found: list[tuple[int, Period]] = []
    for kind, pattern in _PERIOD_PATTERNS:
        for m in pattern.finditer(text):
            if kind != "range" and not _NEGATION.search(text, 0, m.start()):
                said = _mention(kind, m)
                if said is not None:
                    found.append((m.start(), said))
        # Blank what was read, so that "once a week" is not read again as the span "a week".
        text = pattern.sub(lambda m: "\x00" * len(m.group()), text)
    return [p for _, p in sorted(found, key=lambda pair: pair[0])]


def period(text: str) -> Period | None:
    """The one frequency or duration `text` is ("once a week", "每周一次", "2 weeks"), else
    None: an expected answer graded by value (a few words around it are allowed)."""
    said = periods(text)
    if len(said) != 1:
        return None
    rest = _normalise(text).replace(said[0].text, " ")
    words = re.findall(r"[a-z]+", rest)
    cjk = sum(1 for ch in rest if "\u3400" <= ch <= "\u9fff")
    return said[0] if len(words) <= 2 and cjk <= 3 else None


def _has_rate(text: str) -> bool:
    return any(p.kind == "rate" for p in periods(text))


def same_period(wanted: Period, said: Period, *, answer_has_rate: bool = True) -> bool:
    """Whether `said` states `wanted`: equal rates or equal spans; a span also answers a rate
    as its interval ("1 week" for "once a week") when the answer states no rate."""
    if wanted.kind == said.kind:
        return wanted.value == said.value
    if wanted.kind == "rate" and said.kind == "span" and not answer_has_rate:
        return said.value * wanted.value == 1
    return False


# --- the user's name --------------------------------------------------------------------------
# "我叫什么名字？" asked after "我叫小明": "你叫小明", "Your name is Xiaoming" and "小明" say the
# name back; "我是小明" and "I'm Xiaoming" name the right person but answer as if the model were
# them, which is wrong. A claim is the name right after a first-person "I am / my name is",
# not followed by a possessive ("我是小明的助手" is someone else).
_FIRST_PERSON = re.compile(r"(?:我是|我叫|我的名字是|我的名字叫|本人是|\bi\s+am|\bi'm|"
                           r"\bmy\s+name\s+is|\bmy\s+name's|\bcall\s+me)\s*[:：,，]?\s*$")
_POSSESSIVE = re.compile(r"\s*(?:的|'s\b)")


def name_claim(answer: str, name: str) -> str | None:
    """The words with which `answer` claims to be `name` ("我是小明", "i'm xiaoming"), or None."""
    text, name = _normalise(answer), _normalise(name).strip()
    if not name:
        return None
    for m in re.finditer(re.escape(name), text):
        before = _FIRST_PERSON.search(text, max(0, m.start() - 24), m.start())
        if before and not _POSSESSIVE.match(text, m.end()):
            return text[before.start(): m.end()]
    return None


def grade_name(answer: str, expected: str | None) -> bool | None:
    """The user's name asked back: right when the answer says `expected` and never claims it
    in the first person ("我是小明" is wrong, "你叫小明" and "小明" are right)."""
    if expected is None:
        return None
    name = _normalise(str(expected)).strip()
    if not name or name not in _normalise(answer):
        return False
    return name_claim(answer, name) is None


Grader = Callable[[str, Any], "bool | None"]

#: Text graders by name: `grader(answer, expected) -> bool | None`.
GRADERS: dict[str, Grader] = {"cup": grade_cup, "contains": grade_contains,
                             "name": grade_name}


def is_missing(value: Any) -> bool:
    """None, NaN or a blank string: no value given."""
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


def final_answer(answer: str | None, kind: str = "text", grader: Any = None, *,
                 thinking: str = "") -> str | None:
    """The final answer as the grader reads it, in one form per value, for majority votes
    (cons@k): a maths reply's number ("42", "3/4") or box, the cup puzzle's place ("bed").
    None when the reply gives none, or for kinds without a final answer to vote on."""
    answer = answer if isinstance(answer, str) else ""
    thinking = thinking if isinstance(thinking, str) else ""
    if kind == "math":
        got = math_answer(answer, thinking)
        if got is None:
            return None
        value = parse_number(got)
        return str(value) if value is not None else " ".join(got.split())
    if grader == "cup" or grader is grade_cup:
        return cup_place(answer)
    return None


_CUP_WORDS = {"bed": ("on the bed", "在床上"), "cup": ("in the cup", "在杯子里"),
              "other room": ("in the other room", "在另一个房间"),
              "conflict": ("in two places at once", "同时在两个地方")}


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is right, what was expected and what the grader read as the answer."""

    correct: bool | None
    expected: str
    #: The final answer as the grader read it (a boxed value, a number, a place), if any.
    got: str | None = None
    #: Graded by value (maths): then a missing `got` means no final answer was found.
    numeric: bool = False

    @property
    def symbol(self) -> str:
        """✓, ✗, or ? when nothing could be graded."""
        return {True: "✓", False: "✗"}.get(self.correct, "?")  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.correct is None:
            return f"? not graded (expected {self.expected})"
        if self.correct:
            return f"✓ correct (expected {self.expected})"
        if self.got:
            said = f"the answer says {self.got}"
        else:
            said = "no final answer found" if self.numeric else "the answer does not say that"
        return f"✗ wrong: expected {self.expected}; {said}"


def verdict(answer: str, expected: Any, kind: str | None = None, grader: Any = None, *,
            thinking: str = "") -> Verdict:
    """Grade `answer` and say why: `Verdict(correct, expected, got)`.

    `kind` is "math" (graded by value) or "text"; by default "math" when `expected` is a number.
    `grader` is a name in `GRADERS` ("cup", "contains", "name") or a callable.
    """
    if kind is None:
        kind = "math" if not is_missing(expected) and parse_number(expected) is not None \
            else "text"
    correct = grade(answer, expected, kind, grader, thinking=thinking)
    got: str | None = None
    if kind == "math":
        got = math_answer(answer or "", thinking or "")
    elif grader == "cup" or grader is grade_cup:
        place = cup_place(answer or "")
        if place is not None:
            chinese = any("\u3400" <= ch <= "\u9fff" for ch in str(expected))
            got = _CUP_WORDS[place][1 if chinese else 0]
    elif grader == "name" or grader is grade_name:
        got = name_claim(answer or "", str(expected))  # "我是小明": the name, wrongly claimed
    elif (is_missing(grader) or grader == "contains" or grader is grade_contains) \
            and not correct and period(str(expected)) is not None:
        said = periods(answer or "")
        got = said[0].text if said else None  # "twice a week" for "once a week"
    return Verdict(correct, str(expected), got, numeric=kind == "math")
