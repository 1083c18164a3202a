"""Which language a text is in, as far as dskit needs to know: Chinese or not."""

from __future__ import annotations

import re

#: Chinese characters (CJK unified ideographs, extension A, compatibility ideographs).
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_chinese(text: str) -> bool:
    """Whether `text` contains Chinese characters (prompts, cues and notes follow it)."""
    return CJK.search(text) is not None


def size_label(text: str) -> str:
    """`42 words`, or `120 characters` for Chinese (which has no spaces between words)."""
    cjk = len(CJK.findall(text))
    words = len(text.split())
    if cjk > words:
        return f"{cjk} characters"
    return f"{words} words" if words else ""
