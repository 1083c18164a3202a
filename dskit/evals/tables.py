"""Comparison tables as a person reads them: `readable()` for rows or a summary in a notebook
or a terminal, `verdict()` and `ended()` for one row's outcome, `answers()` for a run's answers
line by line. Every cell goes through `summary.shown` (floats rounded, "–" for missing or
infinite numbers); text keeps its line breaks and is wrapped, never cut."""

from __future__ import annotations

import html
import textwrap
import unicodedata
from typing import TYPE_CHECKING, Any

from ..errors import clip
from .results import as_bool, blank
from .summary import SUMMARY_COLUMNS, for_display, is_sweep, shown

if TYPE_CHECKING:
    import pandas as pd

#: Width in characters past which a text column wraps (in a notebook, about 36em).
WRAP = 60

_STYLE = (
    ".dskit-readable{border-collapse:collapse;font-size:.9em}"
    ".dskit-readable th,.dskit-readable td{padding:.25em .6em;vertical-align:top;"
    "border-bottom:1px solid rgba(127,127,127,.25)}"
    ".dskit-readable th{text-align:left;white-space:nowrap}"
    ".dskit-readable td{text-align:right;white-space:nowrap}"
    ".dskit-readable td.dskit-word{text-align:left}"
    ".dskit-readable td.dskit-text{text-align:left;white-space:pre-wrap;overflow-wrap:anywhere;"
    "min-width:10em;max-width:36em}"
    # A table wider than the output area scrolls inside it instead of spilling past its edge
    # (JupyterLab at 1280 px with the file browser open leaves about 900 px).
    ".dskit-scroll{overflow-x:auto;max-width:100%}"
)


def _cell(value: Any, column: str, sweep_columns: set[str]) -> str:
    """One cell as text: a verdict as ✓/✗, a sweep's missing budget as "none", runs of blank
    lines as one line break, numbers by `shown`."""
    if column == "correct":
        return {True: "✓", False: "✗"}.get(as_bool(value), "–")  # type: ignore[arg-type]
    if column in sweep_columns and blank(value):
        return "none"
    if isinstance(value, str):
        lines = [line.rstrip() for line in value.strip().splitlines()]
        return "\n".join(line for line in lines if line) or "–"
    return shown(value)


class Table:
    """A table's cells as text (`.data`), shown whole: in a notebook as HTML with long text
    wrapped in its column (model output escaped), elsewhere as text with wrapped columns."""

    def __init__(self, data: pd.DataFrame, text_columns: list[str],
                 word_columns: list[str] | None = None) -> None:
        self.data = data
        self.text_columns = text_columns  # wrapped
        self.word_columns = set(word_columns or text_columns)  # to the left, unlike numbers

    def _css(self, column: str) -> str:
        """The class of a column's cells: wrapped text, words (to the left) or numbers."""
        return " class='dskit-text'" if column in self.text_columns else \
            " class='dskit-word'" if column in self.word_columns else ""

    def html(self) -> str:
        """The table as HTML, every cell escaped, its own style included."""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.data.columns)
        body = []
        for row in self.data.itertuples(index=False):
            cells = "".join(f"<td{self._css(c)}>{html.escape(v)}</td>"
                            for c, v in zip(self.data.columns, row, strict=True))
            body.append(f"<tr>{cells}</tr>")
        return (f"<style>{_STYLE}</style><div class='dskit-scroll'><table class='dskit-readable'>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")

    def __str__(self) -> str:
        """Columns side by side (numbers to the right); a long text wraps onto more lines of
        its row."""
        columns = [str(c) for c in self.data.columns]
        text = [c in self.text_columns for c in columns]
        left = [c in self.word_columns for c in columns]
        rows = [[_wrapped(v, wraps) for v, wraps in zip(r, text, strict=True)]
                for r in self.data.itertuples(index=False)]
        widths = [max([_width(h)] + [_width(line) for r in rows for line in r[i]])
                  for i, h in enumerate(columns)]

        def line(cells: list[str]) -> str:
            return "  ".join(_pad(c, w, left) for c, w, left
                             in zip(cells, widths, left, strict=True)).rstrip()

        out = [line(columns)]
        for r in rows:
            out += [line([cell[k] if k < len(cell) else "" for cell in r])
                    for k in range(max(len(cell) for cell in r))]
        return "\n".join(out)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.html()


def _width(text: str) -> int:
    """Columns `text` takes in a terminal (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, left: bool) -> str:
    """`text` padded to `width` terminal columns, to the left for text, right for numbers."""
    space = " " * (width - _width(text))
    return text + space if left else space + text


def _wrapped(text: str, wrap: bool) -> list[str]:
    """A cell's lines: its own line breaks, each wrapped at `WRAP` when it is text."""
    if not wrap:
        return [text]
    return [part for line in text.splitlines() or [""]
            for part in textwrap.wrap(line, WRAP) or [""]]


def readable(table: pd.DataFrame) -> Table:
    """Rows of `ds.compare` (or a part of them), a `summary()`, `pass_at_k()` or `anatomy()`
    table fit to read: floats rounded, "–" for missing or infinite values, `correct` as ✓/✗,
    "none" for a sweep's missing budget, text with its line breaks kept and wrapped, not cut.
    A whole summary loses the columns that say nothing here (`for_display`)."""
    if set(SUMMARY_COLUMNS) <= set(table.columns):
        table = for_display(table)
    sweep_columns = {c for c in ("think_budget", "think_min") if is_sweep(table, c)}
    data = table.astype(object).copy()
    for column in data.columns:
        data[column] = [_cell(v, str(column), sweep_columns) for v in table[column]]
    text_columns = [str(c) for c in table.columns
                    if any(isinstance(v, str) and (len(v) > 24 or "\n" in v)
                           for v in table[c])]
    words = [str(c) for c in table.columns
             if any(isinstance(v, str) for v in table[c]) or c in sweep_columns]
    return Table(data, text_columns, words)


def verdict(row: dict[str, Any]) -> str:
    """A row's verdict: "✓ expected 3", "✗ expected 3", "– not graded", or "error: …"."""
    if not blank(row.get("error")):
        return f"error: {clip(str(row['error']), 200)}"
    expected = row.get("expected")
    if blank(expected) or expected == "":
        return "– no expected answer"
    mark = {True: "✓", False: "✗"}.get(as_bool(row.get("correct")), "?")  # type: ignore[arg-type]
    return f"{mark} expected {expected}"


def ended(row: dict[str, Any]) -> str:
    """Why a reply ended when it says something ("" for a normal stop)."""
    return {"length": "cut by the token limit (no final answer)",
            "repetition": "stopped by the loop guard (repeating itself)",
            "stopped": "stopped"}.get(str(row.get("done_reason")), "")


def answers(rows: pd.DataFrame, limit: int = 120) -> list[str]:
    """Each answer of a run on one line: verdict, model (and budget), prompt and sample, the
    answer on one line clipped at `limit` characters, and how it ended when it was cut."""
    out = []
    for row in rows.to_dict("records"):
        label = str(row["model"])
        for key in ("think_budget", "think_min"):
            if key in row and not blank(row[key]):
                label += f" {key}={int(row[key])}"
        answer = " ".join(str(row.get("answer") or "").split())
        said = f"{verdict(row)} · {label} · {row['prompt_id']} #{row.get('sample', 0)}"
        if blank(row.get("error")):
            said += f' · "{clip(answer, limit)}"' if answer else " · (no answer)"
        why = ended(row)
        out.append(said + (f" · {why}" if why else ""))
    return out
