"""Chat on any backend: one-shot `chat()`, streaming `ChatStream`, multi-turn `Conversation`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .backends.base import (
    ABANDONED,
    DEFAULT_MAX_TOKENS,
    DEFAULT_NUM_CTX,
    STOPPED,
    ChatRequest,
    Delta,
    Done,
    Options,
)
from .client import Client, default_client
from .documents import conversation_html, conversation_markdown, reply_data, save_document
from .errors import ConfigurationError, StreamInterrupted
from .loop_guard import REPETITION, LoopGuard
from .reasoning import Chunk, ThinkSplitter
from .reasoning_plan import Traits, plan_reasoning
from .recommendations import apply_recommendations
from .reply import Reply

Messages = list[dict[str, Any]]


class ChatStream:
    """An iterable of `Chunk`s; `.reply` holds the `Reply` built so far; `.stop()` cancels.

    With `loop_guard=True` a reply that falls into degenerate repetition is stopped there
    (`done_reason == "repetition"`, the text kept, a note saying why; see `dskit.loop_guard`).
    """

    def __init__(self, client: Client, request: ChatRequest, notes: list[str],
                 loop_guard: bool = False) -> None:
        self._client = client
        self._request = request
        self._started = False
        self._guard = LoopGuard() if loop_guard else None
        self.reply = Reply(model=request.model, backend=client.backend.name, notes=list(notes),
                           options=request_options(request))
        self.finished = False
        #: The backend's final event once the stream ended (stats, requested tool calls).
        self.done = Done()

    @property
    def request(self) -> ChatRequest:
        """What was asked of the backend (model, messages, options, reasoning plan)."""
        return self._request

    def stop(self) -> None:
        """Stop the generation, from any thread; the partial reply is kept, `done_reason` is
        `stopped`. The loop reading the stream ends at once, even when the backend is waiting
        on a silent server (the backend's read is interrupted)."""
        self._request.cancel.set(STOPPED)

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called before anything else ended the reply.

        Not whether the backend's request was cancelled: the loop guard cancels it too, and a
        reply it ended is a result ("repetition"), not an interruption.
        """
        return self._request.cancel.reason == STOPPED

    def __iter__(self) -> Iterator[Chunk]:
        if self._started:
            raise RuntimeError("a ChatStream can be iterated only once; use .reply afterwards")
        self._started = True
        reply, plan = self.reply, self._request.plan
        splitter = ThinkSplitter(start_in_thinking=plan.starts_inside)
        counts = {"thinking": 0, "answer": 0}
        done = Done()
        t0 = time.perf_counter()
        clock: list[float] = []  # first and last arrival, for a reply ended before its Done
        events = self._client.backend.stream(self._request)

        def take(chunks: list[Chunk]) -> list[Chunk]:
            kept = [c for c in chunks if c.text]
            for c in kept:
                if reply.stats.ttft is None:
                    reply.stats.ttft = time.perf_counter() - t0
                counts[c.kind] += 1
                reply.add(c)
            return kept

        try:
            for ev in events:
                if isinstance(ev, Done):
                    done = ev
                    continue
                if self.stopped:
                    break
                clock[1:] = [time.perf_counter()]
                yield from take(self._split(splitter, ev))
                if self._guard is not None and self._guard.feed(ev.text) is not None:
                    # Said first, so that closing the stream below (which cancels the
                    # backend's read) cannot record the stop as the user's.
                    self._request.cancel.set(REPETITION)
                    break
        except StreamInterrupted as exc:
            yield from take(splitter.finish())
            self._finalise(done, splitter, counts, t0)
            exc.partial = reply
            raise
        except GeneratorExit:
            # The caller left the loop early: keep what arrived, as if stop() had been called.
            self.stop()
            take(splitter.finish())
            done.done_reason = self._request.cancel.reason  # the guard's, if it came first
            self._finalise(done, splitter, counts, t0)
            raise
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # stops the backend's generation when we leave early
        yield from take(splitter.finish())
        loop = self._guard.loop if self._guard is not None else None
        if self.stopped:
            # A reason the backend gave before the stop arrived (e.g. "length") is kept.
            done.done_reason = done.done_reason if done.done_reason not in (None, ABANDONED) \
                else STOPPED
        elif loop is not None and self._request.cancel.reason == REPETITION:
            done.done_reason = REPETITION
            done.notes.append(loop.note())
            if done.stats.eval_tokens is None and len(clock) == 2:
                # The backend's own count never came: pieces over the time they took.
                pieces = counts["thinking"] + counts["answer"]
                done.stats.eval_tokens, done.stats.eval_time = pieces, clock[1] - clock[0]
        self._finalise(done, splitter, counts, t0)
        self.finished = True

    @staticmethod
    def _split(splitter: ThinkSplitter, ev: Delta) -> list[Chunk]:
        if ev.kind == "raw":
            return splitter.feed(ev.text)
        return [Chunk(ev.kind, ev.text)]

    def _finalise(self, done: Done, splitter: ThinkSplitter, counts: dict[str, int],
                  t0: float) -> None:
        self.done = done
        reply = self.reply
        stats = done.stats
        stats.ttft = reply.stats.ttft
        stats.total_time = time.perf_counter() - t0
        # Backends that cannot split their token count report none: count streamed pieces.
        if stats.thinking_tokens is None and stats.answer_tokens is None:
            if stats.eval_tokens is not None and counts["answer"] + counts["thinking"]:
                stats.thinking_tokens = min(counts["thinking"], stats.eval_tokens)
                stats.answer_tokens = stats.eval_tokens - stats.thinking_tokens
            else:
                stats.thinking_tokens, stats.answer_tokens = counts["thinking"], counts["answer"]
        reply.stats = stats
        reply.done_reason = done.done_reason
        reply.budget_hit = done.budget_hit
        reply.notes.extend(done.notes)
        reply.thinking = reply.thinking.strip()
        reply.answer = reply.answer.strip()
        reply.reasoned = reply.reasoned or splitter.saw_reasoning or counts["thinking"] > 0
        # A reply that asks for tool calls after its reasoning has no answer by design.
        unclosed = (self._request.plan.starts_inside and splitter.saw_reasoning
                    and not splitter.closed and counts["thinking"] and not counts["answer"]
                    and not done.tool_calls)
        if unclosed and not splitter.opened and not done.prefixed and done.done_reason == "stop":
            # We only assumed the template opened <think>; a model that stops by itself without
            # any tag skipped reasoning and answered directly.
            reply.answer, reply.thinking, reply.reasoned = reply.thinking, "", False
            stats.answer_tokens = (stats.answer_tokens or 0) + (stats.thinking_tokens or 0)
            stats.thinking_tokens = 0
            reply.notes.append("The model answered without reasoning.")
        elif unclosed or (counts["thinking"] and not counts["answer"]
                          and done.done_reason == "length"):
            reply.unfinished_reasoning = True
        if reply.unfinished_reasoning and done.done_reason == "length":
            reply.notes.append(
                "The token limit ended the reply during reasoning: raise max_tokens (or num_ctx)."
            )

    def collect(self) -> Reply:
        """Consume the whole stream and return the final `Reply`."""
        for _ in self:
            pass
        return self.reply


def request_options(request: ChatRequest) -> dict[str, Any]:
    """The settings a request goes out with, for a reply's header (`Reply.options`)."""
    o = request.options
    out: dict[str, Any] = {k: v for k in ("temperature", "top_p", "seed", "max_tokens", "num_ctx")
                           if (v := getattr(o, k)) is not None}
    if o.stop:
        out["stop"] = list(o.stop)
    if request.plan.think is not None:
        out["think"] = request.plan.think
    if request.plan.budget is not None:
        out["think_budget"] = request.plan.budget
    return {**out, **o.extra}


def build_request(
    client: Client,
    messages: Messages,
    model: str | None,
    *,
    temperature: float | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
    num_ctx: int | None = None,
    stop: list[str] | None = None,
    think: bool | None = None,
    think_budget: int | None = None,
    recommendations: bool = True,
    options: dict[str, Any] | None = None,
) -> tuple[ChatRequest, list[str]]:
    """Turn user arguments into a backend request with DeepSeek's recommendations applied."""
    model = model or client.default_model
    opts = Options(
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
        num_ctx=num_ctx or DEFAULT_NUM_CTX,
        stop=list(stop or []),
        extra=dict(options or {}),
    )
    traits = client.traits(model) if recommendations else Traits()
    notes: list[str] = []
    if recommendations:
        messages, opts, notes = apply_recommendations(messages, opts, traits)
    plan = plan_reasoning(traits, think, client.backend.reasoning_support(), think_budget)
    notes += plan.notes
    return ChatRequest(model=model, messages=messages, options=opts, plan=plan), notes


def as_messages(prompt: str | Messages, system: str | None = None) -> Messages:
    """Accept a prompt string or a message list; validate roles and contents."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ConfigurationError("the prompt is empty: pass some text to ask the model")
        messages: Messages = [{"role": "user", "content": prompt}]
    else:
        messages = [dict(m) for m in prompt]
        for m in messages:
            if m.get("role") not in ("system", "user", "assistant") or not isinstance(
                m.get("content"), str
            ):
                raise ConfigurationError(
                    "each message needs a role (system/user/assistant) and a string content, "
                    f"got {m!r}"
                )
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return messages


def chat(
    prompt: str | Messages,
    model: str | None = None,
    *,
    stream: bool = False,
    system: str | None = None,
    client: Client | None = None,
    loop_guard: bool = False,
    format: Any = None,
    tools: Any = None,
    max_steps: int = 5,
    retries: int = 0,
    **kwargs: Any,
) -> Reply | ChatStream:
    """Ask a model once. Returns a `Reply`, or with `stream=True` a `ChatStream` of chunks.

    `format` (a Pydantic model class, a JSON-schema dict or "json") makes the answer JSON,
    validated into `reply.parsed` (`retries=n` asks again with the errors shown); `tools` (Python
    functions) lets the model call them, up to `max_steps` requests (`reply.tool_calls`).
    Keyword arguments: temperature, top_p, seed, max_tokens, num_ctx, stop, think,
    think_budget (cap the reasoning at N tokens, then answer; 0: answer without reasoning),
    recommendations (False turns DeepSeek's defaults off), options (backend-specific extras).
    `loop_guard=True` stops a reply that falls into degenerate repetition
    (`done_reason == "repetition"`).
    """
    client = client or default_client()
    if format is not None or tools is not None or retries:
        # chat_steps builds on this module (build_request, ChatStream): imported here, not above.
        from .chat_steps import run_steps

        if stream:
            raise ConfigurationError(
                "stream=True cannot be combined with format= or tools=: the answer is validated "
                "(and tools run) only once the reply is complete; leave stream out")
        return run_steps(client, as_messages(prompt, system), model, fmt=format, tools=tools,
                         max_steps=max_steps, retries=retries, **kwargs)
    request, notes = build_request(client, as_messages(prompt, system), model, **kwargs)
    s = ChatStream(client, request, notes, loop_guard)
    return s if stream else s.collect()


class Conversation:
    """A multi-turn chat; only answers go back into the history, never the reasoning."""

    def __init__(self, model: str | None = None, *, system: str | None = None,
                 client: Client | None = None, **defaults: Any) -> None:
        self.client = client or default_client()
        self.model = model or self.client.default_model
        self.system = system
        self.defaults = defaults
        self.history: Messages = []
        self.replies: list[Reply] = []

    def send(self, prompt: str, *, stream: bool = False, **kwargs: Any) -> Reply | ChatStream:
        """Send one user turn; the history grows only when the reply completes.

        Takes `chat()`'s keyword arguments (think_budget, loop_guard, ...), over the defaults
        the conversation was made with.
        """
        if {"format", "tools"} & {*kwargs, *self.defaults}:
            raise ConfigurationError(
                "format= and tools= work with ds.chat: pass the history as a message list, "
                "e.g. ds.chat(conv.history + [{'role': 'user', 'content': ...}], format=...)")
        messages = as_messages(list(self.history) + as_messages(prompt), self.system)
        options = {**self.defaults, **kwargs}
        guard = bool(options.pop("loop_guard", False))
        request, notes = build_request(self.client, messages, self.model, **options)
        s = _TurnStream(self, prompt, self.client, request, notes, guard)
        return s if stream else s.collect()

    __call__ = send

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the conversation to `path`: `.md`, `.html` (a self-contained page) or `.json`.

        Each turn keeps its reasoning (folded), the answer, and the model, backend, options and
        stats of the reply. API keys and the home folder never appear in the file.
        """
        turns = list(zip(self.history[0::2], self.replies, strict=False))
        pairs = [(m["content"], r) for m, r in turns]
        title = f"Conversation with {self.model}"
        return save_document(
            path,
            markdown=lambda: conversation_markdown(title, pairs, self.system),
            html_page=lambda: conversation_html(title, pairs, self.system),
            data=lambda: {"model": self.model, "backend": self.client.name,
                          "system": self.system, "settings": self.defaults,
                          "turns": [{"prompt": p, "reply": reply_data(r)} for p, r in pairs]})

    def reset(self) -> None:
        """Forget the history."""
        self.history.clear()
        self.replies.clear()

    def __repr__(self) -> str:
        return f"Conversation(model={self.model!r}, turns={len(self.history) // 2})"


class _TurnStream(ChatStream):
    """A stream that records the turn in its conversation once it completes."""

    def __init__(self, conv: Conversation, prompt: str, *args: Any) -> None:
        super().__init__(*args)
        self._conv, self._prompt = conv, prompt

    def __iter__(self) -> Iterator[Chunk]:
        yield from super().__iter__()
        if (self.finished and not self.stopped and not self.reply.no_answer
                and self.reply.done_reason != REPETITION):
            self._conv.history += [
                {"role": "user", "content": self._prompt},
                {"role": "assistant", "content": self.reply.answer},
            ]
            self._conv.replies.append(self.reply)
