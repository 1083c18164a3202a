"""Chat on any backend: one-shot `chat()` and multi-turn `Conversation`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, overload

from ..client import Client, default_client
from ..documents import conversation_html, conversation_markdown, reply_data, save_document
from ..errors import ConfigurationError
from ..reasoning.loop_guard import REPETITION
from ..reasoning.think import Chunk
from ..reply import Reply
from .steps import run_steps
from .stream import ChatStream, Messages, as_messages, build_request


@overload
def chat(prompt: str | Messages, model: str | None = None, *, stream: Literal[False] = False,
         system: str | None = None, client: Client | None = None, loop_guard: bool = False,
         format: Any = None, tools: Any = None, max_steps: int = 5, retries: int = 0,
         **kwargs: Any) -> Reply: ...


@overload
def chat(prompt: str | Messages, model: str | None = None, *, stream: Literal[True],
         system: str | None = None, client: Client | None = None, loop_guard: bool = False,
         format: Any = None, tools: Any = None, max_steps: int = 5, retries: int = 0,
         **kwargs: Any) -> ChatStream: ...


@overload
def chat(prompt: str | Messages, model: str | None = None, *, stream: bool,
         system: str | None = None, client: Client | None = None, loop_guard: bool = False,
         format: Any = None, tools: Any = None, max_steps: int = 5, retries: int = 0,
         **kwargs: Any) -> Reply | ChatStream: ...


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
    functions, MCP servers: `ds.mcp_stdio`, `ds.mcp_http` or `mcpServers` entries) lets the
    model call them, up to `max_steps` requests (`reply.tool_calls`; then one without tools
    answers from the results, `done_reason` "max_steps"), each call for at most
    `tool_timeout` seconds (default 60; the model is told when one hangs).
    Keyword arguments: temperature, top_p, seed, max_tokens, num_ctx, stop, think,
    think_budget (cap the reasoning at N tokens, then answer; 0: answer without reasoning),
    think_min (extend reasoning that closes before N tokens with "Wait" / "等等", s1's budget
    forcing; `reply.extensions` counts it), max_extensions (at most that many times, default
    3), extension (the word instead of the default in the question's language), effort
    ("low", "medium", "high" or "max" where the server documents effort levels; docs/thinking.md),
    recommendations (False turns DeepSeek's defaults off), options (backend-specific extras).
    `loop_guard=True` stops a reply that falls into degenerate repetition
    (`done_reason == "repetition"`); `watch(reply)` (a `conversation.stream.Watch`), asked as
    it streams, stops it when it returns (done_reason, note). `logprobs=True` (and
    `top_logprobs=n`) fills `reply.tokens`.
    """
    client = client or default_client()
    if kwargs.get("exit_at") is not None:
        raise ConfigurationError("exit_at reads one trace at several checkpoints, so it gives "
                                 "several replies: use ds.early_exits(prompt, exit_at=[...]) or "
                                 "ds.compare(..., exit_at=[...])")
    if tools is None:
        kwargs.pop("tool_timeout", None)  # only tool calls have a time limit
    if format is not None or tools is not None or retries:
        if stream:
            raise ConfigurationError(
                "stream=True cannot be combined with format= or tools=: the answer is validated "
                "(and tools run) only once the reply is complete; leave stream out")
        return run_steps(client, as_messages(prompt, system), model, fmt=format, tools=tools,
                         max_steps=max_steps, retries=retries, **kwargs)
    watch = kwargs.pop("watch", None)  # a streaming reply's own stop rule (compare's early stop)
    request, notes = build_request(client, as_messages(prompt, system), model, **kwargs)
    s = ChatStream(client, request, notes, loop_guard, watch=watch)
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

    @overload
    def send(self, prompt: str, *, stream: Literal[False] = False, **kwargs: Any) -> Reply: ...

    @overload
    def send(self, prompt: str, *, stream: Literal[True], **kwargs: Any) -> ChatStream: ...

    @overload
    def send(self, prompt: str, *, stream: bool, **kwargs: Any) -> Reply | ChatStream: ...

    def send(self, prompt: str, *, stream: bool = False, **kwargs: Any) -> Reply | ChatStream:
        """Send one user turn; the history grows only when the reply completes.

        Takes `chat()`'s keyword arguments (think_budget, think_min, loop_guard, ...), over the
        defaults the conversation was made with.
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
        # A degenerate answer (an earlier one repeated, a bare number) stays out of the
        # history too: sent back, it is what the next answers copy.
        if (self.finished and not self.stopped and not self.reply.no_answer
                and not self.reply.degenerate and self.reply.done_reason != REPETITION):
            self._conv.history += [
                {"role": "user", "content": self._prompt},
                {"role": "assistant", "content": self.reply.answer},
            ]
            self._conv.replies.append(self.reply)
