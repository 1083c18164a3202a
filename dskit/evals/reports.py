"""`report()`: one self-contained page (HTML or Markdown) for a comparison run, to keep or share.

    rows = ds.compare(models, "cup", samples=4)
    ds.report(rows, "report.html")      # or "report.md"; a `ds.compare.summary(rows)` works too

The page holds the settings, the machine (`doctor()`'s facts), the summary table and what it
says in words, the plots as embedded images, and a few sample answers per model with their
reasoning folded and their verdicts. It loads nothing from anywhere (images are `data:` URIs,
no script, a strict Content-Security-Policy), model output is escaped or rendered as safe
Markdown, and API keys, tokens and the home folder never appear in it.
"""

from __future__ import annotations

import base64
import html
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checkup import doctor
from ..display import markdown_html
from ..documents import (
    facts_html,
    folded_text_markdown,
    page_html,
    safe_markdown,
    table_cell,
    write_text,
)
from ..errors import ConfigurationError
from .prose import findings
from .summary import describe, for_display, is_sweep, shown, summary

if TYPE_CHECKING:
    import pandas as pd

#: The summary columns a report shows, in order (the budget and minimum ones only in a sweep of
#: them).
SUMMARY_COLUMNS = ["model", "think_budget", "think_min", "n", "errors", "truncated", "looped",
                   "budget_hit", "extended", "pass@1", "tokens_per_s", "tokens_per_s_std",
                   "ttft_s", "thinking_tokens", "total_s", "load_s"]


def report(data: pd.DataFrame, path: str | os.PathLike[str], *, title: str = "",
           samples: int = 2, settings: dict[str, Any] | None = None,
           machine: bool = True) -> Path:
    """Write a report of a comparison to `path` (`.html` or `.md`); returns the path.

    `data`: the rows of `ds.compare` (then the summary, latency plot and sample answers come
    from them) or a `ds.compare.summary` table. `samples`: answers shown per model (different
    prompts first). `settings`: more to list beside the run's own (`rows.attrs["settings"]`).
    `machine`: include `doctor()`'s facts (backend, CPU, RAM, GPU, disk).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in (".html", ".htm", ".md"):
        raise ConfigurationError(
            f"cannot write a report to {str(path)!r}: name it .html (a web page) or .md")
    rows, table = _split(data)
    facts = _settings(data, rows, settings)
    machine_rows = [(c, f) for c, f, _s in doctor().rows] if machine else []
    png = _plots(table, rows)
    picked = _samples(rows, samples) if rows is not None else []
    title = title or "dskit comparison report"
    said = describe(table) if len(table) else "No rows: nothing was compared."
    if suffix == ".md":
        text = _markdown(title, facts, machine_rows, table, said, png, picked)
    else:
        text = _html(title, facts, machine_rows, table, said, png, picked)
    return write_text(path, text)


# --- the pieces ---------------------------------------------------------------------------------

def _split(data: Any) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """(rows or None, summary) from what was passed."""
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise ConfigurationError(
            "report() takes the rows of ds.compare(...) or ds.compare.summary(rows), "
            f"not {type(data).__name__}")
    if {"model", "prompt_id", "answer"} <= set(data.columns):
        return data, summary(data)
    if {"model", "pass@1"} <= set(data.columns):
        return None, data
    raise ConfigurationError(
        "report() takes the rows of ds.compare(...) or ds.compare.summary(rows); this table "
        f"has the columns {list(data.columns)}")


def _settings(data: pd.DataFrame, rows: pd.DataFrame | None,
              extra: dict[str, Any] | None) -> list[tuple[str, str]]:
    out: dict[str, Any] = {"written": time.strftime("%Y-%m-%d %H:%M %Z"),
                           "python": platform.python_version()}
    out.update(data.attrs.get("settings") or {})
    if rows is not None:
        out["models"] = ", ".join(dict.fromkeys(str(m) for m in rows["model"]))
        out["prompts"] = str(rows["prompt_id"].nunique())
        out["rows"] = str(len(rows))
        if data.attrs.get("interrupted"):
            out["interrupted"] = "yes: the run was stopped; these are the rows it finished"
    out.update(extra or {})
    return [(str(k), "default" if v is None else str(v)) for k, v in out.items()]


def _plots(table: pd.DataFrame, rows: pd.DataFrame | None) -> bytes | None:
    if table.empty:
        return None
    from .plots import summary_png  # matplotlib loads only when a report is written

    return summary_png(table, rows)


def _samples(rows: pd.DataFrame, per_model: int) -> list[dict[str, Any]]:
    """A few rows per model (per model and budget in a sweep), different prompts first."""
    picked: list[dict[str, Any]] = []
    keys = [k for k in ("model", "think_budget", "think_min") if k in rows] if is_sweep(rows) \
        else ["model"]
    for _key, g in rows.groupby(keys, sort=False, dropna=False):
        first = g.drop_duplicates("prompt_id")
        rest = g.drop(first.index)
        picked += (list(first.to_dict("records")) + list(rest.to_dict("records")))[:per_model]
    return picked


def _verdict(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"error: {row['error']}"
    expected, correct = row.get("expected"), row.get("correct")
    if not expected:
        return "no expected answer (not graded)"
    marks: dict[Any, str] = {True: "✓ correct", False: "✗ wrong"}  # NaN/NA: not graded
    mark = marks.get(correct, "? not graded")
    return f"{mark} (expected {expected})"


def _ended(row: dict[str, Any]) -> str:
    reason = row.get("done_reason") or ""
    return "cut by the token limit (no final answer)" if reason == "length" else reason


def _number(value: Any) -> str:
    """A cell as the summary's other readers show it ("–" for missing or infinite)."""
    return shown(value)


def _heading(row: dict[str, Any]) -> str:
    """`model · prompt · sample n`, with the budget and minimum when the row had them."""
    budget, least = row.get("think_budget"), row.get("think_min")
    model = str(row["model"]) + ("" if budget is None or _number(budget) == "–"
                                 else f" (think_budget={int(budget)})")
    if least is not None and _number(least) != "–" and int(least):
        model += f" (think_min={int(least)})"
    return f"{model} · {row['prompt_id']} · sample {row['sample']}"


def _table_cells(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    view = for_display(table)
    cols = [c for c in SUMMARY_COLUMNS if c in view.columns]
    return cols, [[_number(r[c]) for c in cols] for r in view.to_dict("records")]


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --- Markdown -----------------------------------------------------------------------------------

def _md_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(table_cell(h) for h in head) + " |",
             "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(table_cell(c) for c in row) + " |" for row in body]
    return lines


def _markdown(title: str, facts: list[tuple[str, str]], machine: list[tuple[str, str]],
              table: pd.DataFrame, said: str, png: bytes | None,
              picked: list[dict[str, Any]]) -> str:
    lines = [f"# {table_cell(title)}", "", "## Settings", ""]
    lines += _md_table(["setting", "value"], facts)
    if machine:
        lines += ["", "## Machine", "", *_md_table(["check", "finding"], machine)]
    lines += ["", "## Summary", "", *_md_table(*_table_cells(table))]
    lines += ["", *(f"- {safe_markdown(line)}" for line in findings(said)), ""]
    if png is not None:
        lines += [f"![accuracy, speed and latency per model]({_png_uri(png)})", ""]
    if picked:
        lines += ["## Sample answers", ""]
    for row in picked:
        lines += [f"### {table_cell(_heading(row))}", "", "**Prompt**", "",
                  safe_markdown(str(row["prompt"])), "",
                  f"**Verdict:** {table_cell(_verdict(row))}"
                  + (f" · ended: {table_cell(_ended(row))}" if _ended(row) else ""), ""]
        if row.get("thinking"):
            lines += [folded_text_markdown("Reasoning", str(row["thinking"])), ""]
        if row.get("answer"):
            lines += ["**Answer**", "", safe_markdown(str(row["answer"])), ""]
    return "\n".join(lines).rstrip() + "\n"


# --- HTML ---------------------------------------------------------------------------------------

def _html_table(head: Sequence[str], body: Sequence[Sequence[str]], css: str) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                  for row in body)
    return f"<table class='{css}'><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _html(title: str, facts: list[tuple[str, str]], machine: list[tuple[str, str]],
          table: pd.DataFrame, said: str, png: bytes | None,
          picked: list[dict[str, Any]]) -> str:
    body = [f"<h1>{html.escape(title)}</h1>", "<h2>Settings</h2>",
            facts_html(facts, "dskit-settings")]
    if machine:
        body += ["<h2>Machine</h2>", facts_html(machine, "dskit-machine")]
    body += ["<h2>Summary</h2>", _html_table(*_table_cells(table), "dskit-summary"),
             "<ul class='dskit-describe'>"
             + "".join(f"<li>{html.escape(line)}</li>" for line in findings(said)) + "</ul>"]
    if png is not None:
        body.append(f"<img class='dskit-plot' alt='accuracy, speed and latency per model' "
                    f"src='{_png_uri(png)}'>")
    if picked:
        body.append("<h2>Sample answers</h2>")
    for row in picked:
        ended = _ended(row)
        parts = [f"<h3>{html.escape(_heading(row))}</h3>",
                 f"<div class='dskit-prompt'><b>Prompt</b>{markdown_html(str(row['prompt']))}"
                 "</div>",
                 f"<p class='dskit-verdict'><b>Verdict:</b> {html.escape(_verdict(row))}"
                 + (f" · ended: {html.escape(ended)}" if ended else "") + "</p>"]
        if row.get("thinking"):
            parts.append("<details><summary>Reasoning</summary><pre class='dskit-thinking'>"
                         f"{html.escape(str(row['thinking']))}</pre></details>")
        if row.get("answer"):
            parts.append(f"<div class='dskit-answer'>{markdown_html(str(row['answer']))}</div>")
        body.append(f"<section class='dskit-section dskit-sample'>{''.join(parts)}</section>")
    return page_html(title, "".join(body))
