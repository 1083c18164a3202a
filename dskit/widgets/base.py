"""What every widget shares: status line, worker thread, model preparation, the streaming loop.

A widget runs its work in a `Worker` thread (so its Stop button stays clickable), reports what
is happening on a `StatusLine`, calls `prepare_model` before its first request so loading a
model shows progress instead of a silent wait, and streams a reply with `stream_reply`. Every
state carries a CSS class (`dskit-state-busy|done|error|stopped|idle`) that browser tests and
styles can rely on.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from ..backends.base import LocalModels
from ..display import reply_html
from ..embeddings import local_ready as embedder_ready
from ..errors import DskitError, StreamInterrupted

if TYPE_CHECKING:
    from ..client import Client
    from ..conversation.stream import ReplyStream
    from ..reply import Reply

log = logging.getLogger(__name__)

STATES = ("idle", "busy", "done", "error", "stopped")
#: Widgets redraw at most ten times a second: each redraw resends the whole HTML.
REFRESH_S = 0.1

_STYLE = (
    "<style>@keyframes dskit-spin{to{transform:rotate(360deg)}}"
    ".dskit-spinner{display:inline-block;width:.9em;height:.9em;margin-right:.4em;"
    "vertical-align:-.1em;border:2px solid rgba(127,127,127,.35);border-top-color:#39f;"
    "border-radius:50%;animation:dskit-spin .8s linear infinite}"
    ".dskit-error{color:#c22}.dskit-stats-line{color:#778;font-size:.9em}"
    ".dskit-progress{width:12em;vertical-align:middle;margin:0 .4em}</style>"
)


def tagged(widget: W.DOMWidget, name: str) -> Any:
    """Give `widget` the stable CSS class `dskit-<name>` (for tests and styles); return it."""
    widget.add_class(f"dskit-{name}")
    return widget


def controls(*children: W.Widget) -> W.HBox:
    """A row of controls that wraps onto the next line where the page is narrow.

    ipywidgets' HBox never wraps: at 1280 px with JupyterLab's file browser open the chat's
    "reason first" box and thinking dropdown fell off the right edge (issue 27).
    """
    row = W.HBox(list(children), layout=W.Layout(flex_flow="row wrap", align_items="center",
                                                 width="100%"))
    row.add_class("dskit-controls")
    return row


def stop_button() -> W.Button:
    """The Stop button every widget has: disabled until something runs."""
    return tagged(W.Button(description="Stop", button_style="warning", icon="stop",
                           disabled=True), "stop")


def error_text(exc: BaseException) -> str:
    """What to tell a user: dskit's own errors say the fix; others get their type."""
    if isinstance(exc, DskitError):
        return str(exc)
    log.debug("widget worker failed", exc_info=exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def error_html(exc: BaseException) -> str:
    """An error as escaped HTML for a status line."""
    return f"<span class='dskit-error'>{html.escape(error_text(exc))}</span>"


class StatusLine(W.HTML):
    """One line under a widget: spinner and text while busy, progress, an error, or stats."""

    def __init__(self) -> None:
        super().__init__(value="")
        self.add_class("dskit-status")
        self.state = "idle"
        #: Counts updates: a test reads it before a click and waits for a later final state.
        self.serial = 0
        #: The last message as plain text (for scripts, tests and `print`).
        self.text = ""
        self._set_state("idle")

    def _set_state(self, state: str) -> None:
        for s in STATES:
            self.remove_class(f"dskit-state-{s}")
        self.add_class(f"dskit-state-{state}")
        self.state = state

    def _show(self, state: str, body: str, text: str) -> None:
        self.serial += 1
        self.text = text
        self.value = (f"{_STYLE}<div class='dskit-status-body' data-state='{state}' "
                      f"data-serial='{self.serial}'>{body}</div>")
        self._set_state(state)

    def busy(self, text: str) -> None:
        """A spinner and what is happening."""
        self._show("busy", f"<span class='dskit-spinner'></span><i>{html.escape(text)}</i>", text)

    def progress(self, text: str, done: int, total: int) -> None:
        """A spinner, a progress bar and a percentage (e.g. bytes of a model file)."""
        pct = 100.0 * done / total if total else 0.0
        self._show("busy", f"<span class='dskit-spinner'></span><i>{html.escape(text)}</i>"
                           f"<progress class='dskit-progress' value='{done}' max='{total or 1}'>"
                           f"</progress>{pct:.0f} %", f"{text} {pct:.0f} %")

    def done(self, text: str, *, stopped: bool = False) -> None:
        """The result line, e.g. the stats after an answer."""
        self._show("stopped" if stopped else "done",
                   f"<span class='dskit-stats-line'>{html.escape(text)}</span>", text)

    def error(self, exc: BaseException | str) -> None:
        """An error in the widget, never only a traceback in the log."""
        text = exc if isinstance(exc, str) else error_text(exc)
        self._show("error", f"<span class='dskit-error'>{html.escape(text)}</span>", text)

    def clear(self) -> None:
        """Nothing to say."""
        self._show("idle", "", "")


class Worker:
    """Runs one job at a time in a daemon thread; errors land on the status line; stoppable.

    `on_busy(True/False)` is called around each job (to disable Send, enable Stop). A job checks
    `stopping` between steps, and hands the worker a cancel function for the step in progress
    (e.g. `ChatStream.stop`) with `cancel_with` so Stop takes effect at once.
    """

    def __init__(self, status: StatusLine, on_busy: Callable[[bool], None]) -> None:
        self.status = status
        self.on_busy = on_busy
        self.stopping = threading.Event()
        self._cancel: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, job: Callable[..., None], *args: Any) -> bool:
        """Run `job(*args)` in a thread; False (and nothing runs) if one is already running."""
        if self.busy:
            return False
        self.stopping.clear()
        self._cancel = None
        self.on_busy(True)
        self._thread = threading.Thread(target=self._run, args=(job, *args), daemon=True)
        self._thread.start()
        return True

    def _run(self, job: Callable[..., None], *args: Any) -> None:
        try:
            job(*args)
        except Exception as exc:  # a worker thread has no caller: show it rather than lose it
            self.status.error(exc)
        finally:
            with self._lock:
                self._cancel = None
            self.on_busy(False)

    def cancel_with(self, cancel: Callable[[], None]) -> None:
        """Register how to cancel the current step; runs it now if Stop was already pressed."""
        with self._lock:
            self._cancel = cancel
            if not self.stopping.is_set():
                return
        cancel()

    def stop(self) -> None:
        """Ask the job to stop: cancels the current step and sets `stopping`."""
        with self._lock:
            self.stopping.set()
            cancel = self._cancel
        if cancel is not None:
            cancel()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current job is finished (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)


def _throttled_progress(status: StatusLine, text: str) -> Callable[[int, int], None]:
    """A (done, total) callback redrawing `status`'s bar at most every REFRESH_S, and at 100 %."""
    last = 0.0

    def step(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= REFRESH_S or done >= total:
            last = now
            status.progress(text, done, total)

    return step


def prepare_model(client: Client, model: str, status: StatusLine) -> None:
    """Make `model` ready before a request, showing assembly progress and a loading spinner.

    The embedded backend assembles a stand-in's file on first use (hundreds of MB) and then
    loads it; both are done here with feedback. Servers (Ollama) load on the first request, so
    the line only says so; their reply reports the load time.
    """
    backend = client.backend
    if not isinstance(backend, LocalModels) or not backend.model_handling().in_process:
        status.busy(f"waiting for {model} (a server loads it on first use; its reply reports the "
                    "load time)…")
        return
    if model in backend.loaded():
        return
    status.busy(f"checking the model file of {model}…")
    backend.pull(model, progress=_throttled_progress(
        status, f"preparing the model file of {model}"))
    status.busy(f"loading {model} into memory…")
    # preload: the load is timed here and said here, so the reply's own stats never count a
    # load that happened before its clock started (which showed "load 1.1 s · total 0.9 s").
    seconds = backend.preload(model)
    status.busy(f"loaded {model} in {seconds:.1f} s; waiting for the first token…")


def prepare_embedder(embedder: Any, status: StatusLine) -> None:
    """Make a local embedding model ready (its GGUF is made once, then loaded), with feedback."""
    prepare = getattr(embedder, "prepare", None)
    if prepare is None or embedder_ready():
        return
    status.busy("loading the embedding model…")
    prepare(_throttled_progress(status, "converting the embedding model for llama.cpp (once)"))


class WorkerWidget(W.VBox):
    """A widget whose job runs on `self.worker`: `busy`, `wait()` and `stop()` for all of them."""

    worker: Worker

    @property
    def busy(self) -> bool:
        """Whether the widget's job is running (a reply, a model load, a comparison)."""
        return self.worker.busy

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current job is finished (for scripts and tests)."""
        self.worker.wait(timeout)

    def stop(self) -> None:
        """Stop the job (a reply stops at the next token; what arrived so far is kept)."""
        self.worker.stop()


def stream_reply(stream: ReplyStream, output: W.HTML, header: str, status: StatusLine,
                 worker: Worker, grade: Callable[[Reply], object] | None = None,
                 drawn: Callable[[], object] | None = None) -> Reply | None:
    """Stream a reply into `output` after `header`; the one streaming loop of every widget.

    Redraws at most every `REFRESH_S`, says on the status line whether the model reasons or
    answers, and ends with the reply (graded by `grade` when the question has a known answer)
    and its stats on the status line (once: not again under the reply). Returns the final
    `Reply`, or None when the stream broke off (the partial reply stays shown, the error on
    the status line). `drawn` runs once the final reply is drawn and before the status line
    says so (a chat moves the turn into its history there): whoever sees "done" sees the page
    complete.
    """
    worker.cancel_with(stream.stop)
    try:
        last = 0.0
        for chunk in stream:
            now = time.monotonic()
            if now - last >= REFRESH_S:
                last = now
                status.busy("reasoning…" if chunk.kind == "thinking" else "answering…")
                output.value = header + reply_html(stream.reply, open_thinking=True,
                                                   streaming=True)
    except StreamInterrupted as exc:
        if exc.partial is not None:
            output.value = header + reply_html(exc.partial, footer=False)
        if drawn is not None:
            drawn()
        status.error(exc)
        return None
    reply = stream.reply
    if grade is not None and not stream.stopped:
        grade(reply)
    output.value = header + reply_html(reply, footer=False)
    if drawn is not None:
        drawn()
    verdict = f"{reply.verdict} · " if reply.verdict is not None else ""
    status.done(verdict + reply.footer(with_status=True), stopped=stream.stopped)
    return reply
