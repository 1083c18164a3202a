"""ipywidgets front-ends: `chat()` (streamed replies, stop, stats) and `compare()`.

Shared feedback (status line with spinner, progress, errors, stop, stats) lives in `feedback`.
Every part carries a stable `dskit-…` CSS class so browser tests and styles can find it.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from .chat import ChatStream, Conversation
from .display import reply_html
from .errors import StreamInterrupted
from .feedback import (
    REFRESH_S,
    StatusLine,
    Worker,
    WorkerWidget,
    prepare_model,
    stats_text,
    tagged,
)

if TYPE_CHECKING:
    from .client import Client



class ChatWidget(WorkerWidget):
    """A multi-turn chat box; `send()` streams a reply into `output`, `stop()` cancels it."""

    def __init__(self, client: Client | None = None, model: str | None = None,
                 max_tokens: int = 1024, think: bool = True) -> None:
        from .client import default_client

        self.client = client or default_client()
        models = self.client.models() or [self.client.default_model]
        default = model or self.client.default_model
        if default not in models:
            models = [default, *models]
        # continuous_update=False: the text is sent once, when the box loses focus, i.e. just
        # before a click on Send; per-keystroke updates are throttled and could arrive after it.
        self.prompt = tagged(W.Textarea(placeholder="Ask something… 例如：一个球放在杯子里……",
                                        layout=W.Layout(width="100%", height="5em"),
                                        continuous_update=False), "prompt")
        self.model = tagged(W.Dropdown(options=models, value=default, description="model"),
                          "model")
        self.temperature = W.FloatSlider(value=0.6, min=0.0, max=1.5, step=0.05,
                                         description="temperature")
        self.max_tokens = tagged(W.IntText(value=max_tokens, description="max tokens"),
                               "max-tokens")
        self.think = tagged(W.Checkbox(value=think, description="reason first", indent=False,
                                     tooltip="R1 always reasons; other models are asked to"),
                          "think")
        self.send_button = tagged(W.Button(description="Send", button_style="primary",
                                         icon="paper-plane"), "send")
        self.stop_button = tagged(W.Button(description="Stop", button_style="warning",
                                         icon="stop", disabled=True), "stop")
        self.new_button = tagged(W.Button(description="New chat", icon="refresh"), "new")
        self.status = StatusLine()
        self.output = tagged(W.HTML(value=""), "output")
        self.history = tagged(W.HTML(value=""), "history")
        self.conversation = Conversation(default, client=self.client)
        self.worker = Worker(self.status, self._set_busy)
        self._stream: ChatStream | None = None
        self.send_button.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.stop())
        self.new_button.on_click(lambda _: self.reset())
        super().__init__([
            self.history, self.output, self.status, self.prompt,
            W.HBox([self.model, self.temperature, self.max_tokens, self.think]),
            W.HBox([self.send_button, self.stop_button, self.new_button]),
        ])
        self.add_class("dskit-chat")

    def send(self, wait: bool = False) -> None:
        """Send the prompt box's text; runs in a thread so Stop stays clickable."""
        text = self.prompt.value.strip()
        if not text or self.busy:
            return
        if self.model.value != self.conversation.model:
            self.conversation.model = self.model.value
        self.prompt.value = ""
        self.output.value = f"<div><b>You:</b> {html.escape(text)}</div>"
        self.status.busy(f"sending to {self.model.value}…")
        self.worker.start(self._run, text)
        if wait:
            self.wait()

    def reset(self) -> None:
        """Start a new conversation."""
        self.stop()
        self.wait()
        self.conversation.reset()
        self.history.value = self.output.value = ""
        self.status.clear()

    def _set_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy

    def _run(self, text: str) -> None:
        asked = f"<div><b>You:</b> {html.escape(text)}</div>"
        prepare_model(self.client, self.conversation.model, self.status)
        if self.worker.stopping.is_set():
            self.output.value = asked
            self.status.done("stopped before the model started", stopped=True)
            return
        self.status.busy(f"{self.conversation.model}: waiting for the first token…")
        stream = self.conversation.send(
            text, stream=True, temperature=self.temperature.value,
            max_tokens=self.max_tokens.value, think=self.think.value,
        )
        assert isinstance(stream, ChatStream)
        self._stream = stream
        self.worker.cancel_with(stream.stop)
        try:
            last = 0.0
            for chunk in stream:
                now = time.monotonic()
                if now - last >= REFRESH_S:
                    last = now
                    self.status.busy("reasoning…" if chunk.kind == "thinking" else "answering…")
                    self.output.value = asked + reply_html(stream.reply, open_thinking=True,
                                                           streaming=True)
        except StreamInterrupted as exc:
            partial = exc.partial
            self.output.value = asked + (reply_html(partial) if partial is not None else "")
            self.status.error(exc)
            return
        finally:
            self._stream = None
        reply = stream.reply
        self.output.value = asked + reply_html(reply)
        self.status.done(("stopped · " if stream.stopped else "") + stats_text(reply),
                         stopped=stream.stopped)
        if not stream.stopped and not reply.no_answer:
            self.history.value += self.output.value
            self.output.value = ""


def chat(client: Client | None = None, model: str | None = None, **kwargs: Any) -> ChatWidget:
    """An interactive chat widget for a notebook."""
    return ChatWidget(client, model, **kwargs)


PROMPT_SETS = ("cup", "cup-en", "maths")


class CompareWidget(WorkerWidget):
    """Pick models and a prompt set, run `ds.compare`, watch progress, see the table and plot."""

    def __init__(self, client: Client | None = None, models: list[str] | None = None,
                 prompts: str = "cup", samples: int = 1, max_tokens: int = 256) -> None:
        from .client import default_client

        self.client = client or default_client()
        available = list(dict.fromkeys([*(models or []), *self.client.models()]))
        self.models = W.SelectMultiple(options=available, value=tuple(models or available[:2]),
                                       description="models", rows=min(6, max(2, len(available))))
        self.prompt_set = W.Dropdown(options=PROMPT_SETS, value=prompts, description="prompts")
        self.samples = W.IntSlider(value=samples, min=1, max=10, description="samples")
        self.max_tokens = W.IntText(value=max_tokens, description="max tokens")
        self.run_button = tagged(W.Button(description="Run", button_style="primary", icon="play"),
                               "run")
        self.stop_button = tagged(W.Button(description="Stop", button_style="warning", icon="stop",
                                         disabled=True), "stop")
        self.progress = tagged(W.IntProgress(value=0, min=0, max=1, description="0 / 0"),
                             "progress")
        self.status = StatusLine()
        self.table = tagged(W.HTML(value=""), "table")
        self.plot = tagged(W.Image(format="png", layout=W.Layout(max_width="720px")), "plot")
        self.result: Any = None  # the rows DataFrame of the last run
        self.worker = Worker(self.status, self._set_busy)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.worker.stop())
        super().__init__([
            W.HBox([self.models, W.VBox([self.prompt_set, self.samples, self.max_tokens])]),
            W.HBox([self.run_button, self.stop_button, self.progress]),
            self.status, self.table, self.plot,
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

    def _tick(self, _row: dict[str, Any]) -> None:
        self.progress.value += 1
        self.progress.description = f"{self.progress.value} / {self.progress.max}"

    def _work(self) -> None:
        from .compare import compare, summary
        from .prompts import load

        models = list(self.models.value)
        n = len(load(self.prompt_set.value)) * self.samples.value * len(models)
        self.progress.max, self.progress.value = n, 0
        self.progress.description = f"0 / {n}"
        self.table.value, self.plot.value = "", b""
        self.status.busy("running… (the first call of each model includes loading it)")
        df = compare(models, self.prompt_set.value, samples=self.samples.value,
                     client=self.client, max_tokens=self.max_tokens.value, progress=False,
                     stop=self.worker.stopping, on_row=self._tick)
        self.result = df
        table = summary(df)
        self.table.value = table.to_html(index=False, float_format=lambda v: f"{v:.3g}",
                                         na_rep="–")
        self.plot.value = _summary_png(table)
        stopped = bool(df.attrs.get("interrupted"))
        self.status.done(("stopped: " if stopped else "done: ") + f"{len(df)} of {n} calls",
                         stopped=stopped)


def _summary_png(table: Any) -> bytes:
    """Accuracy and speed per model as a PNG (a Figure, not pyplot: this runs in a thread)."""
    import io

    from matplotlib.figure import Figure

    from .plots import accuracy_vs_size, speed_vs_size

    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    accuracy_vs_size(table, ax=left)
    speed_vs_size(table, ax=right)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def compare(client: Client | None = None, models: list[str] | None = None,
            **kwargs: Any) -> CompareWidget:
    """An interactive comparison widget for a notebook."""
    return CompareWidget(client, models, **kwargs)


def knowledge_base(kb: Any = "notebook", **kwargs: Any) -> Any:
    """Upload files, search with a ranked table, ask with cited sources (see dskit.kbwidget)."""
    from .kbwidget import knowledge_base as make

    return make(kb, **kwargs)
