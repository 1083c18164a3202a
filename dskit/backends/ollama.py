"""The Ollama backend: the official `ollama` client, plus a short `/api/version` probe."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import httpx
from packaging.version import InvalidVersion, Version

from .. import config
from ..errors import (
    AuthenticationError,
    BackendError,
    BudgetUnsupported,
    ConfigurationError,
    DskitError,
    EffortUnsupported,
    LogprobsUnsupported,
    ModelNotFound,
    OllamaNotRunning,
    ServerError,
    StreamInterrupted,
    ToolsNotSupported,
    clip,
    redact,
)
from ..reasoning.plan import CLOSE, EMPTY_THINK, THINK_PREFIX, ReasoningSupport
from ..tools import ToolRequest
from .base import (
    BudgetCut,
    ChatRequest,
    Delta,
    Done,
    Event,
    ModelHandling,
    Options,
    ServerTrace,
    Stats,
    Token,
    token_from_dict,
)
from .chat_template import render
from .http import CONNECT_TIMEOUT, interruptible, redact_http_logs, shutdown, timeouts
from .http import idle_timeout as resolve_idle_timeout

if TYPE_CHECKING:
    import ollama

T = TypeVar("T")

DEFAULT_PORT = 11434
DEFAULT_HOST = f"http://127.0.0.1:{DEFAULT_PORT}"
FALLBACK_MODEL = "deepseek-r1:7b"
#: First Ollama release with the `think` request field and `message.thinking` in replies.
THINK_SINCE = Version("0.9.0")
#: First Ollama release that applies `format` only after a model's reasoning (ollama/ollama
#: #12460: a first request reasons freely, a second constrains the answer). Before it, `format`
#: with `think` constrained the reasoning too, and the reasoning disappeared (#11545, #10538).
THINK_FORMAT_SINCE = Version("0.12.4")
#: The first Ollama that returns token log-probabilities (`logprobs`, `top_logprobs`).
LOGPROBS_SINCE = Version("0.12.11")
#: The first Ollama whose `think` takes a level, "low", "medium" or "high" (docs/api.md: "Can
#: be a boolean or a thinking level"; api/types.go ThinkValue), and the first that takes "max".
THINK_LEVELS_SINCE = Version("0.11.1")
THINK_MAX_SINCE = Version("0.22.0")
#: What a reply's parts may raise when the server sends something malformed: JSON errors and
#: pydantic's ValidationError are ValueErrors; a line that is not an object raises the others.
_MALFORMED = (ValueError, TypeError, AttributeError, RecursionError)


def _tokens(part: Any) -> tuple[Token, ...]:
    """The log-probabilities a streamed part carries (`logprobs`), as `Token`s."""
    entries = getattr(part, "logprobs", None) or ()
    out = []
    for entry in entries:
        data = entry.model_dump() if hasattr(entry, "model_dump") else entry
        try:
            out.append(token_from_dict(data))
        except ValueError as exc:
            raise StreamInterrupted(f"Ollama sent a malformed log-probability: {exc}") from None
    return tuple(out)


def _malformed(exc: Exception) -> str:
    """What was wrong with a reply, without quoting it when the quote would be shortened.

    pydantic (under ollama-python) quotes a long value with its middle cut out, which can
    leave most of an echoed key that no redaction recognises: its field errors are named
    without their values instead.
    """
    from pydantic import ValidationError  # installed with ollama; imported only on this path

    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}"
                         for e in exc.errors(include_url=False, include_input=False)[:3])
    return clip(str(exc), 300)


def resolve_host(host: str | None = None) -> str:
    """Normalise an Ollama host (argument, else OLLAMA_HOST, else the default) to a URL."""
    raw = (host or config.ollama_host() or "").strip()
    if not raw:
        return DEFAULT_HOST
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = "http", raw
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(
            f"Ollama host {raw!r} must use http:// or https://, e.g. {DEFAULT_HOST}"
        )
    # Like Ollama itself: an explicit scheme implies its usual port, a bare host means 11434.
    default_port = (80 if scheme == "http" else 443) if sep else DEFAULT_PORT
    split = urllib.parse.urlsplit(f"{scheme}://{rest}")
    try:
        port = split.port or default_port
    except ValueError as exc:
        raise ConfigurationError(f"Ollama host {raw!r} has an invalid port: {exc}") from None
    name = split.hostname or "127.0.0.1"
    # A server listening on every interface is reached through loopback.
    if name == "0.0.0.0":
        name = "127.0.0.1"
    elif name == "::":
        name = "::1"
    if ":" in name:
        name = f"[{name}]"
    path = split.path.strip("/")
    return f"{scheme}://{name}:{port}" + (f"/{path}" if path else "")


def supports_think(version: str, since: Version = THINK_SINCE) -> bool:
    """Whether an Ollama server of this version understands the `think` field (or, with
    `since=THINK_FORMAT_SINCE`, constrains only the answer of a reasoning reply)."""
    try:
        return Version(version) >= since
    except InvalidVersion:
        return False  # unknown builds get the old protocol: inline tags are split client-side


def ollama_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """dskit's messages in Ollama's shape (tool calls under `function`, `tool_name`)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        msg: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        if m.get("tool_calls"):
            msg["tool_calls"] = [{"function": {"name": c["name"], "arguments": c["arguments"]
                                               if isinstance(c["arguments"], dict) else {}}}
                                 for c in m["tool_calls"]]
        if m["role"] == "tool" and m.get("name"):
            msg["tool_name"] = m["name"]
        out.append(msg)
    return out


def ollama_options(options: Options) -> dict[str, Any]:
    """Ollama `options`, always with explicit num_ctx and num_predict."""
    # Ollama's defaults for both are small and have changed between releases: never rely on them.
    return {"num_ctx": options.num_ctx, "num_predict": options.max_tokens,
            **options.sampling(), **options.extra}


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e9


def _stats(part: Any) -> Stats:
    """Stats from Ollama's final chunk (durations are nanoseconds)."""
    return Stats(
        prompt_tokens=part.prompt_eval_count,
        prompt_time=_seconds(part.prompt_eval_duration),
        eval_tokens=part.eval_count,
        eval_time=_seconds(part.eval_duration),
        load_time=_seconds(part.load_duration),
    )


class OllamaBackend:
    """Models served by a running `ollama serve`."""

    name = "ollama"

    def __init__(self, host: str | None = None, model: str | None = None,
                 probe_timeout: float = 2.0, keep_alive: float | str | None = None,
                 idle_timeout: float | None = None) -> None:
        self.host = resolve_host(host)
        self.model = model
        self.probe_timeout = probe_timeout
        self.keep_alive = keep_alive
        #: Seconds Ollama may send nothing (before the first chunk or between two) before the
        #: reply counts as stalled; DSKIT_IDLE_TIMEOUT, default 300.
        self.idle_timeout = resolve_idle_timeout(idle_timeout)
        self._version: str | None = None
        #: What /api/version says the server is beyond Ollama's version ("dskit 0.1.0" for
        #: `dskit serve`), None for Ollama itself.
        self.server: str | None = None
        self._client: ollama.Client | None = None
        self._patient: ollama.Client | None = None
        self._details: dict[str, dict[str, Any]] = {}
        #: The reply being read in this thread: its cancellation learns the response's socket.
        self._local = threading.local()
        config.ollama_api_key()  # the ollama client sends it: error messages must never show it
        redact_http_logs()

    def __repr__(self) -> str:
        return f"OllamaBackend(host={self.host!r})"

    @property
    def client(self) -> ollama.Client:
        """The official client, created on first use."""
        if self._client is None:
            import ollama

            self._client = ollama.Client(
                host=self.host, timeout=timeouts(self.idle_timeout),
                event_hooks={"response": [self._on_response]})
        return self._client

    @property
    def patient_client(self) -> ollama.Client:
        """A client without the idle limit, for what may rightly be silent for long: loading
        or unloading a large model, verifying a pulled one (hundreds of GB for the 671b)."""
        if self._patient is None:
            import ollama

            self._patient = ollama.Client(host=self.host,
                                          timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT))
        return self._patient

    def _on_response(self, response: httpx.Response) -> None:
        """Let the reply being read in this thread shut this response down when stopped."""
        cancel = getattr(self._local, "cancel", None)
        if cancel is not None:
            self._local.forget = cancel.on_cancel(shutdown(response))

    def version(self) -> str:
        """The server's version, probed once with a short timeout."""
        if self._version is None:
            try:
                r = httpx.get(f"{self.host}/api/version",
                              timeout=httpx.Timeout(self.probe_timeout))
                r.raise_for_status()
                data = r.json()
                self._version = str(data["version"])
                self.server = str(data["server"]) if data.get("server") else None
            except httpx.TimeoutException:
                raise OllamaNotRunning(
                    self.host, f"no answer within {self.probe_timeout:g} s"
                ) from None
            except httpx.HTTPStatusError as exc:
                raise OllamaNotRunning(
                    self.host, f"/api/version answered HTTP {exc.response.status_code}; "
                    "is this Ollama?"
                ) from None
            except httpx.HTTPError as exc:
                raise OllamaNotRunning(self.host, _describe(exc)) from None
            except (ValueError, KeyError, TypeError):
                raise OllamaNotRunning(
                    self.host, "something answers there, but not like Ollama"
                ) from None
        return self._version

    @property
    def is_dskit_serve(self) -> bool:
        """Whether the server is `dskit serve` (the embedded stand-ins behind Ollama's API)."""
        self.version()
        return bool(self.server and self.server.startswith("dskit"))

    def list_models(self) -> list[str]:
        """Names of the locally pulled models (newest first, as Ollama lists them)."""
        listed = self._call(self.client.list)
        # Names come from the server: shown in reports, they must not show a secret either.
        return [redact(m.model) for m in listed.models if m.model]

    def chat_models(self) -> list[str]:
        """The listed models that chat (embedding models such as BERT families left out)."""
        listed = self._call(self.client.list)
        return [m.model for m in listed.models if m.model and not _is_embedding_family(
            (m.details.family if m.details else "") or "")]

    def model_details(self, model: str) -> dict[str, Any]:
        """Ollama's /api/show for `model` as a plain dict; {} if it is not pulled."""
        if model not in self._details:
            try:
                shown = self._call(lambda: self.client.show(model), model)
            except ModelNotFound:
                return {}  # not cached: it may be pulled later; chat raises the real error
            # by_alias keeps Ollama's own key `model_info` (the Python field is `modelinfo`).
            self._details[model] = shown.model_dump(mode="json", by_alias=True,
                                                    exclude_none=True)
        return self._details[model]

    def describe(self) -> dict[str, Any]:
        """Host, server version and local models, for `doctor()`."""
        return {"backend": self.name, "host": self.host, "version": self.version(),
                "models": self.list_models()}

    @property
    def default_model(self) -> str:
        """The given model, else DSKIT_MODEL, else the first local deepseek-r1, else 7b."""
        if self.model:
            return self.model
        if config.model():
            return str(config.model())
        try:
            local = self.list_models()
        except OllamaNotRunning:
            local = []  # the name is still useful; using it raises OllamaNotRunning anyway
        r1 = next((m for m in local if m.startswith("deepseek-r1")), None)
        if r1 is None and self.is_dskit_serve:
            # `dskit serve` has no DeepSeek model: its first chat model, not a name it lacks.
            r1 = next(iter(self.chat_models()), None)
        return r1 or FALLBACK_MODEL

    def reasoning_support(self) -> ReasoningSupport:
        """Ollama >= 0.9 takes `think` and returns reasoning apart; no forced prefix; >= 0.12.4
        constrains only the answer when given `format` and `think` together."""
        version = self.version()
        return ReasoningSupport(think_switch=supports_think(version),
                                format_after_reasoning=supports_think(version,
                                                                      THINK_FORMAT_SINCE))

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        """Stream a chat reply from /api/chat as Deltas, then one Done.

        Read in a helper thread, so that `request.cancel` (`ChatStream.stop()`) ends it at
        once even while Ollama sends nothing (loading a model, or stalled).
        """
        yield from interruptible(self._events(request), request.cancel)

    def _events(self, request: ChatRequest) -> Iterator[Event]:
        think, plan = request.plan.send_think, request.plan
        if (plan.budget is not None or plan.think_min) and think:
            yield from self._budgeted(request)
            return
        if (plan.budget is not None or plan.think_min) and think is None:
            # Before 0.9 the reasoning comes inline in `content`, uncounted: the budget would
            # be ignored without a word, which is worse than refusing it.
            raise BudgetUnsupported(
                f"Ollama {self.version()} at {self.host} sends the reasoning inline (the "
                f"`think` switch needs Ollama {THINK_SINCE} or later: upgrade it)",
                "think_budget" if plan.budget is not None else "think_min")
        try:
            yield from self._stream(request, think)
        except BackendError as exc:
            # Pulled before Ollama 0.9, a model's template may lack thinking support: retry
            # without `think`; its inline <think> tags are then split by the chat layer.
            if (think is None or isinstance(exc, StreamInterrupted)
                    or "does not support thinking" not in str(exc)):
                raise
            for ev in self._stream(request, None):
                if isinstance(ev, Done) and think:
                    ev.notes.append(f"Ollama says {request.model} does not support thinking, "
                                    "so it was asked again without `think`.")
                yield ev

    def effort_levels(self) -> tuple[str, ...]:
        """The levels this Ollama's `think` takes (none before 0.11.1; "max" from 0.22)."""
        version = self.version()
        if not supports_think(version, THINK_LEVELS_SINCE):
            return ()
        levels = ("low", "medium", "high")
        return (*levels, "max") if supports_think(version, THINK_MAX_SINCE) else levels

    def _think_value(self, request: ChatRequest, think: bool | None) -> bool | str | None:
        """`think` as sent: the plan's switch, or its effort level where Ollama and the model
        take one (else `EffortUnsupported`)."""
        effort = request.plan.effort
        if effort is None or not think:
            return think
        if request.plan.hybrid or "deepseek" in request.model.lower():
            # Ollama reads a level as "on" for DeepSeek models: the deepseek-v3.1 renderer
            # checks only `think.Bool()` (model/renderers/deepseek3.go) and R1's template has no
            # level; a level would change nothing.
            raise EffortUnsupported(f"Ollama's DeepSeek models ({request.model}) read `think` "
                                    "only as on or off", effort)
        levels = self.effort_levels()
        if effort not in levels:
            why = (f"Ollama {self.version()} at {self.host} takes "
                   + ("no thinking levels (upgrade Ollama)" if not levels else
                      f"the thinking levels {', '.join(levels)}"))
            raise EffortUnsupported(why, effort, levels)
        return effort

    def _stream(self, request: ChatRequest, think: bool | None) -> Iterator[Event]:
        extra: dict[str, Any] = {}
        sent = self._think_value(request, think)
        if sent is not None:
            extra["think"] = sent
        if self.keep_alive is not None:
            extra["keep_alive"] = self.keep_alive
        if request.format is not None:
            extra["format"] = request.format
        if request.tools:
            extra["tools"] = request.tools
        extra.update(self._logprobs(request))
        self._local.cancel = request.cancel  # see `_on_response`
        # ollama-python streams through a generator: closing it closes the HTTP response.
        parts = cast(Generator[Any, None, None], self.client.chat(
            request.model, ollama_messages(request.messages), stream=True,
            options=ollama_options(request.options), **extra))
        calls: list[ToolRequest] = []

        def deltas(part: Any) -> Iterator[Delta]:
            msg = part.message
            tokens = _tokens(part)
            # Servers may split reasoning out even when `think` was not sent.
            if msg.thinking:
                yield Delta("thinking", msg.thinking, tokens)
                tokens = ()
            if msg.content:
                yield Delta("answer" if think else "raw", msg.content, tokens)
            calls.extend(ToolRequest(c.function.name, dict(c.function.arguments))
                         for c in msg.tool_calls or [])

        def finished(done: Done) -> Done:
            # /api/chat cannot force the "<think>\n" prefix: `prefixed` stays False.
            done.tool_calls = calls
            if request.format is not None:
                done.notes.append(self._format_note(think))
            return done

        yield from self._relay(parts, request, deltas, finished)

    def _relay(self, parts: Generator[Any, None, None], request: ChatRequest,
               deltas: Callable[[Any], Iterator[Delta]],
               finished: Callable[[Done], Done] = lambda done: done) -> Iterator[Event]:
        """A streamed client response as events: `deltas(part)` for each part, then the final
        part's `Done` (through `finished`); errors translated, the response closed however it
        ends, nothing more once `request.cancel` is set."""
        import ollama

        model, cancel = request.model, request.cancel
        started = False
        try:
            while True:
                try:
                    part = next(parts)
                except StopIteration:
                    break
                except (ollama.ResponseError, httpx.HTTPError, ConnectionError,
                        *_MALFORMED) as exc:
                    if cancel.is_set():
                        return  # stopped: the read failed because its socket was shut down
                    raise self._translate(exc, model, streaming=True, started=started) from None
                started = True
                yield from deltas(part)
                if part.done:
                    stats = _stats(part)
                    stats.memory = self._memory_of(model)
                    yield finished(Done(stats=stats, done_reason=part.done_reason))
                    return
        finally:
            self._local.cancel = None
            forget = self._local.__dict__.pop("forget", None)
            if forget is not None:
                forget()
            parts.close()  # closes the HTTP response, which stops Ollama's generation
        if cancel.is_set():
            return
        raise StreamInterrupted(f"Ollama at {self.host} ended the reply without its final chunk")

    def _logprobs(self, request: ChatRequest) -> dict[str, Any]:
        """The request's log-probability fields, or a `LogprobsUnsupported` for a server that
        would ignore them (older Ollama drops fields it does not know, without a word)."""
        if request.logprobs is None:
            return {}
        version = self.version()
        if not supports_think(version, LOGPROBS_SINCE):
            if self.is_dskit_serve:  # its version is the Ollama API it speaks, not dskit's
                raise LogprobsUnsupported(f"{self.host} is a `dskit serve` from before token "
                                          "log-probabilities (upgrade dskit where it runs)")
            raise LogprobsUnsupported(f"Ollama {version} at {self.host} predates log-"
                                      f"probabilities (they came in {LOGPROBS_SINCE}: upgrade it)")
        return {"logprobs": True, "top_logprobs": request.logprobs}

    def _format_note(self, think: bool | None) -> str:
        """What Ollama did with `format` (said on every structured reply)."""
        if think:
            return (f"format: sent with think; Ollama {self.version()} constrains only the "
                    "answer, after the reasoning (0.12.4 and later).")
        return "format: Ollama constrained the answer to the schema."

    def _budgeted(self, request: ChatRequest) -> Iterator[Event]:
        """Reasoning cut at the plan's budget, then the answer from a raw `/api/generate`.

        Ollama has no budget of its own to use instead: /api/chat takes `think` (on, off or a
        level) and no thinking budget (api/types.go ChatRequest; docs/api.md), so dskit's
        continuation is the way on Ollama.

        The reasoning streams from /api/chat (`think: true`) and is cut at the budget
        (`BudgetCut`); the answer is generated from the prompt rendered with the model's own
        template, the reasoning so far, a wrap-up line, `</think>` and a blank line, sent with
        `raw: true` (no template applied again). A reply that stops reasoning before the
        budget is complete as it is, unless it stops before the plan's `think_min`: then the
        same raw prompt, ending in the reasoning so far and the extension word, carries it on.
        """
        budget, plan = request.plan.budget, request.plan
        setting = "think_budget" if budget is not None else "think_min"
        prompt = self._prompt(request, setting)  # before generating
        cut = BudgetCut(budget, request.messages, plan)
        t0 = time.perf_counter()
        if budget != 0:
            extend = self._extension(request, prompt) if plan.think_min else None
            try:
                yield from cut.stream(self._stream(request, True), extend)
            except BackendError as exc:
                if isinstance(exc, StreamInterrupted) or "does not support thinking" not in \
                        str(exc):
                    raise
                # A model without thinking: nothing to cut (`stream` says why it answered).
                yield from self._events(replace(request, plan=replace(
                    plan, budget=None, think_min=None)))
                return
            if not cut.cut or request.cancel.is_set():
                return
            yield cut.wrap_up()
        seconds = time.perf_counter() - t0
        for ev in self._closed(request, prompt, cut):
            yield cut.done(ev, seconds) if isinstance(ev, Done) else ev

    def _prompt(self, request: ChatRequest, feature: str = "think_budget") -> str:
        """The model's own template rendered for the request, up to where its reply starts."""
        details = self.model_details(request.model)
        if not details.get("template"):
            raise BudgetUnsupported(f"Ollama at {self.host} did not show the chat template of "
                                    f"{request.model}", feature)
        return render(str(details["template"]), request.messages, feature)

    def _closed(self, request: ChatRequest, prompt: str, cut: BudgetCut) -> Iterator[Event]:
        """The answer after `cut`: its reasoning closed after `prompt`, generated raw."""
        closed = f"{THINK_PREFIX}{cut.reasoning()}{CLOSE}" if cut.budget else EMPTY_THINK
        options = ollama_options(request.options)
        options["num_predict"] = max(1, request.options.max_tokens - len(cut.pieces))
        yield from self._continue(request, prompt + closed, options)

    def trace(self, request: ChatRequest) -> ServerTrace:
        """Early exits: the reply from /api/chat once, then each checkpoint's answer from a raw
        continuation of the same prefix (Ollama's runner keeps the prompt it just evaluated
        in its cache, so only the closing text and the answer are new)."""
        if not request.plan.send_think:
            raise BudgetUnsupported(
                f"Ollama {self.version()} at {self.host} sends the reasoning inline (the "
                f"`think` switch needs Ollama {THINK_SINCE} or later: upgrade it)", "exit_at")
        prompt = self._prompt(request, "exit_at")
        return ServerTrace(
            request, lambda: self.stream(request),
            lambda cut, cancel: interruptible(
                self._closed(replace(request, cancel=cancel), prompt, cut), cancel))

    def _extension(self, request: ChatRequest, prompt: str
                   ) -> Callable[[str, int], Iterator[Event]]:
        """How reasoning closed before `think_min` goes on: the raw prompt, the reasoning so
        far ending in the extension word, streamed as raw text (reasoning until `</think>`)."""

        def extend(reasoning: str, thought: int) -> Iterator[Event]:
            options = ollama_options(request.options)
            options["num_predict"] = max(1, request.options.max_tokens - thought)
            return self._continue(request, f"{prompt}{THINK_PREFIX}{reasoning}", options, "raw")

        return extend

    def _continue(self, request: ChatRequest, prompt: str, options: dict[str, Any],
                  kind: Literal["answer", "raw"] = "answer") -> Iterator[Event]:
        """The answer after a cut (or the reasoning after an extension, `raw`): `raw: true`
        generation of `prompt`."""
        extra: dict[str, Any] = {}
        if self.keep_alive is not None:
            extra["keep_alive"] = self.keep_alive
        self._local.cancel = request.cancel  # see `_on_response`
        # think=False: the prompt already holds the opened (or closed) reasoning, the output
        # is read as it comes.
        extra.update(self._logprobs(request))
        parts = cast(Generator[Any, None, None], self.client.generate(
            request.model, prompt, raw=True, think=False, stream=True, options=options, **extra))

        def deltas(part: Any) -> Iterator[Delta]:
            if part.response:
                yield Delta(kind, part.response, _tokens(part))

        yield from self._relay(parts, request, deltas)

    def _memory_of(self, model: str) -> int | None:
        """Bytes `model` takes in memory now (/api/ps `size`: RAM + VRAM); None if unknown."""
        try:
            r = httpx.get(f"{self.host}/api/ps", timeout=httpx.Timeout(self.probe_timeout))
            rows = r.json().get("models") or []
        except (httpx.HTTPError, ValueError, AttributeError):
            return None  # only decorates the stats: the reply itself is complete
        size = next((m.get("size") for m in rows if isinstance(m, dict)
                     and model in (m.get("name"), m.get("model"))), None)
        return int(size) if isinstance(size, int) and size > 0 else None

    # --- model management ---------------------------------------------------------------

    def pull(self, tag: str, progress: Callable[[int, int], None] | None = None
             ) -> Iterator[dict[str, Any]]:
        """Stream /api/pull progress: dicts with status, and digest/total/completed per layer;
        `progress(done, total)` gets the bytes of all layers so far.

        Ollama resumes an interrupted pull where it stopped: calling this again continues it.
        """
        import ollama

        self.version()  # fail fast on a dead server: the pull itself has no read timeout
        parts = cast(Generator[Any, None, None], self.patient_client.pull(tag, stream=True))
        layers: dict[str, tuple[int, int]] = {}
        try:
            for part in parts:
                if progress is not None and part.digest and part.total:
                    layers[part.digest] = (int(part.completed or 0), int(part.total))
                    progress(sum(d for d, _ in layers.values()),
                             sum(t for _, t in layers.values()))
                yield {k: v for k, v in (("status", part.status), ("digest", part.digest),
                                         ("total", part.total), ("completed", part.completed))
                       if v is not None}
        except (ollama.ResponseError, httpx.HTTPError, ConnectionError, *_MALFORMED) as exc:
            raise self._translate_pull(exc, tag) from None
        finally:
            parts.close()  # closes the HTTP response (Ollama keeps the partial download)

    def _translate_pull(self, exc: Exception, tag: str) -> DskitError:
        import ollama

        if isinstance(exc, ollama.ResponseError):
            text = str(exc.error).lower()
            if exc.status_code == 404 or "file does not exist" in text or "not found" in text:
                # Ollama streams "pull model manifest: file does not exist" for unknown tags.
                return ModelNotFound(
                    tag, self.name, hint=f"the Ollama library has no model {tag!r} ({exc.error}); "
                    "check the name and size tag at https://ollama.com/library "
                    "(e.g. deepseek-r1:7b)")
        return self._translate(exc, tag)

    def model_handling(self) -> ModelHandling:
        """Downloads from the Ollama library that resume; OLLAMA_MAX_LOADED_MODELS at once (as
        set here; unset, one at a time, since a GPU that holds one size unloads the last)."""
        return ModelHandling(in_process=False, pull_resumes=True, store_setting="OLLAMA_MODELS",
                             max_loaded=config.ollama_max_loaded_models() or 1)

    def download_need(self, tag: str) -> tuple[str | None, float]:
        """Ollama's store, at the catalog's download size (Ollama says nothing before)."""
        return "", -1.0

    def loaded(self) -> list[str]:
        """Models in memory now (/api/ps)."""
        return [row["name"] for row in self.ps()]

    def unload(self, model: str) -> None:
        """Free `model` from memory now (Ollama's documented empty request with keep_alive=0)."""
        self._call(lambda: self.patient_client.generate(model=model, keep_alive=0), model)

    def preload(self, model: str) -> float:
        """Load `model` into memory without generating; the load time in seconds.

        Ollama's own `load_duration` when it reports one, else the measured wall time.
        """
        extra: dict[str, Any] = {}
        if self.keep_alive is not None:
            extra["keep_alive"] = self.keep_alive
        t0 = time.perf_counter()
        reply = self._call(lambda: self.patient_client.generate(model=model, **extra), model)
        wall = time.perf_counter() - t0
        loaded = _seconds(reply.load_duration)
        return wall if loaded is None else loaded

    def ps(self) -> list[dict[str, Any]]:
        """Models in memory (/api/ps): name, size, size_vram (bytes), expires_at, ..."""
        running = self._call(self.client.ps)
        out: list[dict[str, Any]] = []
        for m in running.models:
            row: dict[str, Any] = {
                "name": m.name or m.model or "",
                "model": m.model or m.name or "",
                "size": int(m.size or 0),
                "size_vram": int(m.size_vram or 0),
                "expires_at": m.expires_at,
            }
            if m.context_length is not None:
                row["context_length"] = m.context_length
            if m.digest:
                row["digest"] = m.digest
            out.append(row)
        return out

    def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """Embeddings of `texts` from /api/embed, one request (no idle limit: a whole batch is
        one silent request, minutes on a CPU)."""
        out = self._call(lambda: self.patient_client.embed(model=model, input=texts), model)
        return [list(v) for v in out.embeddings]

    def _call(self, fn: Callable[[], T], model: str | None = None) -> T:
        """Run one non-streaming client call, translating its errors."""
        import ollama

        self.version()  # fails fast on a dead or hung server
        try:
            return fn()
        except DskitError:
            raise
        except (ollama.ResponseError, httpx.HTTPError, ConnectionError, *_MALFORMED) as exc:
            # Never chained (`from None`): a library's message may quote what the server sent.
            raise self._translate(exc, model) from None

    def _translate(self, exc: Exception, model: str | None = None, *, streaming: bool = False,
                   started: bool = False) -> DskitError:
        """The one place where client and transport errors become dskit errors."""
        import ollama

        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError)):
            return OllamaNotRunning(self.host, _describe(exc))
        if isinstance(exc, httpx.TimeoutException):
            message = (f"Ollama at {self.host} sent nothing for {self.idle_timeout:g} s (the idle "
                       "limit): it is stalled, or still loading a large model. Raise the limit "
                       "with idle_timeout=… or DSKIT_IDLE_TIMEOUT")
            return StreamInterrupted(message) if streaming else ServerError(message)
        if isinstance(exc, _MALFORMED):
            message = (f"Ollama at {self.host} sent a reply dskit cannot read "
                       f"({type(exc).__name__}: {_malformed(exc)}); is this Ollama?")
            return StreamInterrupted(message) if streaming else BackendError(message)
        if isinstance(exc, ollama.ResponseError):
            status = exc.status_code if exc.status_code > 0 else None
            text = str(exc.error)
            if started:
                return StreamInterrupted(f"Ollama reported an error mid-reply: {text}",
                                         status=status)
            if model and "does not support tools" in text:
                return ToolsNotSupported(model, f"Ollama at {self.host}", text)
            if model and (status == 404 or "not found" in text.lower()):
                hint = (f"{self.host} is `dskit serve`, which runs only the embedded stand-ins "
                        "(no downloads): pick one of them, or run DeepSeek models with Ollama"
                        if self.server and self.server.startswith("dskit") else "")
                return ModelNotFound(model, self.name, available=self._available(), hint=hint)
            if "more system memory" in text:
                return ServerError(
                    f"Ollama cannot load {model or 'the model'}: {text}. Pick a smaller model "
                    "(see `ds.models.recommend()`) or free memory (unload other models, "
                    "close other programs).", status)
            if status in (401, 403):
                return AuthenticationError(
                    f"Ollama at {self.host} refused the request (HTTP {status}): {text}", status)
            if status is not None and status >= 500:
                return ServerError(f"Ollama failed (HTTP {status}): {text}", status)
            where = f"HTTP {status}" if status else "an error"
            return BackendError(f"Ollama answered {where}: {text}", status)
        if streaming:
            when = "mid-reply" if started else "before replying"
            return StreamInterrupted(
                f"the connection to Ollama at {self.host} broke off {when}: {_describe(exc)}"
            )
        return OllamaNotRunning(self.host, _describe(exc))

    def _available(self) -> list[str] | None:
        """Local model names for an error message, or None if they cannot be listed now."""
        try:
            return self.list_models()
        except DskitError:
            return None  # only decorates another error: that error is what the user needs


def _is_embedding_family(family: str) -> bool:
    """Embedding model families as Ollama reports them (all-minilm, bge-m3, nomic-embed-text)."""
    return "bert" in family.lower()


def _describe(exc: BaseException) -> str:
    """A short reason for an error message."""
    if isinstance(exc, ConnectionError):
        return "cannot connect"  # ollama-python's own text only says to download Ollama
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
