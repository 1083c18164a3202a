"""The one seam: the `Backend` protocol and the values that cross it."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import BudgetUnsupported, ConfigurationError
from ..reasoning.plan import (
    ReasoningPlan,
    ReasoningSupport,
    budget_note,
    extension_note,
    extension_word,
    shown_after,
    wrap_up,
)
from ..reasoning.think import CLOSE_TAG
from ..tools import ToolRequest

#: Context window sent with every request (Ollama's own default is too small for R1's reasoning).
DEFAULT_NUM_CTX = 8192
#: Token budget per reply: R1 models often think for thousands of tokens.
DEFAULT_MAX_TOKENS = 4096
#: The largest token count any setting may hold (llama.cpp counts tokens in 32-bit ints).
MAX_TOKENS = 2**31 - 1
#: Stop strings a reply may have, and their length.
MAX_STOPS, MAX_STOP_CHARS = 64, 1000
#: Alternatives per token a request may ask for (Ollama and OpenAI's API accept 0 to 20).
MAX_TOP_LOGPROBS = 20
#: Alternatives per token when log-probabilities are asked for without a number: DeepConf's
#: token confidence needs some (it used 20; 5 costs less to send and still ranks traces).
DEFAULT_TOP_LOGPROBS = 5


@dataclass
class Stats:
    """Timing and token counts of one reply; times in seconds, None when unknown."""

    ttft: float | None = None  # time to first token (thinking or answer)
    prompt_tokens: int | None = None
    thinking_tokens: int | None = None
    answer_tokens: int | None = None
    eval_tokens: int | None = None  # all generated tokens
    eval_time: float | None = None  # seconds spent generating them
    prompt_time: float | None = None
    load_time: float | None = None
    total_time: float | None = None
    memory: int | None = None  # bytes the model takes in memory (RAM + VRAM), when known

    @property
    def tokens_per_s(self) -> float | None:
        """Generation speed in tokens per second."""
        if self.eval_tokens and self.eval_time:
            return self.eval_tokens / self.eval_time
        return None

    def summary(self) -> str:
        """A one-line human summary, e.g. `42.1 tok/s · TTFT 0.21 s · 120 tokens`."""
        parts: list[str] = []
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:.1f} tok/s")
        if self.ttft is not None:
            parts.append(f"TTFT {self.ttft:.2f} s")
        if self.thinking_tokens:
            parts.append(f"{self.thinking_tokens} thinking tokens")
        if self.answer_tokens is not None:
            parts.append(f"{self.answer_tokens} answer tokens")
        if self.load_time:
            parts.append(f"load {self.load_time:.2f} s")
        if self.memory:
            parts.append(f"memory {self.memory / 1e9:.2f} GB")
        if self.total_time is not None:
            parts.append(f"total {self.total_time:.2f} s")
        return " · ".join(parts)


@dataclass
class Options:
    """Sampling and length settings, in backend-neutral names."""

    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS  # Ollama: num_predict
    num_ctx: int = DEFAULT_NUM_CTX
    stop: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # passed through to the backend

    def checked(self) -> Options:
        """These options, bounded before they reach an engine (llama.cpp, a server), or a
        `ConfigurationError` naming the setting; empty stop strings are dropped (one would end
        every reply before its first token)."""
        for name in ("max_tokens", "num_ctx"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not 1 <= value <= MAX_TOKENS:
                raise ConfigurationError(f"{name}={value!r}: give a whole number of tokens from "
                                         f"1 to {MAX_TOKENS:,}")
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value < 0):
                raise ConfigurationError(f"{name}={value!r}: give a finite number >= 0")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(
                self.seed, int) or not -(2**63) <= self.seed < 2**64):
            raise ConfigurationError(f"seed={self.seed!r}: give a whole number (64 bits)")
        if isinstance(self.stop, str) or not all(isinstance(s, str) for s in self.stop):
            raise ConfigurationError("stop: give a list of strings")
        stop = [s for s in self.stop if s]
        if len(stop) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in stop):
            # Each is looked for in the text after every token: thousands slow every reply.
            raise ConfigurationError(f"stop: at most {MAX_STOPS} strings of at most "
                                     f"{MAX_STOP_CHARS} characters each (got {len(stop)})")
        self.stop = stop
        return self

    def sampling(self) -> dict[str, Any]:
        """temperature, top_p, seed and stop, only those that are set (same names everywhere)."""
        out: dict[str, Any] = {
            k: v for k in ("temperature", "top_p", "seed") if (v := getattr(self, k)) is not None
        }
        if self.stop:
            out["stop"] = list(self.stop)
        return out


log = logging.getLogger(__name__)

#: `Cancellation.reason` (and `done_reason`) when whoever started a reply stopped it.
STOPPED = "stopped"
#: ... when the reader of a reply left it without saying why.
ABANDONED = "abandoned"
#: ... when its confidence fell below a threshold (`compare(early_stop="confidence")`).
LOW_CONFIDENCE = "low-confidence"


class Cancellation:
    """A flag another thread raises to stop a reply, with callbacks that act at once.

    A backend checks `is_set()` between steps (llama.cpp between prompt batches and tokens)
    and registers a callback with `on_cancel` for a step that blocks (an HTTP read), so that
    `ChatStream.stop()` or a server whose client left takes effect without waiting for the
    next token. It quacks like `threading.Event` (`set`, `is_set`, `wait`).

    Whoever cancels says why (`reason`): the first reason given is kept, so that a stop the
    loop guard decided is not recorded as "stopped by you" when closing the stream then
    cancels the read as well.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        #: Why the reply was stopped, as the first caller of `set` said (None until then).
        self.reason: str | None = None

    def is_set(self) -> bool:
        """Whether the reply should stop."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled (or `timeout` seconds); whether it was cancelled."""
        return self._event.wait(timeout)

    def set(self, reason: str = STOPPED) -> None:
        """Cancel: raise the flag and run the callbacks (each at most once); `reason` is kept
        only when nobody cancelled before."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _run(callback)

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` when cancelled (now, if it already is); returns a function that
        unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        _run(callback)
        return lambda: None

    def _forget(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a failed cancel step must not stop the others (nor the caller)
        log.debug("a cancel callback failed", exc_info=True)


@dataclass
class ChatRequest:
    """What the chat layer asks a backend to generate.

    Messages are role/content dicts; a tool round trip adds an assistant message with
    `tool_calls: [{"id", "name", "arguments": {...}}]` and `tool` messages with `content`,
    `name` and `tool_call_id`. Each backend turns these into its server's shape.
    """

    model: str
    messages: list[dict[str, Any]]
    options: Options = field(default_factory=Options)
    #: Whether and how the reply reasons (`dskit.reasoning.plan`); the backend carries it out.
    plan: ReasoningPlan = field(default_factory=ReasoningPlan)
    #: Constrain the answer (never the reasoning) to JSON: "json" or a JSON schema.
    format: str | dict[str, Any] | None = None
    #: Functions the model may ask to call (`{"type": "function", "function": {...}}` specs).
    tools: list[dict[str, Any]] | None = None
    #: Log-probabilities: None for none, n for each generated token's log-probability and
    #: its n most likely alternatives (`Delta.tokens`).
    logprobs: int | None = None
    #: Set by whoever started the reply to stop it; backends stop as soon as they see it.
    cancel: Cancellation = field(default_factory=Cancellation, compare=False, repr=False)


@dataclass(frozen=True)
class Token:
    """One generated token: its text, log-probability (natural log) and the most likely
    alternatives at its position, as (text, log-probability) from the most likely down.

    `text` is what the token adds to the reply (a character split over tokens comes whole
    with its last token, so the texts add up to the reply); `data` holds its own bytes.
    `phase` is "thinking" or "answer", set by the chat layer.
    """

    text: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()
    data: bytes = b""
    phase: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The token in the OpenAI and Ollama APIs' shape (`token`, `logprob`, `bytes`,
        `top_logprobs`)."""
        data = self.data or self.text.encode("utf-8")
        return {"token": self.text, "logprob": self.logprob, "bytes": list(data),
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}
                                 for t, lp in self.top]}


def token_from_dict(entry: dict[str, Any]) -> Token:
    """A `Token` from a server's `{"token", "logprob", "bytes", "top_logprobs"}` (OpenAI's
    and Ollama's shape); a `ValueError` for anything else."""
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        raise ValueError(f"not a token's log-probability: {str(entry)[:200]!r}")
    logprob = entry.get("logprob")
    if isinstance(logprob, bool) or not isinstance(logprob, (int, float)):
        raise ValueError(f"a token without a numeric logprob: {str(entry)[:200]!r}")
    top = []
    for alt in entry.get("top_logprobs") or []:
        if isinstance(alt, dict) and isinstance(alt.get("token"), str) and isinstance(
                alt.get("logprob"), (int, float)) and not isinstance(alt.get("logprob"), bool):
            top.append((alt["token"], float(alt["logprob"])))
    raw = entry.get("bytes")
    data = bytes(raw) if isinstance(raw, list) and all(
        isinstance(b, int) and 0 <= b < 256 for b in raw) else b""
    return Token(entry["token"], float(logprob), tuple(top), data)


@dataclass(frozen=True)
class Delta:
    """Streamed text. `raw` may hold inline `<think>` tags; the other kinds are already split.
    `tokens` are the generated tokens this text came from, when log-probabilities were asked
    for (text a backend adds itself, such as a budget's wrap-up line, has none)."""

    kind: Literal["thinking", "answer", "raw"]
    text: str
    tokens: tuple[Token, ...] = ()


@dataclass
class Done:
    """The end of a stream, with what the backend measured."""

    stats: Stats = field(default_factory=Stats)
    done_reason: str | None = None
    #: Whether the plan's prefix was really forced into the reply.
    prefixed: bool = False
    #: What the backend wants the user to know about this reply (shown on the `Reply`).
    notes: list[str] = field(default_factory=list)
    #: Whether the reasoning was cut at the plan's thinking budget.
    budget_hit: bool = False
    #: How many times reasoning closed before the plan's `think_min` was extended.
    extensions: int = 0
    #: Calls the model asked for instead of (or besides) answering; the chat layer runs them.
    tool_calls: list[ToolRequest] = field(default_factory=list)


Event = Delta | Done
Kind = Literal["thinking", "answer", "raw"]


#: A continuation of the reasoning: the reasoning so far (ending with the extension word) and
#: the tokens it holds, to the events of a request that carries it on.
Extend = Callable[[str, int], Iterator[Event]]


class BudgetCut:
    """A server's reasoning cut at a thinking budget, and extended to a thinking minimum, for
    backends that stream it apart.

    `stream(events)` passes a reply's events through and stops once `budget` pieces of
    reasoning arrived (Ollama, `dskit serve`, vLLM and DeepSeek send one token per piece of
    reasoning), closing `events`, which stops the server's generation. A reply whose
    reasoning ends first passes through whole, `cut` stays False, and it is complete as it is.
    After a cut, `wrap_up()` is the event that shows the closing line and `reasoning()` the
    text the answer must be continued from.

    With the plan's `think_min` and an `extend` function, reasoning that ends (the answer
    starts) before the minimum is not passed on: the extension word follows it (s1's budget
    forcing) and `extend` continues the reasoning from there, as raw text read up to `</think>`.
    """

    def __init__(self, budget: int | None, messages: list[dict[str, str]],
                 plan: ReasoningPlan | None = None) -> None:
        self.budget, self.messages = budget, messages
        self.plan = plan if plan is not None else ReasoningPlan(budget=budget)
        self.pieces: list[str] = []
        self.cut = False
        #: Whether the reply's text came inline (`raw`): the server did not split reasoning.
        self.inline = False
        self.line = wrap_up(messages)
        #: How many times the reasoning was extended (`think_min`).
        self.extensions = 0
        self._t0 = time.perf_counter()
        self._since = 0.0  # seconds spent before the last continuation started
        self._thought_before = 0  # pieces of reasoning before the last continuation

    def stream(self, events: Iterator[Event], extend: Extend | None = None) -> Iterator[Event]:
        """The events up to the cut (all of them when the reasoning ends within the budget),
        with the reasoning extended through `extend` while it ends before the minimum."""
        source, split = events, None
        while True:
            ended = yield from self._pass(source, split, extend is not None)
            if not ended or extend is None:
                return
            # Said as reasoning, counted as about one token: the word the model goes on from.
            shown = "".join(self.pieces)
            # The reasoning's trailing whitespace goes; its pieces stay counted.
            for i in range(len(self.pieces) - 1, -1, -1):
                self.pieces[i] = self.pieces[i].rstrip()
                if self.pieces[i]:
                    break
            word = extension_word(self.plan, self.messages)
            self.pieces.append(word)
            self.extensions += 1
            yield Delta("thinking", shown_after(shown, word))
            self._since, self._thought_before = time.perf_counter() - self._t0, len(self.pieces)
            source, split = extend("".join(self.pieces).strip(), len(self.pieces)), _Closing()

    def _pass(self, events: Iterator[Event], split: _Closing | None, extending: bool
              ) -> Generator[Event, None, bool]:
        """One source's events; True when its reasoning ended before the minimum (the source
        is left there, its answer unsent)."""
        said, blank = 0, ""  # answer pieces passed on; whitespace held before the first
        held: tuple[Token, ...] = ()  # tokens of text not passed on yet
        try:
            for ev in events:
                if isinstance(ev, Done):
                    if split is not None and split.buf:
                        self.pieces.append(split.buf)  # a tag's start that never closed
                        yield Delta("thinking", split.buf)
                    if extending and not self.inline and said == 0 \
                            and ev.done_reason != "length" and not ev.tool_calls \
                            and self.plan.extends(len(self.pieces), self.extensions):
                        return True  # closed without an answer: extended as well
                    if blank:
                        yield Delta("answer", blank)
                    yield self._extended(ev, said) if self.extensions else ev
                    return False
                parts: list[tuple[Kind, str]]
                if split is not None:
                    parts = split.feed(ev.text) if ev.kind == "raw" else [(ev.kind, ev.text)]
                elif ev.kind == "thinking" and not self.inline:
                    parts = [("thinking", ev.text)]
                else:
                    self.inline = self.inline or ev.kind == "raw"
                    parts = [("raw" if self.inline else ev.kind, ev.text)]
                held += ev.tokens  # they go out with the first text shown
                for kind, text in parts:
                    if kind == "thinking":
                        self.pieces.append(text)
                        yield Delta("thinking", text, held)
                        held = ()
                        if self.budget is not None and len(self.pieces) >= self.budget:
                            self.cut = True
                            return False
                        continue
                    if said == 0 and not text.strip() and not self.inline:
                        blank += text  # the answer has not begun yet: nothing to decide
                        continue
                    if extending and not self.inline and said == 0 \
                            and self.plan.extends(len(self.pieces), self.extensions):
                        return True  # the answer began before the minimum
                    said += 1
                    yield Delta(kind, blank + text, held)
                    blank, held = "", ()
            return False
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def _extended(self, done: Done, said: int) -> Done:
        """The final event after extensions: reasoning counted from the pieces (extension
        words included), the answer from the last continuation."""
        stats = done.stats
        thought = len(self.pieces)
        in_last = thought - self._thought_before
        answer = said if stats.eval_tokens is None else max(0, stats.eval_tokens - in_last)
        stats.thinking_tokens, stats.answer_tokens = thought, answer
        stats.eval_tokens = thought + answer
        stats.eval_time = (stats.eval_time or 0.0) + self._since
        # A continuation's prompt holds the reasoning: its size is not the question's.
        stats.prompt_tokens = stats.prompt_time = None
        done.extensions = self.extensions
        done.notes.append(extension_note(self.extensions, self.plan.think_min or 0))
        return done

    def wrap_up(self) -> Delta:
        """The closing line, shown at the end of the reasoning."""
        return Delta("thinking", f"\n\n{self.line}")

    def reasoning(self) -> str:
        """The reasoning so far and the closing line (without the tags)."""
        return "".join(self.pieces).strip() + f"\n\n{self.line}"

    def done(self, answer: Done, seconds: float) -> Done:
        """The final event of the continuation, with the reasoning's tokens and time added."""
        stats = answer.stats
        thought, said = len(self.pieces), stats.eval_tokens or 0
        stats.thinking_tokens, stats.answer_tokens = thought, said
        stats.eval_tokens = thought + said
        stats.eval_time = (stats.eval_time or 0.0) + seconds
        # The continuation's prompt holds the reasoning: its size is not the question's.
        stats.prompt_tokens = stats.prompt_time = None
        notes = [*answer.notes, budget_note(self.budget or 0)]
        if self.extensions:
            notes.append(extension_note(self.extensions, self.plan.think_min or 0))
        return Done(stats=stats, done_reason=answer.done_reason, budget_hit=True,
                    extensions=self.extensions, notes=notes)


class _Closing:
    """Raw text that continues a reasoning block: reasoning up to `</think>`, answer after it
    (a tag split across pieces is held back until it is certain)."""

    def __init__(self) -> None:
        self.buf, self.closed = "", False

    def feed(self, text: str) -> list[tuple[Kind, str]]:
        """The (kind, text) parts now certain."""
        if self.closed:
            return [("answer", text)]
        self.buf += text
        at = self.buf.find(CLOSE_TAG)
        if at >= 0:
            self.closed = True
            parts: list[tuple[Kind, str]] = [("thinking", self.buf[:at]),
                                             ("answer", self.buf[at + len(CLOSE_TAG):])]
            self.buf = ""
            return [p for p in parts if p[1]]
        keep = next((n for n in range(min(len(CLOSE_TAG) - 1, len(self.buf)), 0, -1)
                     if CLOSE_TAG.startswith(self.buf[-n:])), 0)
        sure, self.buf = self.buf[:len(self.buf) - keep], self.buf[len(self.buf) - keep:]
        return [("thinking", sure)] if sure else []


class Trace(Protocol):
    """One reply whose reasoning is kept to be closed at early-exit checkpoints.

    `stream()` is the whole reply (the trace read to its end), once; then `exit(n, cancel)`
    closes its first `n` tokens of reasoning exactly as `think_budget=n` would and streams only
    the answer from there (the reasoning is not generated again). `close()` frees what it holds.
    """

    def stream(self) -> Iterator[Event]:
        """The whole reply, as `Backend.stream` gives it."""
        ...

    def exit(self, checkpoint: int, cancel: Cancellation) -> Iterator[Event] | None:
        """The reply closed at `checkpoint`: the reasoning kept (and the wrap-up line) as
        thinking, the answer, then `Done` with `budget_hit`; None when the reasoning ended
        before the checkpoint (the whole reply is that checkpoint's reply too)."""
        ...

    def close(self) -> None:
        """Release the model or the state the trace holds."""
        ...


@runtime_checkable
class EarlyExits(Protocol):
    """A backend that can keep a reply's trace and close it at checkpoints (`exit_at`)."""

    def trace(self, request: ChatRequest) -> Trace:
        """A `Trace` of `request` (a plan with `exits`); raises `BudgetUnsupported` where the
        reasoning cannot be continued, as a thinking budget would."""
        ...


class ServerTrace:
    """Early exits for a server that streams its reasoning apart (Ollama, OpenAI-compatible).

    The reply streams once through a `BudgetCut` that never cuts (so its pieces are counted
    the way a budget counts them); each exit rebuilds the cut a budget of that size would have
    made and asks `answer(cut, cancel)` for the continuation, whose prompt is the cached
    prefix the server just evaluated (Ollama's runner and vLLM reuse it).
    """

    def __init__(self, request: ChatRequest, reply: Callable[[], Iterator[Event]],
                 answer: Callable[[BudgetCut, Cancellation], Iterator[Event]]) -> None:
        self.request, self._reply, self._answer = request, reply, answer
        self.whole = BudgetCut(None, request.messages)  # never cuts: only counts

    def stream(self) -> Iterator[Event]:
        """The whole reply, its reasoning pieces recorded."""
        yield from self.whole.stream(self._reply())

    def exit(self, checkpoint: int, cancel: Cancellation) -> Iterator[Event] | None:
        """The answer after the first `checkpoint` pieces of reasoning, closed."""
        pieces = self.whole.pieces
        if self.whole.inline:
            raise BudgetUnsupported("the server sent the reasoning inline, not apart",
                                    "exit_at")
        if checkpoint and len(pieces) < checkpoint:
            return None  # a budget this size would not have cut: the whole reply is its reply
        cut = BudgetCut(checkpoint, self.request.messages)
        cut.pieces, cut.cut = pieces[:checkpoint], True
        return self._events(cut, cancel)

    def _events(self, cut: BudgetCut, cancel: Cancellation) -> Iterator[Event]:
        if cut.budget:
            yield Delta("thinking", "".join(cut.pieces))
            yield cut.wrap_up()
        for ev in self._answer(cut, cancel):
            if isinstance(ev, Done):
                ev = cut.done(ev, 0.0)
                # Only the answer was generated: speed is the answer's (the reasoning was not).
                ev.stats.eval_tokens = ev.stats.answer_tokens
            yield ev

    def close(self) -> None:
        """Nothing held: the server keeps its own cache."""


@runtime_checkable
class Backend(Protocol):
    """A place that runs models: Ollama, an OpenAI-compatible server, or llama.cpp in process."""

    name: str

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        """Generate a reply: zero or more `Delta`s then exactly one `Done`."""
        ...

    def list_models(self) -> list[str]:
        """Names of the models this backend can run now."""
        ...

    def model_details(self, model: str) -> dict[str, Any]:
        """What the backend knows about a model (Ollama's /api/show); {} when nothing."""
        ...

    def describe(self) -> dict[str, Any]:
        """Facts for `doctor()`: where it runs, server version, and so on. Never secrets."""
        ...

    def reasoning_support(self) -> ReasoningSupport:
        """What this backend can do about reasoning (a think switch, a forced prefix, …)."""
        ...

    @property
    def default_model(self) -> str:
        """The model used when none is given."""
        ...


@dataclass(frozen=True)
class ModelHandling:
    """How a backend that manages models gets and holds them: what the layers above ask
    instead of a backend's name."""

    #: Models come from files on this machine and run in this process (no download, no server).
    in_process: bool
    #: An interrupted pull continues where it stopped when run again (Ollama keeps the part
    #: already downloaded); otherwise it starts over.
    pull_resumes: bool
    #: The setting that moves where pulled models are stored, for a "free disk" fix.
    store_setting: str
    #: How many models stay in memory at once.
    max_loaded: int
    #: Threads each loaded model computes with on this machine's cores (0: not on this machine).
    threads_per_model: int = 0


@runtime_checkable
class LocalModels(Protocol):
    """Optional, beside `Backend`: a backend that pulls, loads, lists and unloads its models
    (Ollama, the embedded backend; not an OpenAI-compatible endpoint). Asked for by capability,
    `isinstance(backend, LocalModels)`, never by name."""

    name: str

    def model_handling(self) -> ModelHandling:
        """How this backend gets and holds models."""
        ...

    def pull(self, tag: str, progress: Callable[[int, int], None] | None = None) -> Any:
        """Make `tag` ready to load, calling `progress(done, total)` with bytes as it goes:
        Ollama downloads it (and the result iterates over its progress events), the embedded
        backend assembles and checks its file."""
        ...

    def download_need(self, tag: str) -> tuple[str | None, float]:
        """Where a pull of `tag` writes and how many bytes: (None, 0) when nothing is written,
        ("", -1) when only the catalog knows (a registry download)."""
        ...

    def loaded(self) -> list[str]:
        """Models in memory now."""
        ...

    def ps(self) -> list[dict[str, Any]]:
        """Models in memory in Ollama's /api/ps shape."""
        ...

    def preload(self, model: str) -> float:
        """Load `model` now; the seconds it took."""
        ...

    def unload(self, model: str) -> None:
        """Free `model` from memory."""
        ...
