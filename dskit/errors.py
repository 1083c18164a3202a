"""Every error dskit raises on purpose, in one hierarchy; each message says what to do.

    DskitError
    ├── ConfigurationError (ValueError)       a setting or argument is wrong
    │   ├── BudgetUnsupported                 this server or model cannot cap reasoning
    │   ├── EffortUnsupported                 this server or model takes no such effort level
    │   ├── LogprobsUnsupported               this server cannot return log-probabilities
    │   └── ToolsNotSupported                 the model cannot call tools on this server
    ├── StructuredOutputError (ValueError)    the reply is not JSON matching the schema
    ├── KnowledgeBaseError (ValueError)       a knowledge-base operation cannot be done as asked
    │   └── KnowledgeBaseBusy (TimeoutError)  another process holds its write lock
    ├── LoadError (ValueError)                a file could not be turned into text
    ├── DataFileError (ValueError)            a file dskit keeps (the arena's votes) is unreadable
    ├── EmbeddingError (ValueError)           an embedding model is unsuitable or failed
    ├── ModelNotFound (LookupError)           the backend does not have the model
    ├── ModelFileError                        a model's files are missing or corrupt
    ├── InsufficientResources                 a model does not fit this machine
    ├── ComparisonFailed                      every call of a comparison failed
    ├── McpServerError (RuntimeError)         an MCP server did not start, stopped, or failed a call
    ├── BackendUnavailable (ConnectionError)  no backend can be reached or loaded
    │   └── OllamaNotRunning
    └── BackendError (RuntimeError)           the backend answered with an error
        ├── AuthenticationError               HTTP 401/403
        ├── RateLimited                       HTTP 429
        ├── ServerError                       HTTP 5xx
        └── StreamInterrupted                 a stream broke off; `.partial` keeps what arrived

    OutdatedIndexWarning (UserWarning)        a knowledge base was embedded by an older engine

The HTTP server (`dskit.serve`) keeps its wire-level `ApiError` in `dskit.serve.errors`.

Messages often quote what a server said, and a server may echo an API key back. Every
message passes through one place, `DskitError.__init__`, which replaces each secret dskit
knows (`register_secret`: the API keys and tokens it has read; those set in the environment)
in any of its encodings, and secrets by their shape (URL credentials, `Bearer`/`Basic` values,
`sk-` keys), with `***` (`redact`).
"""

from __future__ import annotations

import base64
import functools
import html
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .reply import Reply


#: Secrets dskit has read (API keys, tokens); no error message shows them.
_SECRETS: set[str] = set()
#: Shorter values are not redacted: replacing them would garble ordinary words.
MIN_SECRET = 8


def register_secret(value: str | None) -> None:
    """Remember a secret so that no dskit error message can show it."""
    if value and len(value) >= MIN_SECRET:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """`text` with every secret replaced by `***`: the secrets dskit read or that are set in
    the environment, also upper- or lower-cased, `\\u`-escaped, HTML-escaped, base64-encoded
    or split by a line break; and by shape, credentials in a URL (`user:password@`), the
    value after `Bearer` or `Basic`, and `sk-...` API keys."""
    for pattern in _patterns(frozenset(_SECRETS | _env_secrets())):
        text = pattern.sub("***", text)
    for shape, replacement in _SHAPES:
        text = shape.sub(replacement, text)
    return text


def _env_secrets() -> set[str]:
    from . import config  # the one reader of the environment (same layer)

    return {v for v in config.secret_values() if len(v) >= MIN_SECRET}


#: Secrets by their shape, whoever set them (a URL's password, a header, a platform's key).
_SHAPES = (
    (re.compile(r"(?<=://)[^/@\s]+@"), "***@"),  # user:password@ (or a token as the user)
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "sk-***"),
)


@functools.lru_cache(maxsize=8)
def _patterns(secrets: frozenset[str]) -> list[re.Pattern[str]]:
    """One pattern per secret, longest first, matching each of its forms."""
    out = []
    for secret in sorted(secrets, key=len, reverse=True):
        chars = []
        for ch in secret:
            forms = {ch, ch.upper(), ch.lower(), html.escape(ch), f"&#{ord(ch)};",
                     f"&#x{ord(ch):x};", f"\\u{ord(ch):04x}", f"\\u{ord(ch):04X}"}
            alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
            chars.append(f"(?:\\\\)?(?:{alternatives})")  # a backslash escape before any
        whole = r"(?:\\?\r?\n)?".join(chars)  # split by a line break anywhere
        encoded = {base64.b64encode(secret.encode()).decode().rstrip("="),
                   base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")}
        out.append(re.compile("|".join([whole, *map(re.escape, sorted(encoded))])))
    return out


def clip(text: str, limit: int) -> str:
    """A server's `text` shortened to at most `limit` characters, secrets replaced first (a cut
    through a key would leave its first characters, which `redact` can no longer recognise).
    A cut ends at a word boundary where one is near and says so with "…"."""
    text = redact(text)
    if len(text) <= limit:
        return text
    cut = text[:max(0, limit - 1)]
    space = cut.rfind(" ")
    if space >= limit * 0.6:  # not for text without spaces (Chinese), nor a far-back one
        cut = cut[:space]
    return cut.rstrip() + "…"


class DskitError(Exception):
    """Base class of every error dskit raises on purpose; its message never shows a secret."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigurationError(DskitError, ValueError):
    """A setting or argument is wrong; the message names the right one."""


class BudgetUnsupported(ConfigurationError):
    """A thinking budget (or minimum) cannot be carried out here; the message says why and what
    to use."""

    def __init__(self, why: str, setting: str = "think_budget") -> None:
        if setting == "exit_at":
            super().__init__(
                f"{why}, so it cannot close one trace's reasoning at checkpoints (exit_at). Use "
                "a backend that can continue a reasoning: the embedded one, Ollama, vLLM or "
                "DeepSeek's platform.")
            return
        if setting == "think_min":  # the other half of budget forcing: extending reasoning
            super().__init__(
                f"{why}, so it cannot extend reasoning to a thinking minimum (think_min). Leave "
                "think_min out, or use a backend that can: the embedded one, Ollama, vLLM or "
                "DeepSeek's platform.")
            return
        super().__init__(
            f"{why}, so it cannot cap reasoning at a thinking budget (think_budget). Cap the "
            "whole reply with max_tokens instead (the reasoning then has no answer if it runs "
            "that long), or use a backend that can: the embedded one, Ollama, vLLM or DeepSeek's "
            "platform.")


class EffortUnsupported(ConfigurationError):
    """An effort level (`effort=`) cannot be sent here; the message names the levels this server
    and model take, or where effort levels exist."""

    def __init__(self, why: str, effort: str, available: tuple[str, ...] = ()) -> None:
        self.effort, self.available = effort, available
        fix = (f"Choose one of {', '.join(map(repr, available))}" if available else
               "Leave effort out (think_budget=N caps the reasoning on every backend)")
        super().__init__(
            f"effort={effort!r}: {why}. {fix}; DeepSeek's platform takes effort='low', 'high' "
            "or 'max' (reasoning_effort), see docs/thinking.md for each server.")


class LogprobsUnsupported(ConfigurationError):
    """Token log-probabilities (`logprobs=True`) cannot be had here; the message says why and
    what to use."""

    def __init__(self, why: str) -> None:
        super().__init__(
            f"{why}, so it cannot return token log-probabilities (logprobs=True). Leave "
            "logprobs out, or use a backend that returns them: the embedded one, Ollama 0.12.11 "
            "or later, or an OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, "
            "DeepSeek's platform without thinking).")


class ToolsNotSupported(ConfigurationError):
    """The model's server does not report tool support; the message names models that have it."""

    def __init__(self, model: str, where: str, detail: str = "") -> None:
        self.model = model
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"{model} cannot call tools on {where}{why}. Use a model whose server lists the "
            "`tools` capability (`ollama show <model>`): Qwen3 (`qwen3:8b`), Qwen2.5 "
            "(`qwen2.5:7b`), Llama 3.1, or a DeepSeek-R1-0528 tag whose template has tool "
            "support; the original DeepSeek-R1 distills (deepseek-r1:1.5b … 70b) have none, "
            "although Ollama's library page lists `tools` for the family. Without tools, ask "
            "for the data with `format=` instead. On the embedded backend, "
            "qwen2.5-coder:0.5b calls tools."
        )


class StructuredOutputError(DskitError, ValueError):
    """The reply did not validate against the requested format.

    `raw` is the text the model gave (after `retries` more attempts), `errors` the validation
    messages, `reply` the last `Reply` (reasoning, stats) when there was one.
    """

    def __init__(self, raw: str, errors: list[str], attempts: int = 1,
                 reply: Reply | None = None) -> None:
        self.raw = raw
        self.errors = list(errors)
        self.attempts = attempts
        self.reply = reply
        shown = raw if len(raw) <= 300 else raw[:300] + "…"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(
            f"the reply is not valid for the requested format{tries}: "
            f"{'; '.join(self.errors) or 'no JSON found'}. Raw text: {shown!r}. Pass "
            "retries=n to ask again with the errors shown to the model, raise max_tokens if "
            "the JSON was cut off, or simplify the schema."
        )


class KnowledgeBaseError(DskitError, ValueError):
    """A knowledge-base operation cannot be done as asked; the message says how."""


class KnowledgeBaseBusy(KnowledgeBaseError, TimeoutError):
    """Another process holds the knowledge base's write lock."""


class LoadError(DskitError, ValueError):
    """A file could not be turned into text; `status` is `skipped` or `failed`."""

    def __init__(self, reason: str, status: str = "failed") -> None:
        self.status = status
        super().__init__(reason)


class DataFileError(DskitError, ValueError):
    """A file dskit keeps is unreadable (not the format, cut, damaged); the message names the
    file and how to start over."""


class EmbeddingError(DskitError, ValueError):
    """The embedding model is unsuitable or failed; the message says which to use instead."""


class ModelNotFound(DskitError, LookupError):
    """The backend does not have the requested model."""

    def __init__(self, model: str, backend: str, available: list[str] | None = None,
                 hint: str = "") -> None:
        self.model = model
        self.backend = backend
        self.available = list(available or [])
        if not hint and backend == "ollama":
            hint = f"pull it first: `ds.models.pull('{model}')` or `ollama pull {model}`"
        have = ", ".join(self.available) if self.available else "none"
        super().__init__(
            f"model {model!r} is not available on the {backend} backend: {hint}. "
            f"Available: {have}."
        )


class ModelFileError(DskitError):
    """A model's files are missing or corrupt."""


class InsufficientResources(DskitError):
    """A model does not fit this machine (disk or memory); the message says what to do."""

    def __init__(self, message: str, shortages: list[dict[str, Any]]) -> None:
        #: One dict per shortage: resource ("disk" or "memory"), needed, available (bytes).
        self.shortages = shortages
        super().__init__(message)


class ComparisonFailed(DskitError):
    """Every call of a comparison failed; `rows` holds them, each with its error."""

    def __init__(self, message: str, rows: Any = None) -> None:
        self.rows = rows
        super().__init__(message)


class McpServerError(DskitError, RuntimeError):
    """An MCP server given in `tools=` could not be started or reached, stopped, or answered a
    call with an error; the message names the server, has its last output where there is one,
    and says what to do. Raised when a reply begins; during the tool loop it becomes the call's
    error, for the model to read."""


class BackendUnavailable(DskitError, ConnectionError):
    """No backend can be reached or loaded."""


class OllamaNotRunning(BackendUnavailable):
    """Ollama does not answer at the configured host."""

    def __init__(self, host: str, detail: str = "") -> None:
        self.host = host
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"Ollama is not running at {host}{why}: start it with `ollama serve` "
            "(or `systemctl start ollama`), or set OLLAMA_HOST to where it runs. "
            "Without Ollama, use the embedded backend: "
            "`pip install 'dskit[embedded]'` then `ds.connect('embedded')`."
        )


class BackendError(DskitError, RuntimeError):
    """The backend answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class AuthenticationError(BackendError):
    """The server refused the API key (HTTP 401/403)."""


class RateLimited(BackendError):
    """The server asked us to slow down (HTTP 429)."""


class ServerError(BackendError):
    """The server failed (HTTP 5xx)."""


class StreamInterrupted(BackendError):
    """A stream broke off; `partial` holds the reply received before the break.

    Backends raise it with `partial=None`; the chat layer fills in the partial reply.
    """

    def __init__(self, message: str, partial: Reply | None = None,
                 status: int | None = None) -> None:
        self.partial = partial
        super().__init__(message, status)


class OutdatedIndexWarning(UserWarning):
    """A knowledge base was embedded by an older engine; the message gives the one-line rebuild."""
