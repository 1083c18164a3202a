"""OpenAI-compatible chat completions over httpx with SSE (DeepSeek platform, vLLM, SGLang)."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from httpx_sse import SSEError, connect_sse
from packaging.version import InvalidVersion, Version

from .. import config
from ..errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailable,
    BudgetUnsupported,
    ConfigurationError,
    DskitError,
    EffortUnsupported,
    ModelNotFound,
    RateLimited,
    ServerError,
    StreamInterrupted,
    ToolsNotSupported,
    clip,
    redact,
    register_secret,
)
from ..reasoning.plan import (
    CLOSE,
    EMPTY_THINK,
    PLATFORM_MODES,
    THINK_PREFIX,
    ReasoningSupport,
    native_budget_note,
    native_fallback_note,
)
from ..tools import ToolRequest, decode_arguments
from .base import (
    BudgetCut,
    ChatRequest,
    Delta,
    Done,
    Event,
    ServerTrace,
    Stats,
    Token,
    token_from_dict,
)
from .http import idle_timeout as resolve_idle_timeout
from .http import interruptible, redact_http_logs, shutdown, timeouts

#: DeepSeek's platform model (V4-Flash, thinking by default since the 2026-04-24 change log:
#: deepseek-reasoner, the old name, was retired on 2026-07-24); used when nothing else names one.
FALLBACK_MODEL = "deepseek-v4-flash"
#: Listing models is quick on every server; doctor() should not hang on a dead one.
LIST_TIMEOUT = 15.0
#: Delta fields that carry reasoning: DeepSeek/vLLM/SGLang, then Ollama's /v1.
REASONING_FIELDS = ("reasoning_content", "reasoning")
#: The servers dskit tells apart (`server=` names one; otherwise `server_kind()` finds it).
SERVERS = ("deepseek", "vllm", "sglang", "llama.cpp", "other")
#: `/models` `owned_by` values that name a server: vLLM and SGLang name themselves, llama.cpp's
#: server says "llamacpp" (tools/server/README.md, GET /v1/models).
OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp"}
#: The first vLLM whose chat completions take `thinking_token_budget` (vLLM PR #20859; "vLLM >=
#: 0.20" per ai-dynamo/dynamo#9571). Older vLLMs ignore unknown fields without a word.
VLLM_BUDGET_SINCE = Version("0.20.0")
#: A server that ignores its budget field without a word is caught when this many more pieces
#: of reasoning than the budget arrived (a server that enforces it may add its own closing
#: phrase, vLLM's `reasoning_end_str` or llama.cpp's `reasoning_budget_message`, to the count).
NATIVE_SLACK = 64
#: The effort levels of DeepSeek's platform: `reasoning_effort` "low", "high" or "max"
#: (api-docs.deepseek.com/guides/thinking_mode, "Thinking Mode Toggle and Effort Control").
PLATFORM_EFFORTS = ("low", "high", "max")

_BASE_URL_HELP = (
    "pass `ds.connect('openai', base_url=...)` or set DSKIT_OPENAI_BASE_URL, e.g. "
    "https://api.deepseek.com (DeepSeek's platform), http://127.0.0.1:8000/v1 (vLLM or SGLang), "
    "http://127.0.0.1:11434/v1 (Ollama)"
)


class _Secret:
    """A string that never shows itself in repr/str (API keys)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the Authorization header only."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__


def normalise_base_url(url: str) -> str:
    """Return the API root that `/chat/completions` and `/models` hang off.

    Rule: trailing slashes and a pasted `/chat/completions` are dropped; a bare host (no path)
    gets `/v1`, which DeepSeek's platform, vLLM, SGLang, Ollama and llama.cpp all serve; any
    other path (`.../v1`, a proxy's `/api/openai/v1`) is used as given.
    """
    url = url.strip().rstrip("/")
    if not url:
        raise ConfigurationError(f"the base URL is empty: {_BASE_URL_HELP}")
    if "://" not in url:
        raise ConfigurationError(
            f"base URL {url!r} has no scheme: write http://... or https://... ({_BASE_URL_HELP})"
        )
    if url.endswith("/chat/completions"):
        url = url[: -len("/chat/completions")].rstrip("/")
    if httpx.URL(url).path in ("", "/"):
        url += "/v1"
    return url


def _display_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    u = httpx.URL(url)
    if u.userinfo:
        return str(u.copy_with(username=None, password=None))
    return url


class OpenAIBackend:
    """Any server speaking OpenAI's chat completions: DeepSeek's platform, vLLM, SGLang, Ollama.

    `continuation` says how this server continues a final assistant message, which a thinking
    budget needs: "vllm" (`continue_final_message`), "deepseek" (prefix completion), "none";
    by default DeepSeek's host and servers whose /models say `owned_by: vllm|sglang` are known.
    `server` names the server ("deepseek", "vllm", "sglang", "llama.cpp", "other") where
    dskit cannot tell (a proxy); by default DeepSeek's host and /models' `owned_by` say it.
    `native_budget`: None uses the server's own per-request thinking budget where dskit can
    tell it works (vLLM >= 0.20; SGLang started with --enable-strict-thinking), True also on
    llama.cpp's server, False never (dskit's cut and continuation only). docs/thinking.md.
    """

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None,
                 api_key: str | None = None, api_key_env: str | None = None,
                 timeout: float | None = None, idle_timeout: float | None = None,
                 continuation: str | None = None, server: str | None = None,
                 native_budget: bool | None = None) -> None:
        raw = base_url or config.openai_base_url()
        if not raw:
            raise ConfigurationError(f"no OpenAI-compatible server configured: {_BASE_URL_HELP}")
        self.base_url = normalise_base_url(raw)
        self._model = model
        self._listed_default: str | None = None
        self._key_env = api_key_env
        key, self._key_source = api_key, "passed as api_key=" if api_key else ""
        if not key and (found := config.api_key(api_key_env)):
            key, self._key_source = found[0], f"from {found[1]}"
        self._api_key = _Secret(key) if key else None
        register_secret(key)  # from here on no dskit error message can show it
        redact_http_logs()
        #: Seconds the server may send nothing (before the first event or between two) before
        #: the reply counts as stalled; `timeout` is its older name. DSKIT_IDLE_TIMEOUT, 300.
        self.idle_timeout = resolve_idle_timeout(idle_timeout if idle_timeout is not None
                                                 else timeout)
        self._timeout = timeouts(self.idle_timeout)
        self._http: httpx.Client | None = None
        #: Models whose server refused `response_format` once (it is not sent again).
        self._no_response_format: set[str] = set()
        if continuation not in (None, "vllm", "deepseek", "none"):
            raise ConfigurationError(f"continuation={continuation!r}: use 'vllm' "
                                     "(continue_final_message), 'deepseek' (prefix completion), "
                                     "'none', or leave it out to detect it")
        #: How a reasoning cut at a budget is continued ("" once known to be impossible).
        self._continuation = "" if continuation == "none" else continuation
        if server not in (None, *SERVERS):
            raise ConfigurationError(f"server={server!r}: use one of {', '.join(SERVERS)}, or "
                                     "leave it out to detect it")
        if native_budget not in (None, True, False):
            raise ConfigurationError(f"native_budget={native_budget!r}: give True (use the "
                                     "server's own thinking budget), False (never) or None "
                                     "(where dskit can tell it works)")
        #: Which server this is ("" for one dskit does not know); None until asked.
        self._kind: str | None = "" if server == "other" else server
        self._native = native_budget
        #: Whether the server's own budget field works, once known (None: not asked yet).
        self._native_ok: bool | None = None
        #: Models whose server refused or ignored its own budget field (not sent again).
        self._no_native: set[str] = set()

    def __repr__(self) -> str:
        key = "***" if self._api_key else "None"
        return (f"OpenAIBackend(base_url={_display_url(self.base_url)!r}, "
                f"model={self._model!r}, api_key={key})")

    # -- HTTP ---------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        """The shared HTTP client, created on first use (nothing happens at construction)."""
        if self._http is None:
            headers = {"Accept": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
            self._http = httpx.Client(headers=headers, timeout=self._timeout)
        return self._http

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- errors: the one place where HTTP failures become dskit errors --------------------------

    def _key_hint(self) -> str:
        """Which environment variable to set, without ever naming the key itself."""
        envs = ", ".join(config.api_key_variables(self._key_env))
        if self._api_key is None:
            return f"no API key is set: set one of {envs} (or pass api_key=...)"
        return (f"the API key {self._key_source} was refused: check it, or set another in "
                f"one of {envs}")

    def _translate(self, exc: Exception, *, started: bool = False) -> DskitError:
        """Turn an httpx/SSE failure into a typed dskit error that says what to do."""
        where = _display_url(self.base_url)
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return StreamInterrupted(
                f"{where} sent nothing for {self.idle_timeout:g} s (the idle limit): the server "
                "is stalled or overloaded. Raise the limit with idle_timeout=… or "
                "DSKIT_IDLE_TIMEOUT")
        if started:
            return StreamInterrupted(f"the stream from {where} broke off: "
                                     f"{str(exc) or type(exc).__name__}")
        if isinstance(exc, httpx.TimeoutException):
            return BackendUnavailable(
                f"the OpenAI-compatible server at {where} did not answer in time "
                f"({type(exc).__name__}): check that it runs and that base_url is right"
            )
        if isinstance(exc, (httpx.TransportError, SSEError)):
            detail = str(exc) or type(exc).__name__
            return BackendUnavailable(
                f"cannot reach the OpenAI-compatible server at {where} ({detail}): start it "
                f"(`vllm serve ...`, `ollama serve`), or if it runs elsewhere {_BASE_URL_HELP}"
            )
        return BackendError(f"{type(exc).__name__}: {exc}")

    def _status_error(self, response: httpx.Response, model: str | None) -> DskitError:
        """Translate a non-2xx answer; `response` must be readable."""
        status = response.status_code
        message = _error_message(_read_text(response)) or response.reason_phrase
        where = _display_url(self.base_url)
        if status in (401, 403):
            return AuthenticationError(f"{where} refused the request ({status}: {message}); "
                                       f"{self._key_hint()}", status)
        if model and status in (400, 404) and "does not support tools" in message:
            return ToolsNotSupported(model, where, message)
        if model and status in (400, 404) and _is_model_missing(message):
            available: list[str] = []
            # The list is a courtesy; the missing model is the error to report.
            with contextlib.suppress(DskitError):
                available = self.list_models()
            return ModelNotFound(model, "openai", available,
                                 hint=f"{where} says: {message}; pick one of its models")
        if status == 404:
            return BackendError(
                f"{where} has no such endpoint ({message}): check base_url "
                "(it usually ends in /v1)", status)
        if status == 429:
            after = _retry_after(response.headers.get("retry-after", ""))
            wait = f"; retry after {after}" if after else "; wait a little and retry"
            return RateLimited(f"{where} is rate limiting requests ({message}){wait}", status)
        if status >= 500:
            return ServerError(f"the server at {where} failed ({status}): {message}", status)
        return BackendError(f"{where} rejected the request ({status}): {message}", status)

    # -- protocol -------------------------------------------------------------------------------

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body of a streaming chat completion."""
        opts = request.options
        body: dict[str, Any] = {
            "model": request.model,
            "messages": openai_messages(request.messages),
            "stream": True,
            # Without it, token counts never arrive in streaming mode.
            "stream_options": {"include_usage": True},
            "max_tokens": opts.max_tokens,
        }
        # num_ctx and think have no portable OpenAI equivalent: the server decides them.
        body.update(opts.sampling())
        if request.logprobs is not None:
            body["logprobs"], body["top_logprobs"] = True, request.logprobs
        if request.tools:
            body["tools"] = request.tools
        if request.format is not None and request.model not in self._no_response_format:
            body["response_format"] = response_format(request.format)
        controls = self._controls(request)
        body["model"] = controls.model
        body["messages"] = openai_messages(request.messages, controls.reasoning_back)
        extra = dict(opts.extra)
        kwargs = extra.pop("chat_template_kwargs", None)
        body.update(controls.fields)
        if isinstance(kwargs, dict) and isinstance(body.get("chat_template_kwargs"), dict):
            # The caller's own template arguments go beside (and over) the thinking switch.
            body["chat_template_kwargs"] = {**body["chat_template_kwargs"], **kwargs}
        elif kwargs is not None:
            body["chat_template_kwargs"] = kwargs
        body.update(extra)
        body["stream"] = True  # the parser below needs SSE, whatever the extras say
        return body

    # -- thinking per request: the switch, effort, the server's own budget ------------------

    def _on_platform(self) -> bool:
        """Whether this is DeepSeek's platform (its host, or `server="deepseek"`)."""
        host = (httpx.URL(self.base_url).host or "").lower()
        return self._kind == "deepseek" or host == "api.deepseek.com" or \
            host.endswith(".deepseek.com")

    def server_kind(self) -> str:
        """Which server this is: "deepseek" (DeepSeek's platform, by its host), "vllm",
        "sglang", "llama.cpp" (by /models `owned_by`, or `server=`), or "" when unknown."""
        if self._kind is None:
            if self._on_platform():
                self._kind = "deepseek"
            else:
                try:
                    owners = _owners(self._get_models())
                except DskitError:
                    return ""  # unknown for now: asked again next time (the chat says why)
                self._kind = next((OWNERS[o] for o in sorted(owners) if o in OWNERS), "")
        return self._kind

    def _controls(self, request: ChatRequest) -> _Controls:
        """How this request's thinking is switched, its effort and its budget go on the wire
        for this server (each field as the server's own docs give it; docs/thinking.md)."""
        plan, model = request.plan, request.model
        switch = plan.hybrid and plan.send_think is not None
        native = self._native_field(request)
        kind = self.server_kind() if switch or plan.effort is not None else ""
        out = _Controls(model=model, native=native)
        where = _display_url(self.base_url)
        name = model.lower().rsplit("/", 1)[-1]
        if name in PLATFORM_MODES and (self._kind == "deepseek" or self._on_platform()):
            raise ConfigurationError(
                f"model={model!r}: DeepSeek retired the names deepseek-chat and "
                "deepseek-reasoner on 2026-07-24 (its change log); use model='deepseek-v4-flash' "
                "or 'deepseek-v4-pro', with think=True or think=False to switch the thinking "
                "mode (and effort='high' or 'max' for more of it)")
        if switch and kind == "deepseek":
            # DeepSeek's platform: one model thinks or not per request, `thinking: {"type":
            # "enabled"|"disabled"}`, thinking by default (api-docs.deepseek.com/guides/
            # thinking_mode, "Thinking Mode Toggle").
            out.fields["thinking"] = {"type": "enabled" if plan.send_think else "disabled"}
        elif switch and kind in ("vllm", "sglang"):
            # DeepSeek-V3.1/V3.2's chat template reads `thinking` (vLLM docs, reasoning outputs:
            # "pass thinking=True in your chat_template_kwargs"; SGLang docs, reasoning parser:
            # "use the deepseek-v3 parser and thinking parameter (NOTE: not enable_thinking)").
            out.fields["chat_template_kwargs"] = {"thinking": plan.send_think}
        elif switch and kind == "llama.cpp":
            # llama.cpp's server passes `enable_thinking` to V3.1's template as `thinking`
            # (common/chat.cpp, common_chat_params_init_deepseek_v3_1); README: chat_template_kwargs
            # "For example: {"enable_thinking": false}".
            out.fields["chat_template_kwargs"] = {"enable_thinking": plan.send_think}
        elif switch:
            out.notes.append(
                f"think={plan.send_think} was not sent: dskit does not know how the server at "
                f"{where} switches a hybrid model's thinking; name it with ds.connect('openai', "
                "server='vllm' | 'sglang' | 'llama.cpp').")
        if plan.effort is not None:
            out.fields.update(self._effort_fields(request, kind))
        # Tool calls made while thinking carry their reasoning back on DeepSeek's platform,
        # which refuses the next request without it (thinking-mode guide: "if the model
        # performed a tool call, the intermediate assistant's reasoning_content ... must be
        # passed back to the API"). The host says it: no request needed.
        out.reasoning_back = self._on_platform()
        if native is not None:
            out.fields.update(native[2])
        return out

    def _effort_fields(self, request: ChatRequest, kind: str) -> dict[str, Any]:
        """The request's effort level as this server's field, or `EffortUnsupported`."""
        effort = request.plan.effort
        assert effort is not None
        where = _display_url(self.base_url)
        if kind == "deepseek":
            # `reasoning_effort`: "low", "high" or "max" (thinking-mode guide, "Thinking Effort
            # Control"); "medium" maps to "high" there, so it is not offered as its own level.
            if effort not in PLATFORM_EFFORTS:
                raise EffortUnsupported("DeepSeek's platform documents the levels low, high and "
                                        "max", effort, PLATFORM_EFFORTS)
            return {"reasoning_effort": effort}
        if kind in ("vllm", "sglang", "llama.cpp"):
            # These hand `reasoning_effort` to the model's chat template (vLLM's
            # ChatCompletionRequest; SGLang's thinking-budget docs, "chat-template hints";
            # llama.cpp's README), and DeepSeek-R1's and V3.1/V3.2's templates read no such
            # variable: a level would change nothing, so none is sent.
            raise EffortUnsupported(
                f"{request.model} on {where} ({kind}) has no effort levels: the server hands "
                "reasoning_effort to the chat template, and DeepSeek's R1 and V3.1/V3.2 "
                "templates read only whether the model thinks", effort)
        raise EffortUnsupported(f"dskit does not know an effort field of the server at {where} "
                                "(name it with ds.connect('openai', server=...))", effort)

    def _native_field(self, request: ChatRequest) -> tuple[str, str, dict[str, Any]] | None:
        """The server's own per-request thinking budget for this request, as (how the reply
        names it, field, body fields), or None where dskit's cut and continuation do it."""
        plan = request.plan
        if plan.budget is None or plan.think_min or not plan.think or self._native is False \
                or request.model in self._no_native:
            return None
        kind = self.server_kind()
        budget = plan.budget
        if kind == "vllm" and (self._native or self._native_works(kind)):
            # `thinking_token_budget`, a sampling parameter of the chat request (vLLM docs,
            # features/reasoning_outputs.md, "Thinking Budget Control"); needs the server's
            # --reasoning-parser (or --reasoning-config), else vLLM answers 400 naming it.
            return ("vLLM thinking_token_budget", "thinking_token_budget",
                    {"thinking_token_budget": budget})
        if kind == "sglang" and (self._native or self._native_works(kind)):
            # `custom_params: {"thinking_budget": N}` with the server's --enable-strict-thinking
            # (SGLang docs, advanced_features/thinking_budget; grammar_manager.py reads
            # sampling_params.custom_params["thinking_budget"]).
            return ("SGLang strict thinking, custom_params.thinking_budget", "thinking_budget",
                    {"custom_params": {"thinking_budget": budget}})
        if kind == "llama.cpp" and self._native:
            # `reasoning_budget_tokens` (tools/server/server-schema.cpp: "Number of tokens in
            # the reasoning budget (-1 = disabled)"; server-common.cpp passes it on for chat
            # completions). Not in the README and ignored by some builds: only when asked for.
            return ("llama.cpp reasoning_budget_tokens", "reasoning_budget_tokens",
                    {"reasoning_budget_tokens": budget})
        return None

    def _native_works(self, kind: str) -> bool:
        """Whether the server says its own budget works: vLLM's /version at least
        `VLLM_BUDGET_SINCE`; SGLang's /server_info with `enable_strict_thinking` on."""
        if self._native_ok is None:
            root = str(httpx.URL(self.base_url).copy_with(path="/"))
            path = "version" if kind == "vllm" else "server_info"
            ok = False
            with contextlib.suppress(httpx.HTTPError, ValueError, TypeError, InvalidVersion):
                r = self._client().get(f"{root}{path}", timeout=LIST_TIMEOUT)
                info = r.json() if r.status_code == 200 else {}
                if kind == "vllm":
                    ok = Version(str(info.get("version"))) >= VLLM_BUDGET_SINCE
                else:
                    ok = info.get("enable_strict_thinking") is True
            self._native_ok = ok
        return self._native_ok

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        """Stream a chat completion as `Delta`s then one `Done`.

        A `format` goes as `response_format`; a server that refuses it gets the request again
        without it (the schema is in the prompt and dskit validates the answer), and is not
        sent it again for that model. A thinking budget cuts the reasoning and continues the
        final assistant message (`_budgeted`). Read in a helper thread, so that
        `request.cancel` (`ChatStream.stop()`) ends it at once even while the server sends
        nothing.
        """
        if (request.plan.budget is not None or request.plan.think_min) and request.plan.think:
            native = self._native_field(request)
            events = self._budgeted(request) if native is None else \
                self._native_budgeted(request, native)
            yield from interruptible(events, request.cancel, self._event_limit(), self._stalled)
            return
        notes: list[str] = list(self._controls(request).notes)
        if request.format is not None and request.model not in self._no_response_format:
            try:
                for ev in self._interruptible(request):
                    if isinstance(ev, Done):
                        ev.notes.append("format: sent as response_format "
                                        f"({response_format(request.format)['type']}).")
                    yield ev
                return
            except BackendError as exc:
                if exc.status != 400 or not _refuses_response_format(str(exc)):
                    raise
                self._no_response_format.add(request.model)
                notes.append(f"format: the server refused response_format ({exc}); the schema "
                             "was asked for in the prompt and dskit validated the answer.")
        for ev in self._interruptible(request):
            if isinstance(ev, Done):
                ev.notes.extend(notes)
            yield ev

    def continuation(self) -> str | None:
        """How this server continues a final assistant message: "deepseek" (prefix completion
        on DeepSeek's platform), "vllm" (`continue_final_message`, vLLM and SGLang), or None."""
        if self._continuation is None:
            # An unknown server cannot be asked: `server_kind` is "" for it.
            self._continuation = {"deepseek": "deepseek", "vllm": "vllm",
                                  "sglang": "vllm"}.get(self.server_kind(), "")
        return self._continuation or None

    def _budgeted(self, request: ChatRequest, fallback: Sequence[str] = ()) -> Iterator[Event]:
        """Reasoning cut at the plan's budget, then the answer continuing a final assistant
        message that holds the reasoning, a wrap-up line and `</think>`; reasoning that ends
        before the plan's `think_min` continues a final assistant message holding it and the
        extension word.

        Servers send about one token per delta, so reasoning deltas are counted as tokens.
        """
        where = _display_url(self.base_url)
        plan = request.plan
        setting = "think_budget" if plan.budget is not None else "think_min"
        mode = self._mode(setting)
        budget = plan.budget
        cut = BudgetCut(budget, request.messages, plan)
        notes = [*self._controls(request).notes, *fallback]
        t0 = time.perf_counter()
        if budget != 0:
            extend = self._extension(request, mode, setting) if plan.think_min else None
            for ev in cut.stream(self._events(request, self._body(request), self.base_url),
                                 extend):
                if isinstance(ev, Done):
                    ev.notes.extend(notes)
                    if cut.inline:
                        ev.notes.append(f"{where} sent the reasoning inline, not apart, so "
                                        f"{setting} could not {'cut' if budget else 'extend'} "
                                        "it.")
                yield ev
            if not cut.cut or request.cancel.is_set():
                return
            yield cut.wrap_up()
        seconds = time.perf_counter() - t0
        for ev in self._closed(request, cut, mode, setting):
            if isinstance(ev, Done):
                ev = cut.done(ev, seconds)
                ev.notes.extend(notes)
            yield ev

    def _native_budgeted(self, request: ChatRequest, native: tuple[str, str, dict[str, Any]]
                         ) -> Iterator[Event]:
        """The reply with the server's own thinking budget in the request (`_native_field`).

        A server that refuses the field (an error naming it, before anything streamed) gets
        the request again the dskit way (`_budgeted`), with a note, and is not sent the field
        again for that model. One that ignores it without a word is caught when the reasoning
        runs `NATIVE_SLACK` pieces past the budget: dskit cuts it there and continues it, when
        this server can continue a final assistant message.
        """
        how, field, _ = native
        plan = request.plan
        budget = plan.budget
        assert budget is not None
        mode = self.continuation()
        watch = BudgetCut(budget + NATIVE_SLACK if mode else None, request.messages)
        notes = self._controls(request).notes
        t0 = time.perf_counter()
        try:
            for ev in watch.stream(self._events(request, self._body(request), self.base_url)):
                if isinstance(ev, Done):
                    thought = ev.stats.thinking_tokens or len(watch.pieces)
                    ev.budget_hit = budget == 0 or thought >= budget
                    ev.notes.extend([*notes, native_budget_note(budget, how)])
                    if len(watch.pieces) > budget + NATIVE_SLACK:
                        self._no_native.add(request.model)
                        ev.notes.append(f"{how}: the server sent {len(watch.pieces)} pieces of "
                                        "reasoning, so it does not enforce its budget here; "
                                        "dskit will not send it again.")
                yield ev
        except BackendError as exc:
            if isinstance(exc, StreamInterrupted) or field not in str(exc) or watch.pieces:
                raise
            # Refused (vLLM without --reasoning-parser: "thinking_token_budget is set but
            # reasoning_config is not configured"): dskit's own cut and continuation.
            self._no_native.add(request.model)
            yield from self._budgeted(request, [native_fallback_note(budget, how, str(exc))])
            return
        if not watch.cut or request.cancel.is_set():
            return
        # Ignored without a word: cut where it was noticed, continued the dskit way.
        self._no_native.add(request.model)
        yield watch.wrap_up()
        seconds = time.perf_counter() - t0
        for ev in self._closed(request, watch, mode or "", "think_budget"):
            if isinstance(ev, Done):
                ev = watch.done(ev, seconds)
                ev.notes.extend([*notes, native_fallback_note(
                    budget, how, f"more than {budget + NATIVE_SLACK} pieces of reasoning arrived,"
                    " so it ignores the field")])
            yield ev

    def _mode(self, setting: str = "think_budget") -> str:
        """How this server continues a final assistant message, or the typed error."""
        mode = self.continuation()
        if mode is None:
            raise BudgetUnsupported(
                f"the OpenAI-compatible server at {_display_url(self.base_url)} offers neither "
                "vLLM's continue_final_message nor DeepSeek's prefix completion", setting)
        return mode

    def _closed(self, request: ChatRequest, cut: BudgetCut, mode: str, setting: str
                ) -> Iterator[Event]:
        """The answer after `cut` (a budget's or a checkpoint's): a final assistant message
        holding its reasoning, closed, continued."""
        thought = cut.reasoning() if cut.budget else ""
        body = self._body(request)
        body["max_tokens"] = max(1, request.options.max_tokens - len(cut.pieces))
        url = self._continued(request, body, mode, thought, closed=True)
        for ev in self._continuing(request, body, url, setting):
            # After `</think>` everything is the answer, whatever field a parser put it in.
            yield ev if isinstance(ev, Done) else Delta("answer", ev.text, ev.tokens)

    def _continued(self, request: ChatRequest, body: dict[str, Any], mode: str, thought: str,
                   closed: bool) -> str:
        """Put the final assistant message holding `thought` (closed with `</think>`, or open
        to go on) into `body`; the API root to send it to."""
        if mode == "deepseek":
            body["messages"] = [*request.messages, {"role": "assistant", "content": "",
                                                    "reasoning_content": thought,
                                                    "prefix": True}]
            return str(httpx.URL(self.base_url).copy_with(path="/beta"))
        content = f"{THINK_PREFIX}{thought}" + (CLOSE if closed else "")
        if closed and not thought:
            content = EMPTY_THINK
        body["messages"] = [*request.messages, {"role": "assistant", "content": content}]
        body["continue_final_message"], body["add_generation_prompt"] = True, False
        return self.base_url

    def _extension(self, request: ChatRequest, mode: str, setting: str
                   ) -> Callable[[str, int], Iterator[Event]]:
        """How reasoning closed before `think_min` goes on: the final assistant message holds
        the reasoning so far, ending in the extension word, and the server continues it."""

        def extend(reasoning: str, thought: int) -> Iterator[Event]:
            body = self._body(request)
            body["max_tokens"] = max(1, request.options.max_tokens - thought)
            url = self._continued(request, body, mode, reasoning, closed=False)
            return self._continuing(request, body, url, setting)

        return extend

    def _continuing(self, request: ChatRequest, body: dict[str, Any], url: str, setting: str
                    ) -> Iterator[Event]:
        """The events of a continued final assistant message."""
        try:
            yield from self._events(request, body, url)
        except BackendError as exc:
            if exc.status == 400 and "continue_final_message" in str(exc):
                # transformers refuses when the template rewrites the last assistant turn (the
                # R1 distills' templates drop everything before `</think>`).
                raise BudgetUnsupported(
                    f"{_display_url(self.base_url)} could not continue the reasoning ({exc}): "
                    "this model's chat template rewrites the final assistant message",
                    setting) from exc
            raise

    def trace(self, request: ChatRequest) -> ServerTrace:
        """Early exits: the reply once, then each checkpoint's answer continuing a final
        assistant message that holds the reasoning so far (vLLM and SGLang reuse the cached
        prefix with prefix caching on; DeepSeek's platform caches prompts on disk)."""
        mode = self._mode("exit_at")

        def answer(cut: BudgetCut, cancel: Any) -> Iterator[Event]:
            part = replace(request, cancel=cancel)
            return interruptible(self._closed(part, cut, mode, "exit_at"), cancel,
                                 self._event_limit(), self._stalled)

        return ServerTrace(request, lambda: self.stream(request), answer)

    def _interruptible(self, request: ChatRequest) -> Iterator[Event]:
        yield from interruptible(self._events(request, self._body(request), self.base_url),
                                 request.cancel, self._event_limit(), self._stalled)

    def _event_limit(self) -> float:
        """Seconds without an event before the reply counts as stalled: a little over the
        read's idle limit, so a silent server is caught by the read (and says so) and one
        that sends only keep-alive comments by this."""
        return self.idle_timeout + max(1.0, self.idle_timeout / 10)

    def _stalled(self) -> StreamInterrupted:
        """No event for the idle limit (keep-alive comments alone do not count)."""
        return StreamInterrupted(
            f"{_display_url(self.base_url)} sent no event for {self._event_limit():g} s (the idle "
            "limit; keep-alive comments do not count): the server is stalled or overloaded. "
            "Raise the limit with idle_timeout=… or DSKIT_IDLE_TIMEOUT")

    def _events(self, request: ChatRequest, body: dict[str, Any], base: str
                ) -> Iterator[Event]:
        """POST `body` to `{base}/chat/completions` and stream its events."""
        cancel = request.cancel
        calls: dict[int, dict[str, Any]] = {}
        started = False
        reasoning_seen = False
        finish: str | None = None
        usage: dict[str, Any] | None = None
        deltas = 0
        first: float | None = None
        last: float | None = None
        got_done = False
        held: tuple[Token, ...] = ()
        try:
            with connect_sse(self._client(), "POST", f"{base}/chat/completions",
                             json=body) as source:
                response = source.response
                forget = cancel.on_cancel(shutdown(response))
                try:
                    if response.status_code >= 400:
                        response.read()
                        raise self._status_error(response, request.model)
                    if "text/event-stream" not in response.headers.get("content-type", ""):
                        # Some servers and proxies ignore stream=True and answer in one body.
                        response.read()
                        yield from self._whole_reply(response)
                        return
                    started = True
                    for sse in source.iter_sse():
                        data = sse.data.strip()
                        if data == "[DONE]":
                            got_done = True
                            break
                        if not data:
                            continue
                        if sse.event == "error":
                            raise StreamInterrupted(
                                f"the server reported an error mid-stream: "
                                f"{_error_message(data)}")
                        chunk = _parse_chunk(data)
                        if chunk.get("error"):
                            raise StreamInterrupted(
                                f"the server reported an error mid-stream: "
                                f"{_error_message(data)}")
                        try:
                            parts, chunk_usage, chunk_finish, tokens = _read_chunk(
                                chunk, reasoning_seen, calls)
                        except ValueError as why:  # from _typed: a field of the wrong type
                            raise StreamInterrupted(
                                f"the server sent a malformed event ({why}): {clip(data, 200)!r}"
                            ) from None
                        usage = chunk_usage or usage
                        finish = chunk_finish or finish
                        held += tokens  # they go out with the next text
                        for kind, text in parts:
                            reasoning_seen = reasoning_seen or kind == "thinking"
                            now = time.perf_counter()
                            first = first if first is not None else now
                            last = now
                            deltas += 1
                            yield Delta(kind, text, held)
                            held = ()
                finally:
                    forget()
        except (httpx.HTTPError, SSEError) as exc:
            if cancel.is_set():
                return  # stopped: the read failed because its socket was shut down
            # Never chained: a library's message may quote what the server sent.
            raise self._translate(exc, started=started) from None
        if cancel.is_set():
            return
        if not got_done and finish is None:
            # A clean close without [DONE] or finish_reason is a server that died mid-reply.
            raise StreamInterrupted(
                f"the stream from {_display_url(self.base_url)} ended before the reply finished")
        yield Done(stats=_stats(usage, deltas, first, last), done_reason=finish, prefixed=False,
                   tool_calls=_tool_requests(calls))

    def _whole_reply(self, response: httpx.Response) -> list[Event]:
        """Events from a non-streamed chat completion body."""
        try:
            data = json.loads(_read_text(response))
        except (ValueError, RecursionError) as exc:
            raise BackendError(f"{_display_url(self.base_url)} answered neither SSE nor JSON: "
                               f"is base_url an OpenAI-compatible API root? ({exc})") from None
        if not isinstance(data, dict) or data.get("error"):
            raise BackendError(f"{_display_url(self.base_url)} answered with an error: "
                               f"{_error_message(_read_text(response))}")
        try:
            choices = _typed(data, "choices", list) or [{}]
            choice = choices[0] if isinstance(choices[0], dict) else {}
            message = _typed(choice, "message", dict) or {}
            parts = _delta_parts(message, False)
            tokens = _choice_tokens(choice)
            done_reason = _typed(choice, "finish_reason", str)
            usage = _typed(data, "usage", dict)
            calls: dict[int, dict[str, Any]] = {}
            _add_tool_deltas(calls, _typed(message, "tool_calls", list))
        except ValueError as why:  # from _typed: a field of the wrong type
            raise BackendError(f"{_display_url(self.base_url)} answered in a shape dskit cannot "
                               f"read ({why})") from None
        events: list[Event] = [Delta(k, t, tokens if i == 0 else ())
                               for i, (k, t) in enumerate(parts)]
        return [*events, Done(stats=_stats(usage, 0, None, None),
                              done_reason=done_reason, prefixed=False,
                              tool_calls=_tool_requests(calls))]

    def reasoning_support(self) -> ReasoningSupport:
        """Chat completions have no portable think switch; the server decides.

        A server that takes `response_format` with a reasoning model (vLLM and SGLang with a
        reasoning parser, Ollama's /v1 >= 0.12.4, `dskit serve`) applies it to the answer only.
        """
        # A hybrid model's thinking is switched per request where the server is known
        # (`_controls`); elsewhere the reply says the switch was not sent.
        return ReasoningSupport(format_after_reasoning=True, hybrid_switch=True)

    def list_models(self) -> list[str]:
        """Model ids from GET {base}/models."""
        items = self._get_models()
        # Names come from the server: shown in reports, they must not show a secret either.
        return [redact(str(m["id"])) for m in items if isinstance(m, dict) and m.get("id")]

    def _get_models(self) -> list[Any]:
        """The items of GET {base}/models."""
        try:
            response = self._client().get(f"{self.base_url}/models", timeout=LIST_TIMEOUT)
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        if response.status_code >= 400:
            raise self._status_error(response, None)
        try:
            data = response.json()
        except ValueError as exc:
            raise BackendError(
                f"{_display_url(self.base_url)}/models did not return JSON: is base_url an "
                "OpenAI-compatible API root (usually ending in /v1)?") from exc
        items = data.get("data") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise BackendError(f"{_display_url(self.base_url)}/models answered in a shape dskit "
                               "cannot read (no list of models)")
        return list(items)

    def model_details(self, model: str) -> dict[str, Any]:
        """Only what the id says: DeepSeek's `deepseek-reasoner` alias is a reasoning model."""
        # There is no portable /api/show; names like deepseek-r1 are recognised by the caller.
        return {"reasoning": True} if "reasoner" in model.lower() else {}

    def describe(self) -> dict[str, Any]:
        """Where the server is, whether a key is set, and its models when reachable."""
        info: dict[str, Any] = {
            "backend": self.name,
            "base_url": _display_url(self.base_url),
            "api_key": "set" if self._api_key else "not set",
        }
        try:
            info["models"] = self.list_models()
        except DskitError as exc:
            info["error"] = str(exc)
        return info

    @property
    def default_model(self) -> str:
        """The given model, else DSKIT_MODEL, else the server's first model, else R1's alias."""
        if self._model:
            return self._model
        if config.model():
            return str(config.model())
        if self._listed_default is None:
            try:
                models = self.list_models()
            except (BackendError, BackendUnavailable):
                # An unreachable server surfaces on the first chat; a name must still exist.
                return FALLBACK_MODEL
            self._listed_default = models[0] if models else FALLBACK_MODEL
        return self._listed_default


# -- helpers -------------------------------------------------------------------------------------

def response_format(fmt: str | dict[str, Any]) -> dict[str, Any]:
    """OpenAI's `response_format` for "json" or a JSON schema."""
    if isinstance(fmt, dict):
        name = re.sub(r"[^A-Za-z0-9_-]", "_", str(fmt.get("title") or "answer"))[:64]
        return {"type": "json_schema", "json_schema": {"name": name, "schema": fmt}}
    return {"type": "json_object"}


def _refuses_response_format(message: str) -> bool:
    """Whether a 400 says the server does not take `response_format` (DeepSeek's reasoner,
    older servers) rather than something else being wrong."""
    m = message.lower()
    return any(w in m for w in ("response_format", "response format", "json_schema",
                                "json_object", "json schema"))


@dataclass
class _Controls:
    """A request's thinking switch, effort and budget as one server takes them."""

    model: str
    #: Fields for the body (`chat_template_kwargs`, `thinking`, `reasoning_effort`, ...).
    fields: dict[str, Any] = field(default_factory=dict)
    #: What the reply should say about them.
    notes: list[str] = field(default_factory=list)
    #: Send a tool-calling turn's reasoning back as `reasoning_content` (DeepSeek's platform).
    reasoning_back: bool = False
    #: The server's own budget: (how the reply names it, its field, body fields), or None.
    native: tuple[str, str, dict[str, Any]] | None = None


def openai_messages(messages: list[dict[str, Any]], reasoning_back: bool = False
                    ) -> list[dict[str, Any]]:
    """dskit's messages in OpenAI's shape (`tool_calls` with JSON-string arguments); with
    `reasoning_back`, an assistant turn that called tools keeps its reasoning as
    `reasoning_content` (DeepSeek's thinking mode with tools needs it back)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        msg: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        if reasoning_back and m["role"] == "assistant" and m.get("tool_calls") and \
                isinstance(m.get("thinking"), str):
            msg["reasoning_content"] = m["thinking"]
        if m.get("tool_calls"):
            msg["tool_calls"] = [
                {"id": c.get("id") or f"call_{i}", "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]
                              if isinstance(c["arguments"], str)
                              else json.dumps(c["arguments"], ensure_ascii=False)}}
                for i, c in enumerate(m["tool_calls"])]
        if m["role"] == "tool":
            msg["tool_call_id"] = m.get("tool_call_id", "")
        out.append(msg)
    return out


def _add_tool_deltas(calls: dict[int, dict[str, Any]], deltas: Any) -> None:
    """Accumulate streamed `tool_calls` pieces by index (names and arguments come in parts)."""
    for i, piece in enumerate(deltas or []):
        if not isinstance(piece, dict):
            continue
        index = piece.get("index", i)
        call = calls.setdefault(index if isinstance(index, int) else i,
                                {"id": "", "name": "", "arguments": ""})
        call["id"] = str(piece.get("id") or call["id"])
        function = piece.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name")
        call["name"] += name if isinstance(name, str) else ""
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call["arguments"] += arguments
        elif isinstance(arguments, dict):
            call["arguments"] = json.dumps(arguments)


def _tool_requests(calls: dict[int, dict[str, Any]]) -> list[ToolRequest]:
    return [ToolRequest(c["name"], decode_arguments(c["arguments"]), c["id"])
            for _, c in sorted(calls.items())]

def _read_text(response: httpx.Response) -> str:
    """The body of an error response, tolerating undecodable bytes."""
    try:
        return response.text
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""


def _error_message(text: str) -> str:
    """The human message in an OpenAI-style error body, else the body itself (shortened)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return clip(text.strip(), 500)
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if err.get(key):
                    return str(err[key])
        elif isinstance(err, str):
            return err
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
    return clip(text.strip(), 500)


def _owners(items: list[Any]) -> set[str]:
    """The `owned_by` values of /models items (vLLM and SGLang name themselves there)."""
    return {str(m.get("owned_by", "")).lower() for m in items if isinstance(m, dict)}


def _is_model_missing(message: str) -> bool:
    """Whether an error message says the model does not exist (vLLM, Ollama, DeepSeek, OpenAI)."""
    m = message.lower()
    return "model" in m and any(w in m for w in ("not found", "not exist", "does not exist",
                                                 "no such", "unknown", "not available"))


def _retry_after(value: str) -> str:
    """A Retry-After header as words ("30 s", a date), or "" when it is neither (a server
    may put anything in a header; only these two forms are shown)."""
    value = value.strip()
    if re.fullmatch(r"\d{1,7}", value):
        return f"{int(value)} s"
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return ""
    return when.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _typed(obj: dict[str, Any], key: str, kind: type) -> Any:
    """`obj[key]`, None when absent or null; ValueError when it is not a `kind`."""
    value = obj.get(key)
    if value is not None and (not isinstance(value, kind) or (isinstance(value, bool)
                              and kind is not bool)):
        raise ValueError(f'"{key}" is {type(value).__name__}, not {kind.__name__}')
    return value


def _parse_chunk(data: str) -> dict[str, Any]:
    """Decode one SSE data payload; a payload that is not a JSON object is a protocol error."""
    try:
        chunk = json.loads(data)
    except (ValueError, RecursionError):
        chunk = None
    if not isinstance(chunk, dict):
        raise StreamInterrupted(f"the server sent a malformed event: {clip(data, 200)!r}") from None
    return chunk


Kind = Literal["thinking", "answer", "raw"]


def _read_chunk(chunk: dict[str, Any], reasoning_seen: bool, calls: dict[int, dict[str, Any]]
                ) -> tuple[list[tuple[Kind, str]], dict[str, Any] | None, str | None,
                           tuple[Token, ...]]:
    """A chunk's text pieces, usage, finish reason and tokens' log-probabilities (its tool-call
    pieces go into `calls`); ValueError for a wrongly typed field."""
    usage = _typed(chunk, "usage", dict)
    parts: list[tuple[Kind, str]] = []
    finish: str | None = None
    tokens: tuple[Token, ...] = ()
    for choice in _typed(chunk, "choices", list) or []:
        if not isinstance(choice, dict):
            raise ValueError("a choice is not an object")
        if _typed(choice, "index", int) not in (None, 0):
            continue
        delta = _typed(choice, "delta", dict) or {}
        parts += _delta_parts(delta, reasoning_seen)
        _add_tool_deltas(calls, _typed(delta, "tool_calls", list))
        reasoning_seen = reasoning_seen or any(k == "thinking" for k, _ in parts)
        finish = _typed(choice, "finish_reason", str) or finish
        tokens += _choice_tokens(choice)
    return parts, usage, finish, tokens


def _choice_tokens(choice: dict[str, Any]) -> tuple[Token, ...]:
    """A choice's `logprobs.content` (and `logprobs.reasoning_content`, where a server keeps a
    reasoning's tokens apart) as `Token`s; ValueError for a malformed one."""
    logprobs = _typed(choice, "logprobs", dict) or {}
    out: list[Token] = []
    for key in ("reasoning_content", "content"):
        out += [token_from_dict(entry) for entry in _typed(logprobs, key, list) or []]
    return tuple(out)


def _delta_parts(delta: dict[str, Any], reasoning_seen: bool) -> list[tuple[Kind, str]]:
    """Split one delta into (kind, text) pieces; kind is thinking, answer or raw."""
    parts: list[tuple[Kind, str]] = []
    for key in REASONING_FIELDS:
        value = _typed(delta, key, str)
        # Only real text counts: an empty field may sit next to content with inline <think>.
        if value:
            parts.append(("thinking", value))
            reasoning_seen = True
            break
    content = _typed(delta, "content", str)
    if content:
        # Without a reasoning field the content may hold inline <think> tags: let chat split it.
        parts.append(("answer" if reasoning_seen else "raw", content))
    return parts


def _stats(usage: dict[str, Any] | None, deltas: int, first: float | None,
           last: float | None) -> Stats:
    """Stats from the server's usage block and our own clock."""
    stats = Stats()
    if first is not None and last is not None:
        stats.eval_time = last - first
    usage = usage or {}
    if isinstance(usage.get("prompt_tokens"), int):
        stats.prompt_tokens = usage["prompt_tokens"]
    completion = usage.get("completion_tokens")
    if isinstance(completion, int):
        stats.eval_tokens = completion
        details = usage.get("completion_tokens_details") or {}
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        if isinstance(reasoning, int) and reasoning > 0:
            stats.thinking_tokens = reasoning
            stats.answer_tokens = max(completion - reasoning, 0)
    elif deltas:
        # No usage reported: servers send about one token per delta, close enough for tok/s.
        stats.eval_tokens = deltas
    return stats
