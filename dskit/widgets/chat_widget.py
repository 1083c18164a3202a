"""The chat widget: a multi-turn conversation with streamed replies, Stop and stats."""

from __future__ import annotations

import html

import ipywidgets as W

from ..client import Client, default_client
from ..conversation import ChatStream, Conversation
from .base import StatusLine, Worker, WorkerWidget, prepare_model, stream_reply, tagged


class ChatWidget(WorkerWidget):
    """A multi-turn chat box; `send()` streams a reply into `output`, `stop()` cancels it."""

    def __init__(self, client: Client | None = None, model: str | None = None,
                 max_tokens: int = 1024, think: bool = True) -> None:
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
        reply = stream_reply(stream, self.output, asked, self.status, self.worker)
        if reply is not None and not stream.stopped and not reply.no_answer:
            self.history.value += self.output.value
            self.output.value = ""
