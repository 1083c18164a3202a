"""The part of a passage worth showing for a query: a window around the words it matched."""

from __future__ import annotations

import re
import unicodedata

from . import lexical

#: How wide an excerpt is by default, in terminal columns (a Chinese character takes two).
WIDTH = 160
ELLIPSIS = "…"


def columns(ch: str) -> int:
    """How many terminal columns a character takes: two for wide (Chinese, full-width) ones."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _matches(text: str, query: str) -> list[tuple[int, int, str]]:
    """Where the query's words occur in `text`: (start, end, word), words of Latin script only
    as whole words. Key words first (龙井, "oven"); single Chinese characters only when the
    query has nothing else."""
    lowered = "".join(c if len(c := ch.lower()) == 1 else ch for ch in text)
    words = lexical.key_terms(query) or set(lexical.query_terms(query))
    found = []
    for word in words:
        pattern = re.escape(word) if lexical.CJK.match(word) else \
            rf"(?<![^\W_]){re.escape(word)}(?![^\W_])"
        found += [(m.start(), m.end(), word) for m in re.finditer(pattern, lowered)]
    return sorted(found)


def excerpt(text: str, query: str, width: int = WIDTH) -> str:
    """`text` with its white space collapsed, whole when it fits in `width` columns, else the
    window of that width that holds the most of the query's words (the earliest such window,
    centred on its words), cut at a space where one is near and marked with … where cut."""
    text = " ".join(text.split())
    cols = [columns(ch) for ch in text]
    if sum(cols) <= width:
        return text
    room = width - 2 * columns(ELLIPSIS)
    ends = [0]
    for c in cols:
        ends.append(ends[-1] + c)

    def window(start: int) -> tuple[int, int]:
        """The characters from `start` that fit in `room` columns."""
        end = start
        while end < len(text) and ends[end + 1] - ends[start] <= room:
            end += 1
        return start, end

    def centred(first: int, last: int) -> tuple[int, int]:
        """The window whose middle is the middle of characters `first`…`last`."""
        middle = (ends[first] + ends[last]) // 2
        start = next(i for i in range(len(text) + 1) if ends[i] >= middle - room // 2)
        return window(min(start, _last_start(ends, room)))

    hits = _matches(text, query)
    best, best_key = window(0), (-1, -1)
    inside: list[tuple[int, int, str]] = []
    for s, e, _ in hits:
        w = centred(s, e)
        held = [h for h in hits if h[0] >= w[0] and h[1] <= w[1]]
        key = (len({h[2] for h in held}), len(held))
        if key > best_key:
            best, best_key, inside = w, key, held
    if inside:  # centred on all the words it holds, not on the first of them
        best = centred(inside[0][0], inside[-1][1])
    return _cut(text, *best)


def _last_start(ends: list[int], room: int) -> int:
    """The first character of the last window: the one that reaches the end of the text."""
    total = ends[-1]
    return next(i for i in range(len(ends)) if total - ends[i] <= room)


def _cut(text: str, start: int, end: int) -> str:
    """`text[start:end]`, moved to a space where one is within a few characters, with …"""
    if start > 0 and (space := text.find(" ", start, start + 12)) != -1:
        start = space + 1
    if end < len(text) and (space := text.rfind(" ", end - 12, end)) != -1:
        end = space
    return (ELLIPSIS if start > 0 else "") + text[start:end].strip() + \
        (ELLIPSIS if end < len(text) else "")
