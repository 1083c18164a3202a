"""The chat widget: a multi-turn conversation with streamed replies, Stop, stats, and example
questions whose answers are graded (✓/✗ with the expected answer)."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as W

from ..client import Client, default_client
from ..confidence_view import confidence_details
from ..conversation.session import Conversation
from ..conversation.stream import ChatStream
from ..evals.prompts import EXAMPLES, known_question
from ..reply import Reply
from ..weights.files import STANDINS
from .base import (
    StatusLine,
    Worker,
    WorkerWidget,
    controls,
    prepare_model,
    stop_button,
    stream_reply,
    tagged,
)

#: The dropdown's value for "no limit" (ipywidgets shows a value of None as nothing selected).
NO_LIMIT = -1
#: The thinking budgets offered (tokens of reasoning before the model must answer).
BUDGETS: tuple[tuple[str, int], ...] = (
    ("no limit", NO_LIMIT), ("0 (answer directly)", 0), ("64 tokens", 64), ("128 tokens", 128),
    ("256 tokens", 256), ("512 tokens", 512), ("1024 tokens", 1024),
)


class ChatWidget(WorkerWidget):
    """A multi-turn chat box; `send()` streams a reply into `output`, `stop()` cancels it."""

    def __init__(self, client: Client | None = None, model: str | None = None,
                 max_tokens: int = 1024, think: bool = True,
                 think_budget: int | None = None) -> None:
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
        # description_width initial: the default width cut "temperature" to "temperat…"
        self.temperature = tagged(W.FloatSlider(value=0.6, min=0.0, max=1.5, step=0.05,
                                                description="temperature",
                                                style={"description_width": "initial"}),
                                  "temperature")
        self.max_tokens = tagged(W.IntText(value=max_tokens, description="max tokens"),
                                 "max-tokens")
        self.think = tagged(W.Checkbox(value=think, description="reason first", indent=False,
                                       tooltip="R1 always reasons; other models are asked to"),
                            "think")
        self.confidence = tagged(W.Checkbox(
            value=False, description="shade by confidence", indent=False,
            tooltip="ask for token log-probabilities and shade the reply by how sure the model "
                    "was of each token (DeepConf's token confidence)"), "confidence")
        budgets = list(BUDGETS)
        chosen = NO_LIMIT if think_budget is None else think_budget
        if chosen not in dict(BUDGETS).values():
            budgets.append((f"{chosen} tokens", chosen))
        self.think_budget = tagged(W.Dropdown(
            options=budgets, value=chosen, description="thinking",
            tooltip="cap the reasoning at this many tokens, then answer (0: no reasoning)"),
            "think-budget")
        self.send_button = tagged(W.Button(description="Send", button_style="primary",
                                           icon="paper-plane"), "send")
        self.stop_button = stop_button()
        self.new_button = tagged(W.Button(description="New chat", icon="refresh"), "new")
        self.examples = tagged(W.Dropdown(
            options=[("example questions with known answers…", "")]
            + [(e.prompt[:48] + ("…" if len(e.prompt) > 48 else ""), e.id) for e in EXAMPLES],
            value="", layout=W.Layout(width="22em")), "examples")
        self.notice = tagged(W.HTML(value=""), "notice")
        self.status = StatusLine()
        self.output = tagged(W.HTML(value=""), "output")
        self.history = tagged(W.HTML(value=""), "history")
        #: The last reply as a `Reply` (None before the first, or when it broke off).
        self.last_reply: Reply | None = None
        self._stream: ChatStream | None = None  # the reply being streamed
        self.conversation = Conversation(default, client=self.client)
        self.worker = Worker(self.status, self._set_busy)
        self.send_button.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.stop())
        self.new_button.on_click(lambda _: self.reset())
        self.examples.observe(self._pick_example, names="value")
        self.model.observe(lambda _: self._show_notice(), names="value")
        super().__init__([
            self.notice, self.history, self.output, self.status, self.prompt,
            controls(self.model, self.temperature, self.max_tokens, self.think_budget,
                     self.think, self.confidence),
            controls(self.send_button, self.stop_button, self.new_button, self.examples),
        ])
        self.add_class("dskit-chat")
        self._show_notice()

    def _show_notice(self) -> None:
        """Say plainly when the model is a stand-in, on the page itself (also in `dskit app`)."""
        model = self.model.value
        self.notice.value = (
            f"<div class='dskit-note'><b>{html.escape(model)}</b> is a small stand-in model, "
            "not DeepSeek-R1: its answers are often wrong. Pick an example question to see "
            "each answer checked (✓/✗ with the expected answer); with Ollama and "
            "<code>deepseek-r1</code> the same widget runs the real model.</div>"
            if model in STANDINS else "")

    def _pick_example(self, change: dict) -> None:
        example = next((e for e in EXAMPLES if e.id == change["new"]), None)
        if example is not None:
            self.prompt.value = example.prompt

    def _grader(self, text: str) -> Callable[[Reply], object] | None:
        """How to grade the reply to `text`: by its example's answer, if it is one."""
        example = known_question(text)
        return (lambda reply: reply.grade(example)) if example is not None else None

    def send(self, wait: bool = False) -> None:
        """Send the prompt box's text; runs in a thread so Stop stays clickable."""
        text = self.prompt.value.strip()
        if not text or self.busy:
            return
        if self.model.value != self.conversation.model:
            self.conversation.model = self.model.value
        self.prompt.value = ""
        self.examples.value = ""  # picking the same example again fills the box again
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
        budget = None if self.think_budget.value == NO_LIMIT else self.think_budget.value
        # A widget is watched, not left alone: a looping reply is stopped (loop_guard).
        stream = self.conversation.send(
            text, stream=True, temperature=self.temperature.value,
            max_tokens=self.max_tokens.value, think=self.think.value or budget is not None,
            think_budget=budget, loop_guard=True, logprobs=bool(self.confidence.value),
        )
        assert isinstance(stream, ChatStream)
        self._stream = stream
        self.last_reply = stream_reply(stream, self.output, asked, self.status, self.worker,
                                       self._grader(text), drawn=self._keep_turn)

    def _keep_turn(self) -> None:
        """Move the finished turn into the history."""
        # Every turn stays on the page, a stopped or failed one too (marked as such); only
        # complete answers go back to the model as history (the Conversation decides that).
        stream = self._stream
        if stream is not None and stream.request.logprobs is not None and stream.reply.tokens:
            self.output.value += confidence_details(stream.reply, open_=True)
        self.history.value += self.output.value
        self.output.value = ""
