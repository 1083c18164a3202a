"""One reply as a stream: the request a chat turn makes (`build_request`) and `ChatStream`,
which splits the backend's events into reasoning and answer, runs the loop guard and builds
the `Reply`. `chat()` and `Conversation` (`session`) and the steps of a structured or tool
reply (`steps`) build on it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import pairwise
from typing import Any, Protocol, TextIO

from ..backends.base import (
    ABANDONED,
    DEFAULT_MAX_TOKENS,
    DEFAULT_NUM_CTX,
    DEFAULT_TOP_LOGPROBS,
    MAX_TOP_LOGPROBS,
    STOPPED,
    ChatRequest,
    Delta,
    Done,
    Event,
    Options,
    Token,
)
from ..client import Client
from ..errors import ConfigurationError, StreamInterrupted
from ..reasoning.answer_check import degenerate_answer, degenerate_note, empty_note
from ..reasoning.loop_guard import REPETITION, LoopGuard
from ..reasoning.plan import DEFAULT_MAX_EXTENSIONS, Traits, plan_reasoning
from ..reasoning.think import Chunk, ThinkSplitter
from ..recommendations import apply_recommendations
from ..reply import Reply

Messages = list[dict[str, Any]]
#: Whether to stop a reply as it streams: None to go on, or (done_reason, note).
Watch = Callable[[Reply], "tuple[str, str] | None"]


class ReplyStream(Protocol):
    """What reads a reply as it streams needs: its chunks, the `Reply` so far, and Stop
    (`ChatStream`, or a reply that was complete before anything was asked)."""

    reply: Reply

    @property
    def stopped(self) -> bool:
        """Whether `stop()` ended the reply."""
        ...

    def __iter__(self) -> Iterator[Chunk]: ...

    def stop(self) -> None:
        """Stop the reply (from any thread)."""
        ...


class ChatStream:
    """An iterable of `Chunk`s; `.reply` holds the `Reply` built so far; `.stop()` cancels.

    With `loop_guard=True` a reply that falls into degenerate repetition is stopped there
    (`done_reason == "repetition"`, the text kept, a note saying why; see
    `dskit.reasoning.loop_guard`).
    """

    def __init__(self, client: Client, request: ChatRequest, notes: list[str],
                 loop_guard: bool = False, events: Iterator[Event] | None = None,
                 watch: Watch | None = None) -> None:
        self._client = client
        self._request = request
        #: Asked after each piece of text whether to stop the reply: a (reason, note) ends it
        #: there, with `done_reason` the reason (DeepConf's early stop).
        self._watch = watch
        self._watched: tuple[str, str] | None = None
        #: The backend's events when they come from elsewhere than `backend.stream(request)`
        #: (a trace's whole reply or one of its early exits).
        self._events = events
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
        tokens = TokenSplit(splitter)  # the same split, for text that came with its tokens
        counts = {"thinking": 0, "answer": 0}
        done = Done()
        t0 = time.perf_counter()
        clock: list[float] = []  # first and last arrival, for a reply ended before its Done
        events = self._events if self._events is not None \
            else self._client.backend.stream(self._request)

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
                if ev.tokens:
                    # Each token with the text it made, in the phase that text went to; the
                    # tokens of text the split dropped (tags, stray tags) go with it.
                    parts = tokens.feed(ev.text, ev.tokens, ev.kind)
                    for kind, _, made in parts:
                        reply.tokens.extend(replace(t, phase=kind) for t in made)
                    chunks = [Chunk(kind, text) for kind, text, _ in parts]  # type: ignore[arg-type]
                else:
                    chunks = self._split(splitter, ev)
                yield from take(chunks)
                if self._guard is not None and self._guard.feed(ev.text) is not None:
                    # Said first, so that closing the stream below (which cancels the
                    # backend's read) cannot record the stop as the user's.
                    self._request.cancel.set(REPETITION)
                    break
                if self._watch is not None and (said := self._watch(reply)) is not None:
                    self._watched = said
                    self._request.cancel.set(said[0])
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
        elif self._watched is not None and self._request.cancel.reason == self._watched[0]:
            done.done_reason = self._watched[0]
            done.notes.append(self._watched[1])
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
        return splitter.apart(ev.kind, ev.text)

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
        reply.extensions = done.extensions
        reply.notes.extend(done.notes)
        if self._request.logprobs is not None and not reply.tokens and \
                (counts["thinking"] or counts["answer"]):
            reply.notes.append("logprobs: the server sent no token log-probabilities with this "
                               "reply (it ignores the request for them for this model).")
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
        self._check_answer(done)

    def _check_answer(self, done: Done) -> None:
        """Say when a finished answer is none: empty after the model stopped by itself, or
        degenerate (an earlier answer again, a bare number, a loop; `answer_check`)."""
        reply, request = self.reply, self._request
        if (done.done_reason not in ("stop", "length") or reply.unfinished_reasoning
                or done.tool_calls or request.format is not None):
            return  # stopped, looped, cut while reasoning, calling tools or JSON: said already
        if reply.no_answer:
            if done.done_reason == "stop":
                reply.notes.append(empty_note(reply.reasoned))
            return
        turns = [m for m in request.messages if m.get("role") in ("user", "assistant")]
        question = turns[-1]["content"] if turns and turns[-1]["role"] == "user" else ""
        earlier = [(q["content"], a["content"]) for q, a in pairwise(turns)
                   if q["role"] == "user" and a["role"] == "assistant"]
        reply.degenerate = degenerate_answer(reply.answer, str(question), earlier)
        if reply.degenerate:
            reply.notes.append(degenerate_note(reply.degenerate, reply.reasoned))

    def collect(self) -> Reply:
        """Consume the whole stream and return the final `Reply`."""
        for _ in self:
            pass
        return self.reply

    def print_live(self, file: TextIO | None = None) -> Reply:
        """Print the reply as it streams, the reasoning as it grows and then the answer, each
        under a heading; then how it ended when not ok, and its notes. Returns the `Reply`.

        For a notebook cell on a busy CPU: printing only the answer left the cell blank for the
        minutes the reasoning took (issue 27). An interrupt (the kernel's Stop) stops the reply
        and keeps what arrived.
        """
        out = file if file is not None else sys.stdout
        kind = ""
        try:
            for chunk in self:
                if chunk.kind != kind:
                    heading = "[reasoning]" if chunk.kind == "thinking" else "[answer]"
                    out.write(("\n\n" if kind else "") + heading + "\n")
                    kind = chunk.kind
                out.write(chunk.text)
                out.flush()
        except KeyboardInterrupt:
            self.stop()
            if not self.finished and self.reply.done_reason is None:
                self.reply.done_reason = STOPPED  # interrupted inside the backend's read
        reply = self.reply
        if reply.status != "ok":
            out.write(f"\n[{reply.status}]")
        for note in reply.notes:
            out.write(f"\n[note] {note}")
        out.write("\n")
        out.flush()
        return reply


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
    if request.plan.effort is not None:
        out["effort"] = request.plan.effort
    if request.logprobs is not None:
        out["top_logprobs"] = request.logprobs
    if request.plan.think_min is not None:
        out["think_min"] = request.plan.think_min
        out["max_extensions"] = request.plan.max_extensions
        if request.plan.extension is not None:
            out["extension"] = request.plan.extension
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
    exit_at: object = None,
    think_min: int | None = None,
    max_extensions: int = DEFAULT_MAX_EXTENSIONS,
    extension: str | None = None,
    effort: str | None = None,
    logprobs: bool = False,
    top_logprobs: int | None = None,
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
    ).checked()
    traits = client.traits(model) if recommendations else Traits()
    notes: list[str] = []
    if recommendations:
        messages, opts, notes = apply_recommendations(messages, opts, traits)
    plan = plan_reasoning(traits, think, client.backend.reasoning_support(), think_budget,
                          think_min, max_extensions, extension, exits=exit_at, effort=effort)
    notes += plan.notes
    return ChatRequest(model=model, messages=messages, options=opts, plan=plan,
                       logprobs=logprobs_setting(logprobs, top_logprobs, exit_at)), notes


def logprobs_setting(logprobs: object, top_logprobs: object, exit_at: object = None
                     ) -> int | None:
    """`ChatRequest.logprobs` from the user's `logprobs=` and `top_logprobs=`: None for none,
    else how many alternatives per token (`top_logprobs` alone asks for log-probabilities)."""
    if not isinstance(logprobs, bool):
        raise ConfigurationError(f"logprobs={logprobs!r}: give True or False")
    if top_logprobs is not None and (isinstance(top_logprobs, bool) or not isinstance(
            top_logprobs, int) or not 0 <= top_logprobs <= MAX_TOP_LOGPROBS):
        raise ConfigurationError(f"top_logprobs={top_logprobs!r}: give a whole number from 0 "
                                 f"to {MAX_TOP_LOGPROBS} (alternatives shown per token)")
    if not logprobs and top_logprobs is None:
        return None
    if exit_at is not None:
        raise ConfigurationError("logprobs= cannot be combined with exit_at= yet: ask for "
                                 "log-probabilities on the plain run")
    return DEFAULT_TOP_LOGPROBS if top_logprobs is None else top_logprobs


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


Split = tuple[str, str, tuple[Token, ...]]


class TokenSplit:
    """Raw text through a `ThinkSplitter`, each chunk with the tokens it came from.

    Where a delta's tokens spell its text they are fed one at a time, so each chunk carries
    its own tokens. Tokens whose text the split consumed whole (the `<think>` tags and the
    whitespace beside them) are left out: their text is in neither `thinking` nor `content`,
    and a client spelling the tokens out must get exactly the text it was sent.
    """

    def __init__(self, splitter: ThinkSplitter) -> None:
        self.splitter = splitter
        self._pending: list[Token] = []  # fed, but their text is not out yet

    def feed(self, text: str, tokens: tuple[Token, ...], kind: str = "raw") -> list[Split]:
        """(kind, text, tokens) for the chunks now certain: raw text split, or reasoning and
        answer given apart (`kind`, stray tags dropped from the reasoning)."""
        spelled = bool(tokens) and "".join(t.text for t in tokens) == text
        pieces = [(t.text, (t,)) for t in tokens] if spelled else [(text, tokens)]
        out: list[Split] = []
        for piece, own in pieces:
            self._pending.extend(own)
            chunks = self.splitter.feed(piece) if kind == "raw" else \
                self.splitter.apart(kind, piece)
            out += self._chunks(chunks, bool(piece))
        return out

    def finish(self) -> list[Split]:
        """What the splitter held back, with its tokens."""
        return self._chunks(self.splitter.finish(), True)

    def _chunks(self, chunks: list[Chunk], consumed: bool) -> list[Split]:
        """The splitter's `chunks` with the pending tokens on the first that has text."""
        kept = [c for c in chunks if c.text]
        if not kept:
            # A token of a character's first bytes has no text yet: it waits for the rest.
            if consumed and not self.splitter.holding:
                self._pending = []
            return []
        tokens, self._pending = tuple(self._pending), []
        released = "".join(c.text for c in kept)
        # Text the split consumed before what it released (leading whitespace, a stray tag):
        # the tokens that made only that go with it.
        while len(tokens) > 1 and "".join(t.text for t in tokens) != released and \
                "".join(t.text for t in tokens[1:]).endswith(released):
            tokens = tokens[1:]
        spelled = "".join(t.text for t in tokens)
        if tokens and spelled != released and spelled.endswith(released) and \
                len(spelled) - len(released) < len(tokens[0].text):
            # A token straddling what was dropped (">\n" ending a stray tag): its text is what
            # it adds to the reply; its own bytes stay in `data`.
            first = tokens[0]
            cut = len(spelled) - len(released)
            tokens = (replace(first, text=first.text[cut:],
                              data=first.data or first.text.encode("utf-8")), *tokens[1:])
        return [(c.kind, c.text, tokens if i == 0 else ()) for i, c in enumerate(kept)]
