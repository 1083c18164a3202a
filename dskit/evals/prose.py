"""Sentences for a lesson's page, wrapped so they read well where they are printed."""

from __future__ import annotations

import re
import textwrap

#: JupyterLab breaks a long output line anywhere, mid-number too ("[0.0" / "0–1.00]"): the
#: findings dskit prints wrap at word boundaries first, narrower than an output area at 1280 px.
WIDTH = 100


def prose(text: str, width: int = WIDTH) -> str:
    """Each line of `text` wrapped at word boundaries, its continuation indented two spaces."""
    return "\n".join(textwrap.fill(line, width, subsequent_indent="  ", break_long_words=False,
                                   break_on_hyphens=False) if line.strip() else line
                     for line in text.split("\n"))


def findings(text: str) -> list[str]:
    """The findings of a `prose` text, one string each (its wrapped lines joined again)."""
    return [" ".join(part.split()) for part in re.split(r"\n(?! )", text) if part.strip()]
