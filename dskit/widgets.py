"""ipywidgets front-ends: `chat()` — prompt box, model picker, streamed reply, stop button."""

from __future__ import annotations

import html
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from .chat import ChatStream, Conversation
from .display import reply_html
from .errors import DskitError, StreamInterrupted

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)
_REFRESH_S = 0.1  # redraw at most ten times a second: each redraw resends the whole HTML


def _error_html(exc: BaseException) -> str:
    """An error for the status line: dskit's own errors say the fix; others get their type."""
    if isinstance(exc, DskitError):
        text = str(exc)
    else:
        log.debug("widget worker failed", exc_info=exc)
        text = f"unexpected error: {type(exc).__name__}: {exc}"
    return f"<span style='color:#c22'>{html.escape(text)}</span>"


class ChatWidget(W.VBox):
    """A multi-turn chat box; `send()` streams a reply into `output`, `stop()` cancels it."""

    def __init__(self, client: Client | None = None, model: str | None = None,
                 max_tokens: int = 1024, think: bool = True) -> None:
        from .client import default_client

        self.client = client or default_client()
        models = self.client.models() or [self.client.default_model]
        default = model or self.client.default_model
        if default not in models:
            models = [default, *models]
        self.prompt = W.Textarea(placeholder="Ask something… 例如：一个球放在杯子里……",
                                 layout=W.Layout(width="100%", height="5em"))
        self.model = W.Dropdown(options=models, value=default, description="model")
        self.temperature = W.FloatSlider(value=0.6, min=0.0, max=1.5, step=0.05,
                                         description="temperature")
        self.max_tokens = W.IntText(value=max_tokens, description="max tokens")
        self.think = W.Checkbox(value=think, description="reason first", indent=False,
                                tooltip="R1 always reasons; other models are asked to")
        self.send_button = W.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop_button = W.Button(description="Stop", button_style="warning", icon="stop",
                                    disabled=True)
        self.new_button = W.Button(description="New chat", icon="refresh")
        self.status = W.HTML(value="")
        self.output = W.HTML(value="")
        self.history = W.HTML(value="")
        self.conversation = Conversation(default, client=self.client)
        self._stream: ChatStream | None = None
        self._thread: threading.Thread | None = None
        self.send_button.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.stop())
        self.new_button.on_click(lambda _: self.reset())
        super().__init__([
            self.history, self.output, self.status, self.prompt,
            W.HBox([self.model, self.temperature, self.max_tokens, self.think]),
            W.HBox([self.send_button, self.stop_button, self.new_button]),
        ])
        self.add_class("dskit-chat")

    @property
    def busy(self) -> bool:
        """Whether a reply is being generated."""
        return self._thread is not None and self._thread.is_alive()

    def send(self, wait: bool = False) -> None:
        """Send the prompt box's text; runs in a thread so Stop stays clickable."""
        text = self.prompt.value.strip()
        if not text or self.busy:
            return
        if self.model.value != self.conversation.model:
            self.conversation.model = self.model.value
        self.prompt.value = ""
        self._set_busy(True)
        self.output.value = f"<div><b>You:</b> {html.escape(text)}</div>"
        self.status.value = f"<i>loading {html.escape(self.model.value)} / waiting for the " \
                            "first token…</i>"
        self._thread = threading.Thread(target=self._run, args=(text,), daemon=True)
        self._thread.start()
        if wait:
            self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current reply is finished (for scripts and tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        """Stop the reply being generated; what arrived so far is kept."""
        if self._stream is not None:
            self._stream.stop()

    def reset(self) -> None:
        """Start a new conversation."""
        self.stop()
        self.wait()
        self.conversation.reset()
        self.history.value = self.output.value = self.status.value = ""

    def _set_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy

    def _run(self, text: str) -> None:
        asked = f"<div><b>You:</b> {html.escape(text)}</div>"
        stream: ChatStream | None = None
        try:
            stream = self.conversation.send(
                text, stream=True, temperature=self.temperature.value,
                max_tokens=self.max_tokens.value, think=self.think.value,
            )
            assert isinstance(stream, ChatStream)
            self._stream = stream
            last = 0.0
            for _ in stream:
                now = time.monotonic()
                if now - last >= _REFRESH_S:
                    last = now
                    self.status.value = "<i>generating…</i>"
                    self.output.value = asked + reply_html(stream.reply, open_thinking=True,
                                                           streaming=True)
            reply = stream.reply
            self.output.value = asked + reply_html(reply)
            self.status.value = html.escape(
                ("stopped · " if stream.stopped else "") + reply.stats.summary()
            )
            if not stream.stopped and not reply.no_answer:
                self.history.value += self.output.value
                self.output.value = ""
        except StreamInterrupted as exc:
            partial = exc.partial
            self.output.value = asked + (reply_html(partial) if partial is not None else "")
            self.status.value = _error_html(exc)
        except Exception as exc:  # a worker thread has no caller: show it rather than lose it
            self.status.value = _error_html(exc)
        finally:
            self._stream = None
            self._set_busy(False)


def chat(client: Client | None = None, model: str | None = None, **kwargs: Any) -> ChatWidget:
    """An interactive chat widget for a notebook."""
    return ChatWidget(client, model, **kwargs)


PROMPT_SETS = ("cup", "cup-en", "maths")


class CompareWidget(W.VBox):
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
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="warning", icon="stop",
                                    disabled=True)
        self.progress = W.IntProgress(value=0, min=0, max=1, description="0 / 0")
        self.status = W.HTML(value="")
        self.table = W.HTML(value="")
        self.plot = W.Image(format="png", layout=W.Layout(max_width="720px"))
        self.result: Any = None  # the rows DataFrame of the last run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self._stop.set())
        super().__init__([
            W.HBox([self.models, W.VBox([self.prompt_set, self.samples, self.max_tokens])]),
            W.HBox([self.run_button, self.stop_button, self.progress]),
            self.status, self.table, self.plot,
        ])
        self.add_class("dskit-compare")

    @property
    def busy(self) -> bool:
        """Whether a comparison is running."""
        return self._thread is not None and self._thread.is_alive()

    def run(self, wait: bool = False) -> None:
        """Start the comparison in a thread (Stop stays clickable); `wait` blocks until done."""
        if self.busy or not self.models.value:
            if not self.models.value:
                self.status.value = "<span style='color:#c22'>pick at least one model</span>"
            return
        self._stop.clear()
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._thread = threading.Thread(target=self._work, daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()

    def _tick(self, _row: dict[str, Any]) -> None:
        self.progress.value += 1
        self.progress.description = f"{self.progress.value} / {self.progress.max}"

    def _work(self) -> None:
        from .compare import compare, summary
        from .prompts import load

        models = list(self.models.value)
        try:
            n = len(load(self.prompt_set.value)) * self.samples.value * len(models)
            self.progress.max, self.progress.value = n, 0
            self.progress.description = f"0 / {n}"
            self.status.value = "<i>running… (the first call of each model includes loading it)</i>"
            df = compare(models, self.prompt_set.value, samples=self.samples.value,
                         client=self.client, max_tokens=self.max_tokens.value, progress=False,
                         stop=self._stop, on_row=self._tick)
            self.result = df
            table = summary(df)
            self.table.value = table.to_html(index=False, float_format=lambda v: f"{v:.3g}",
                                             na_rep="–")
            self.plot.value = _summary_png(table)
            self.status.value = html.escape(
                ("stopped: " if df.attrs.get("interrupted") else "done: ")
                + f"{len(df)} of {n} calls")
        except Exception as exc:  # a worker thread has no caller: show it rather than lose it
            self.status.value = _error_html(exc)
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True


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
