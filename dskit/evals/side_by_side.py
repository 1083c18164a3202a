"""`side_by_side()`: one prompt, several models, their answers streaming in columns side by side.

    view = ds.side_by_side(ds.prompts.cup_puzzle("zh"), models=["deepseek-r1:1.5b",
                                                                 "deepseek-r1:14b"])
    view.replies          # one Reply per column (None where a column failed before it began)
    view.save("cup.html") # or .md / .json

Each column shows its model's load step ("loading deepseek-r1:14b … 6.2 s"), the reasoning
(folded), the answer as safe Markdown, the verdict when the prompt has a known answer, and a
footer with TTFT, tokens/s, token counts, load time and memory. Models run one after another
when the backend holds one model at a time (the embedded backend with `max_loaded=1`, or
without a core for each of their threads; Ollama unless OLLAMA_MAX_LOADED_MODELS says more),
else at the same time. Stop (`view.stop()`, Ctrl-C,
the kernel's interrupt) ends every column and keeps what arrived; an error in one column (an
unknown model, out of memory) shows in that column and the others go on.
"""

from __future__ import annotations

import dataclasses
import html
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import sysinfo
from ..backends.base import LocalModels
from ..client import Client, cpu_load_meter, default_client
from ..confidence_view import confidence_details
from ..conversation.session import chat
from ..display import markdown_html, reply_html
from ..documents import (
    facts_html,
    options_text,
    page_html,
    reply_data,
    reply_markdown,
    reply_section_html,
    safe_markdown,
    save_document,
    table_cell,
)
from ..errors import ConfigurationError, DskitError, StreamInterrupted
from ..reasoning.think import math_prompt
from .prompts import Prompt
from .summary import busy_warning

if TYPE_CHECKING:
    from ..reply import Reply

#: Column labels, in order ("A", "B", …): what the arena's votes refer to.
LABELS = "ABCDEF"
#: A live view redraws at most this often (each redraw resends the whole HTML).
REFRESH_S = 0.1

_STYLE = (
    "<style>.dskit-sbs{display:grid;gap:.8em;align-items:start}"
    ".dskit-column{border:1px solid rgba(127,127,127,.3);border-radius:6px;padding:.5em .7em;"
    "min-width:0;overflow-wrap:anywhere}"
    ".dskit-column-head{font-weight:600}.dskit-column-head .dskit-label{display:inline-block;"
    "min-width:1.4em;text-align:center;background:#446;color:#fff;border-radius:4px;"
    "margin-right:.4em}"
    ".dskit-column-load,.dskit-column-state{color:#778;font-size:.88em}"
    ".dskit-column-error{color:#c22;font-size:.92em}"
    ".dskit-column-footer{color:#889;font-size:.85em;margin-top:.3em}"
    ".dskit-sbs-prompt{margin:.3em 0 .6em}.dskit-sbs-prompt .dskit-expected{color:#667}</style>"
)


@dataclasses.dataclass
class Column:
    """One model's column: its label, load step, state, reply and error."""

    model: str
    label: str
    #: waiting, loading, reasoning, answering, done, stopped, error
    state: str = "waiting"
    #: Seconds this view spent loading the model (0.0: it was in memory; None: not known).
    load_time: float | None = None
    #: What the load step says ("loading smollm2:135m …", "preparing the model file … 40 %").
    load_note: str = ""
    reply: Reply | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the column has nothing more to do."""
        return self.state in ("done", "stopped", "error")


def holds_all(client: Client, models: Sequence[str]) -> bool:
    """Whether the backend keeps all `models` in memory at once (so they can run together).

    Embedded: its `max_loaded`, and a core for every llama.cpp thread of every model (runs
    that share cores slow each other down many times over: `DSKIT_THREADS=1` lets two models
    share two cores). Ollama: OLLAMA_MAX_LOADED_MODELS as set here (unset: one at a time,
    since each new size would unload the last on a GPU). An OpenAI-compatible endpoint serves
    what it lists (a platform, or one server per model): at once.
    """
    backend = client.backend
    if not isinstance(backend, LocalModels):
        return True
    handling = backend.model_handling()
    threads = handling.threads_per_model * len(models)
    return handling.max_loaded >= len(models) and threads <= sysinfo.cpu_cores()[0]


class SideBySide:
    """The same prompt to several models, one column each; holds every `Reply`.

    Renders as HTML in a notebook (also in a saved one), `save()`s as Markdown, HTML or JSON.
    `blind=True` hides the model names behind the labels until `reveal()` (the arena).
    """

    def __init__(self, prompt: str | Prompt, models: Sequence[str], *,
                 client: Client | None = None, concurrent: bool | None = None,
                 blind: bool = False, **options: Any) -> None:
        models = [models] if isinstance(models, str) else list(models)
        if not models:
            raise ConfigurationError("side_by_side() needs at least one model: models=[...]")
        if len(models) > len(LABELS):
            raise ConfigurationError(
                f"side_by_side() shows at most {len(LABELS)} columns; got {len(models)} models")
        if len(set(models)) != len(models):
            raise ConfigurationError(f"a model is listed twice: {models}")
        if {"format", "tools"} & set(options):
            raise ConfigurationError(
                "side_by_side() streams every column, and format= and tools= need the whole "
                "reply first: ask each model with ds.chat(prompt, model, format=..., tools=...)")
        if isinstance(prompt, Prompt):
            self.prompt: Prompt | None = prompt
            text = math_prompt(prompt.prompt) if prompt.kind == "math" else prompt.prompt
        elif isinstance(prompt, str) and prompt.strip():
            self.prompt, text = None, prompt
        else:
            raise ConfigurationError(
                "the prompt is empty: pass some text or a prompt such as "
                "ds.prompts.cup_puzzle('zh')")
        self.text = text
        self.client = client or default_client()
        #: Whether finished columns show their tokens shaded by confidence (`confidence=True`
        #: asks every model for log-probabilities).
        self.shade = bool(options.pop("confidence", False))
        if self.shade:
            options.setdefault("logprobs", True)
        # Columns are watched, like compare and the widgets: a looping reply is stopped there
        # (loop_guard; pass loop_guard=False to let it run).
        self.options = {"loop_guard": True, **options}
        self.columns = [Column(m, LABELS[i]) for i, m in enumerate(models)]
        self.concurrent = holds_all(self.client, models) if concurrent is None else concurrent
        self.blind = blind
        self.revealed = not blind
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._streams: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._display: Any = None  # the live display handle in a notebook
        #: How busy other programs kept the CPU while the columns ran (None: not measured, or
        #: the models run elsewhere); describe() warns when it was busy.
        self.cpu_load: sysinfo.CpuLoad | None = None
        self._meter: Callable[[], sysinfo.CpuLoad | None] | None = None
        self._shown_at: int | None = None  # the cell (execution count) it was shown live in

    # --- results ------------------------------------------------------------------------------

    @property
    def models(self) -> list[str]:
        """The models, in column order."""
        return [c.model for c in self.columns]

    @property
    def replies(self) -> list[Reply | None]:
        """One `Reply` per column (None for a column that failed before its reply began)."""
        return [c.reply for c in self.columns]

    @property
    def expected(self) -> str | None:
        """The known answer of the prompt, if it has one."""
        return self.prompt.expected if self.prompt is not None else None

    @property
    def done(self) -> bool:
        """Whether every column has finished (done, stopped or failed)."""
        return all(c.finished for c in self.columns)

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stop.is_set()

    def reply(self, model_or_label: str) -> Reply | None:
        """The reply of a model (or of a column label, "A")."""
        for c in self.columns:
            if model_or_label in (c.model, c.label):
                return c.reply
        raise ConfigurationError(f"{model_or_label!r} is not one of {self.models} "
                                 f"or a label {list(LABELS[:len(self.columns)])}")

    @property
    def hidden(self) -> bool:
        """Whether the view hides what tells the models apart (blind, before the vote)."""
        return self.blind and not self.revealed

    def reveal(self) -> SideBySide:
        """Show the model names, stats and verdicts (after a blind vote)."""
        self.revealed = True
        self._changed.set()
        return self

    # --- running ------------------------------------------------------------------------------

    def start(self) -> SideBySide:
        """Start the columns in threads (one after another, or all at once) and return."""
        if self._threads:
            raise RuntimeError("this view was started already; make a new one to ask again")
        if self.concurrent:
            self._threads = [threading.Thread(target=self._run_column, args=(c,), daemon=True,
                                              name=f"dskit-column-{c.label}")
                             for c in self.columns]
        else:
            self._threads = [threading.Thread(target=self._run_in_turn, daemon=True,
                                              name="dskit-columns")]
        self._meter = cpu_load_meter(self.client)
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """End every column now; each keeps what arrived, columns not begun say so."""
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for s in streams:
            s.stop()
        self._changed.set()

    def wait(self, on_update: Callable[[SideBySide], None] | None = None,
             timeout: float | None = None) -> SideBySide:
        """Wait until every column finished, calling `on_update(self)` at most every 0.1 s
        while something changes. Ctrl-C (KeyboardInterrupt) stops every column and returns."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while any(t.is_alive() for t in self._threads):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if self._changed.wait(REFRESH_S):
                    self._changed.clear()
                    if on_update is not None:
                        on_update(self)
                    time.sleep(REFRESH_S)  # redraw at most ten times a second
        except KeyboardInterrupt:
            self.stop()
            for t in self._threads:
                t.join()
        for t in self._threads:
            t.join(0 if deadline is not None else None)
        if on_update is not None:
            on_update(self)
        return self

    def _run_in_turn(self) -> None:
        for column in self.columns:
            self._run_column(column)

    def _run_column(self, column: Column) -> None:
        """Load the model, stream its reply, grade it; a failure stays in this column."""
        try:
            if self._stop.is_set():
                column.state = "stopped"
                return
            self._load(column)
            if self._stop.is_set():
                column.state = "stopped"
                return
            stream: Any = chat(self.text, column.model, stream=True, client=self.client,
                               **self.options)
            column.reply = stream.reply
            with self._lock:
                self._streams.append(stream)
            if self._stop.is_set():
                stream.stop()
            for chunk in stream:
                column.state = "reasoning" if chunk.kind == "thinking" else "answering"
                self._changed.set()
            column.reply = stream.reply
            if self.prompt is not None and self.prompt.expected is not None \
                    and not stream.stopped:
                stream.reply.grade(self.prompt)
            column.state = "stopped" if stream.stopped else "done"
        except StreamInterrupted as exc:
            if exc.partial is not None:
                column.reply = exc.partial
            column.error, column.state = _error_text(exc), "error"
        except Exception as exc:  # one column's failure never stops the others: it shows there
            column.error, column.state = _error_text(exc), "error"
        finally:
            with self._lock:  # the last column to finish reads the CPU meter, once
                if self._meter is not None and self.done:
                    self.cpu_load, self._meter = self._meter(), None
            self._changed.set()

    def _load(self, column: Column) -> None:
        """Make the model ready, timed, so its column shows the load step."""
        backend, model = self.client.backend, column.model
        column.state = "loading"
        column.load_note = f"loading {model} …"
        self._changed.set()
        if not isinstance(backend, LocalModels):
            column.load_note = f"{model}: the server loads it on first use"
            return
        in_process = backend.model_handling().in_process
        # In process the check is free; a server is asked to load, which also renews its
        # keep-alive (and says 0 s when the model was in memory).
        if in_process and model in backend.loaded():
            column.load_time = 0.0
            column.load_note = f"{model} was already in memory"
            return
        if in_process:
            # The first use of a stand-in assembles its file from the installed packages.
            def step(done: int, total: int) -> None:
                pct = 100 * done / total if total else 0
                column.load_note = f"preparing the model file of {model} … {pct:.0f} %"
                self._changed.set()

            backend.pull(model, progress=step)
            column.load_note = f"loading {model} …"
            self._changed.set()
        column.load_time = seconds = float(backend.preload(model))
        column.load_note = (f"loading {model} … {seconds:.1f} s" if seconds
                            else f"{model} was already in memory")

    # --- rendering ----------------------------------------------------------------------------

    def _name(self, column: Column) -> str:
        return column.model if self.revealed else f"model {column.label}"

    def _hide(self, text: str) -> str:
        """`text` with the model names replaced by their labels while the view is blind."""
        if self.revealed:
            return text
        for c in sorted(self.columns, key=lambda c: -len(c.model)):
            text = text.replace(c.model, f"model {c.label}")
        return text

    def footer(self, column: Column) -> str:
        """TTFT, tokens/s, thinking/answer tokens, load time and memory of a column ("" while
        blind: memory, speed and load time give a model's size away)."""
        reply = column.reply
        if reply is None or self.hidden:
            return ""
        stats = reply.stats
        if column.load_time:  # the load happened here, before the reply's own clock started
            stats = dataclasses.replace(stats, load_time=column.load_time)
        cut = f" · {reply.budget_outcome}" if reply.budget_hit else ""
        extended = f" · reasoning extended ×{reply.extensions}" if reply.extensions else ""
        return stats.summary() + cut + extended

    def column_html(self, column: Column) -> str:
        """One column: label and model, load step, reasoning, answer, verdict, footer."""
        reply, backend = column.reply, self.client.name
        head = (f"<span class='dskit-label'>{column.label}</span>"
                f"{html.escape(self._name(column))}"
                + (f" <span class='dskit-column-state'>· {html.escape(backend)}</span>"
                   if self.revealed else ""))
        parts = [f"<div class='dskit-column-head'>{head}</div>"]
        load = column.load_note
        if self.hidden:
            # How long a model took to load (or that it was in memory) tells sizes apart.
            load = "loading …" if column.state == "loading" else ""
        if load:
            parts.append(f"<div class='dskit-column-load'>{html.escape(self._hide(load))}</div>")
        state = {"waiting": "waiting for its turn", "loading": "", "reasoning": "reasoning…",
                 "answering": "answering…"}.get(column.state, "")
        if column.state == "stopped" and reply is None:
            state = "not run: stopped"
        if state:
            parts.append(f"<div class='dskit-column-state'>{html.escape(state)}</div>")
        if reply is not None:
            streaming = not column.finished
            shown = _blinded(reply, self._hide) if self.hidden else reply
            parts.append(reply_html(shown, open_thinking=streaming, streaming=streaming,
                                    footer=False))
            if self.shade and column.finished and reply.tokens:
                parts.append(confidence_details(shown, open_=True))
            if column.state == "stopped" and self.expected is not None:
                parts.append("<div class='dskit-column-state'>stopped before the end: not "
                             f"graded (expected {html.escape(self.expected)})</div>")
        if column.error:
            parts.append(f"<div class='dskit-column-error'>{html.escape(self._hide(column.error))}"
                         "</div>")
        footer = self.footer(column)
        if self.hidden and column.finished and reply is not None:
            footer = "stats and verdict are shown after the vote"
        if footer and column.finished:
            parts.append(f"<div class='dskit-column-footer'>{html.escape(footer)}</div>")
        return (f"<div class='dskit-column' data-label='{column.label}' "
                f"data-state='{column.state}'>{''.join(parts)}</div>")

    def html(self) -> str:
        """The whole view as HTML (safe: model output is escaped or sanitised)."""
        n = len(self.columns)
        expected = (f" <span class='dskit-expected'>(expected: {html.escape(self.expected)})"
                    "</span>" if self.expected else "")
        mode = "at the same time" if self.concurrent else "one after another"
        prompt = (f"<div class='dskit-sbs-prompt'><b>Prompt</b>{expected} · "
                  f"<span class='dskit-column-state'>models run {mode}</span>"
                  f"{markdown_html(self.text)}</div>")
        cols = "".join(self.column_html(c) for c in self.columns)
        return (f"{_STYLE}<div class='dskit-side-by-side'>{prompt}"
                f"<div class='dskit-sbs' style='grid-template-columns:repeat({n},minmax(0,1fr))'>"
                f"{cols}</div></div>")

    def _repr_html_(self) -> str:
        return self.html()

    def _ipython_display_(self) -> None:
        from IPython import get_ipython  # IPython is there whenever this is called
        from IPython.display import display

        shell = get_ipython()
        if self._display is not None and shell is not None \
                and self._shown_at == shell.execution_count:
            return  # the live view above is this cell's output already: not twice
        display({"text/html": self.html(), "text/plain": self.text_summary()}, raw=True)

    def text_summary(self) -> str:
        """Plain text: each column's model, status, verdict and stats."""
        lines = [f"prompt: {' '.join(self.text.split())[:80]}"]
        for c in self.columns:
            r = c.reply
            what = self._hide(c.error) if c.error else (r.status if r is not None else c.state)
            verdict = f" · {r.verdict}" if r is not None and r.verdict is not None \
                and not self.hidden else ""
            footer = self.footer(c)
            lines.append(f"{c.label} {self._name(c)}: {what}{verdict}"
                         + (f" · {footer}" if footer else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text_summary()

    def describe(self) -> str:
        """What the columns show, in sentences made from their numbers (for a lesson's page);
        while blind only how each ended (no verdicts, speeds or load times)."""
        if self.hidden:
            return " ".join(
                f"{self._name(c)}: "
                f"{self._hide(c.error) if c.error else c.reply.status if c.reply else c.state}."
                for c in self.columns) + " Names, stats and verdicts are shown after the vote."
        said = [warning] if (warning := busy_warning(self.cpu_load)) else []
        speeds: list[tuple[float, str]] = []
        for c in self.columns:
            name, r = self._name(c), c.reply
            if r is None:
                said.append(f"{name}: {self._hide(c.error) if c.error else 'not run'}.")
                continue
            bits = [str(r.verdict)] if r.verdict is not None else []
            if r.status != "ok" or r.verdict is None:
                bits.append(r.status)
            if c.load_time:
                bits.append(f"loaded in {c.load_time:.1f} s")
            elif c.load_time == 0.0:
                bits.append("already in memory")
            if (tps := r.stats.tokens_per_s) is not None:
                bits.append(f"{tps:.0f} tokens/s")
                speeds.append((tps, name))
            if r.stats.thinking_tokens:
                bits.append(f"{r.stats.thinking_tokens} thinking tokens"
                            + (" (cut at the budget)" if r.budget_hit else ""))
            if r.stats.answer_tokens is not None:
                bits.append(f"{r.stats.answer_tokens} answer tokens")
            said.append(f"{name}: " + ", ".join(bits) + ".")
        if len(speeds) >= 2:
            (slow, slow_name), (fast, fast_name) = min(speeds), max(speeds)
            said.append(f"{fast_name} generated {fast / slow:.1f}× as many tokens per second as "
                        f"{slow_name}.")
        if self.expected is not None:
            right = [self._name(c) for c in self.columns
                     if c.reply is not None and c.reply.verdict is not None
                     and c.reply.verdict.correct]
            said.append(f"{len(right)} of {len(self.columns)} found the expected answer "
                        f"({self.expected})" + (f": {', '.join(right)}." if right else "."))
        return " ".join(said)

    # --- live display -------------------------------------------------------------------------

    def show_live(self) -> None:
        """Run in a notebook cell with a display that updates as the columns stream."""
        from IPython import get_ipython  # deferred: IPython is needed only in a notebook
        from IPython.display import HTML, display

        shell = get_ipython()
        if shell is None or not getattr(shell, "kernel", None):
            self.start().wait()
            return
        self._display = display(HTML(self.html()), display_id=True)
        self._shown_at = shell.execution_count
        self.start().wait(on_update=lambda v: v._display.update(HTML(v.html())))

    # --- documents ----------------------------------------------------------------------------

    def _facts(self, column: Column) -> list[tuple[str, str]]:
        facts = [("column", column.label)]
        if column.load_time is not None:
            facts.append(("load", f"{column.load_time:.1f} s" if column.load_time
                          else "already in memory"))
        if column.error:
            facts.append(("error", column.error))
        return facts

    def _header(self) -> list[tuple[str, str]]:
        rows = [("models", ", ".join(f"{c.label}: {c.model}" for c in self.columns)),
                ("backend", self.client.name),
                ("run", "at the same time" if self.concurrent else "one after another"),
                ("options", options_text(self.options))]
        if self.expected is not None:
            rows.append(("expected", self.expected))
        return rows

    def to_markdown(self) -> str:
        """The view as Markdown: the prompt, then each column with its header."""
        lines = ["# Side by side", "", "| | |", "|---|---|"]
        lines += [f"| {k} | {table_cell(v)} |" for k, v in self._header()]
        lines += ["", "## Prompt", "", safe_markdown(self.text), ""]
        for c in self.columns:
            if c.reply is not None:
                lines.append(reply_markdown(c.reply, f"{c.label} · {c.model}", level=2,
                                            extra=self._facts(c)))
            else:
                what = table_cell(c.error or c.state)
                lines += [f"## {c.label} · {c.model}", "", f"*{what}*", ""]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self) -> str:
        """The view as a standalone page: the prompt, then each column with its header."""
        body = ["<h1>Side by side</h1>", facts_html(self._header()), "<h2>Prompt</h2>",
                markdown_html(self.text)]
        for c in self.columns:
            if c.reply is not None:
                body.append(reply_section_html(c.reply, f"{c.label} · {c.model}",
                                               extra=self._facts(c)))
            else:
                body.append(f"<section class='dskit-section'><h2>{html.escape(c.label)} · "
                            f"{html.escape(c.model)}</h2>"
                            f"<p class='dskit-column-error'>{html.escape(c.error or c.state)}"
                            "</p></section>")
        return page_html("dskit · side by side", "".join(body))

    def to_data(self) -> dict[str, Any]:
        """The view as plain JSON-ready data."""
        return {"prompt": self.text, "expected": self.expected, "backend": self.client.name,
                "concurrent": self.concurrent, "options": self.options,
                "columns": [{"label": c.label, "model": c.model, "state": c.state,
                             "load_time": c.load_time, "error": c.error,
                             "reply": reply_data(c.reply) if c.reply is not None else None}
                            for c in self.columns]}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the view to `path`: `.md`, `.html` (self-contained) or `.json`."""
        return save_document(path, markdown=self.to_markdown, html_page=self.to_html,
                             data=self.to_data)


def side_by_side(prompt: str | Prompt, models: Sequence[str], *, client: Client | None = None,
                 concurrent: bool | None = None, display: bool = True,
                 **options: Any) -> SideBySide:
    """Ask every model the same prompt and show their answers side by side as they stream.

    `prompt`: text, or a `Prompt` with a known answer (`ds.prompts.cup_puzzle("zh")`), which
    gives each column its verdict. `options` go to every chat (`max_tokens`, `temperature`,
    `seed`, `think`, …; `loop_guard` is on unless `loop_guard=False`; `confidence=True` shades
    each finished column's tokens by the model's confidence). `concurrent`: None
    decides by what the backend holds (see `holds_all`). In a notebook the view updates live;
    Ctrl-C or the kernel's interrupt stops every column and keeps what arrived. Returns the
    `SideBySide` with every `Reply`.
    """
    view = SideBySide(prompt, models, client=client, concurrent=concurrent, **options)
    if display:
        view.show_live()
    else:
        view.start().wait()
    return view


def _blinded(reply: Reply, hide: Callable[[str], str]) -> Reply:
    """A copy of `reply` for a blind column: notes that do not name the model, and no verdict
    yet (who got it right is part of what the vote reveals)."""
    return dataclasses.replace(reply, notes=[hide(n) for n in reply.notes], verdict=None)


def _error_text(exc: BaseException) -> str:
    """dskit's errors say the fix; others get their type."""
    return str(exc) if isinstance(exc, DskitError) else f"{type(exc).__name__}: {exc}"
