"""The comparison widget: pick models and a prompt set, run, watch each answer arrive with its
verdict, then the summary table and plot."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..client import Client, default_client
from ..evals.comparison import compare
from ..evals.plots import summary_png
from ..evals.prompts import load
from ..evals.results import blank
from ..evals.summary import summary
from ..evals.tables import ended, readable, verdict
from .base import StatusLine, Worker, WorkerWidget, controls, stop_button, tagged

PROMPT_SETS = ("cup", "cup-en", "maths")


class CompareWidget(WorkerWidget):
    """Pick models and a prompt set, run `ds.compare`, watch progress, see the table and plot."""

    def __init__(self, client: Client | None = None, models: list[str] | None = None,
                 prompts: str = "cup", samples: int = 1, max_tokens: int = 256) -> None:
        self.client = client or default_client()
        available = list(dict.fromkeys([*(models or []), *self.client.models()]))
        self.models = W.SelectMultiple(options=available, value=tuple(models or available[:2]),
                                       description="models", rows=min(6, max(2, len(available))))
        self.prompt_set = W.Dropdown(options=PROMPT_SETS, value=prompts, description="prompts")
        self.samples = W.IntSlider(value=samples, min=1, max=10, description="samples")
        self.max_tokens = W.IntText(value=max_tokens, description="max tokens")
        self.run_button = tagged(W.Button(description="Run", button_style="primary", icon="play"),
                                 "run")
        self.stop_button = stop_button()
        self.progress = tagged(W.IntProgress(value=0, min=0, max=1, description="0 / 0"),
                               "progress")
        self.status = StatusLine()
        self.answers = tagged(W.HTML(value=""), "answers")
        self.table = tagged(W.HTML(value=""), "table")
        # Hidden until there is a picture: an empty image shows the browser's broken-image icon.
        self.plot = tagged(W.Image(format="png", layout=W.Layout(max_width="720px",
                                                                 display="none")), "plot")
        self._rows: list[dict[str, Any]] = []
        self.result: Any = None  # the rows DataFrame of the last run
        self.worker = Worker(self.status, self._set_busy)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.worker.stop())
        super().__init__([
            controls(self.models, W.VBox([self.prompt_set, self.samples, self.max_tokens])),
            controls(self.run_button, self.stop_button, self.progress),
            self.status, self.answers, self.table, self.plot,
        ])
        self.add_class("dskit-compare")

    def run(self, wait: bool = False) -> None:
        """Start the comparison in a thread (Stop stays clickable); `wait` blocks until done."""
        if not self.models.value:
            self.status.error("pick at least one model")
            return
        if self.worker.start(self._work) and wait:
            self.worker.wait()

    def _set_busy(self, busy: bool) -> None:
        self.run_button.disabled, self.stop_button.disabled = busy, not busy

    def _tick(self, row: dict[str, Any]) -> None:
        self.progress.value += 1
        self.progress.description = f"{self.progress.value} / {self.progress.max}"
        self._rows.append(row)
        self.answers.value = answers_html(self._rows)

    def _work(self) -> None:
        models = list(self.models.value)
        n = len(load(self.prompt_set.value)) * self.samples.value * len(models)
        self.progress.max, self.progress.value = n, 0
        self.progress.description = f"0 / {n}"
        self.table.value, self.answers.value, self._rows = "", "", []
        self.plot.layout.display = "none"
        self.status.busy("running… (the first call of each model includes loading it)")
        df = compare(models, self.prompt_set.value, samples=self.samples.value,
                     client=self.client, max_tokens=self.max_tokens.value, progress=False,
                     loop_guard=True, stop=self.worker.stopping, on_row=self._tick)
        self.result = df
        table = summary(df)
        self.table.value = readable(table).html()
        self.plot.value = summary_png(table)
        self.plot.layout.display = ""
        stopped = bool(df.attrs.get("interrupted"))
        truncated = int((df["done_reason"] == "length").sum())
        looped = int((df["done_reason"] == "repetition").sum())
        cut = (f"; {truncated} cut by the token limit (raise max tokens)" if truncated else "")
        cut += f"; {looped} stopped by the loop guard" if looped else ""
        self.status.done(("stopped: " if stopped else "done: ") + f"{len(df)} of {n} calls{cut}",
                         stopped=stopped)


def answers_html(rows: list[dict[str, Any]]) -> str:
    """Each answer as it arrives: model, question, the whole answer (folded past a few lines),
    verdict, and why it ended."""
    body = []
    for row in rows:
        answer = "" if not blank(row.get("error")) else str(row.get("answer") or "")
        cells = (html.escape(str(row["model"])), html.escape(_short(str(row["prompt"]), 60)),
                 _answer_cell(answer), html.escape(verdict(row)), html.escape(ended(row)))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("model", "prompt", "answer", "verdict", "ended"))
    return (f"<style>{_STYLE}</style><div class='dskit-scroll'><table "
            f"class='dskit-answers-table'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


#: Characters of an answer shown before the rest is folded (click to read it whole).
FOLD = 200

_STYLE = (".dskit-answers-table td{vertical-align:top;text-align:left;padding:.2em .5em}"
          ".dskit-answers-table td:nth-child(3){white-space:pre-wrap;overflow-wrap:anywhere;"
          "min-width:12em;max-width:40em}"
          ".dskit-scroll{overflow-x:auto;max-width:100%}")


def _answer_cell(answer: str) -> str:
    """The whole answer, escaped: short ones as they are, long ones folded after `FOLD`
    characters (a cut answer would hide the number the verdict is about)."""
    text = answer.strip()
    if len(text) <= FOLD:
        return html.escape(text)
    return (f"<details><summary>{html.escape(text[:FOLD])}… (more)</summary>"
            f"{html.escape(text)}</details>")


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
