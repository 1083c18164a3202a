"""`connect()`: pick a backend (Ollama, OpenAI-compatible, embedded) and wrap it in a `Client`."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Literal, overload

from . import config, sysinfo
from .backends.base import Backend, LocalModels
from .backends.embedded import EmbeddedBackend
from .backends.ollama import OllamaBackend, resolve_host
from .backends.openai import OpenAIBackend
from .errors import BackendUnavailable, ConfigurationError, OllamaNotRunning
from .reasoning.plan import Traits, detect_traits

if TYPE_CHECKING:
    from .conversation.session import Conversation
    from .conversation.stream import ChatStream
    from .reply import Reply

BACKENDS = config.BACKENDS

_lock = threading.Lock()
_default: Client | None = None


class Client:
    """A connected backend with chat helpers; `ds.connect()` returns one."""

    def __init__(self, backend: Backend, reason: str = "") -> None:
        self.backend = backend
        self.reason = reason  # why this backend was chosen, for doctor()
        self._traits: dict[str, Traits] = {}

    @property
    def name(self) -> str:
        """The backend's name: ollama, openai or embedded."""
        return self.backend.name

    @property
    def default_model(self) -> str:
        """The model used when none is given."""
        return self.backend.default_model

    def models(self) -> list[str]:
        """Models available on this backend."""
        return self.backend.list_models()

    def traits(self, model: str) -> Traits:
        """How to prompt `model` (cached per model; asks the backend for its details once)."""
        if model not in self._traits:
            self._traits[model] = detect_traits(model, self.backend.model_details(model))
        return self._traits[model]

    @overload
    def chat(self, prompt: Any, model: str | None = None, *, stream: Literal[False] = False,
             **kwargs: Any) -> Reply: ...

    @overload
    def chat(self, prompt: Any, model: str | None = None, *, stream: Literal[True],
             **kwargs: Any) -> ChatStream: ...

    @overload
    def chat(self, prompt: Any, model: str | None = None, *, stream: bool,
             **kwargs: Any) -> Reply | ChatStream: ...

    def chat(self, prompt: Any, model: str | None = None, *, stream: bool = False,
             **kwargs: Any) -> Reply | ChatStream:
        """Like `ds.chat`, on this client."""
        # The chat layer sits above the client (and imports it): a convenience going up.
        from .conversation.session import chat

        return chat(prompt, model, client=self, stream=stream, **kwargs)

    def conversation(self, model: str | None = None, **kwargs: Any) -> Conversation:
        """A `Conversation` on this client."""
        from .conversation.session import Conversation  # a convenience going up the layers

        return Conversation(model, client=self, **kwargs)

    def __repr__(self) -> str:
        return f"Client(backend={self.name!r}, default_model={self.default_model!r})"


def _make(kind: str, **kwargs: Any) -> Backend:
    if kind == "ollama":
        return OllamaBackend(**kwargs)
    if kind == "openai":
        return OpenAIBackend(**kwargs)
    if kind == "embedded":
        return EmbeddedBackend(**kwargs)
    raise ConfigurationError(
        f"unknown backend {kind!r}: choose one of {', '.join(BACKENDS)} (or 'auto')"
    )


def embedded_available() -> bool:
    """Whether llama-cpp-python is installed (without importing it)."""
    return find_spec("llama_cpp") is not None


def connect(backend: str | Backend | None = None, *, set_default: bool = True,
            **kwargs: Any) -> Client:
    """Connect to a backend: 'auto' (default), 'ollama', 'openai', 'embedded', or an instance.

    Auto picks Ollama if it answers at OLLAMA_HOST within about a second, else the embedded
    backend if installed; DSKIT_BACKEND forces a choice.
    """
    global _default
    if backend is not None and not isinstance(backend, str):
        client = Client(backend, "given explicitly")
    else:
        kind = (backend or config.backend() or "auto").strip().lower()
        if kind != "auto":
            why = "chosen explicitly" if backend else f"DSKIT_BACKEND={kind}"
            client = Client(_make(kind, **kwargs), why)
        else:
            client = _auto(**kwargs)
    if set_default:
        with _lock:
            _default = client
    return client


def _auto(**kwargs: Any) -> Client:
    host = resolve_host(kwargs.get("host"))
    try:
        ollama = OllamaBackend(host=host, probe_timeout=1.0)
        ollama.version()
        if ollama.is_dskit_serve:
            return Client(ollama, f"`dskit serve` answered at {host} (Ollama's API over the "
                                  "embedded stand-ins, not Ollama itself)")
        return Client(ollama, f"Ollama answered at {host}")
    except OllamaNotRunning as exc:
        ollama_error = exc
    if embedded_available():
        return Client(_make("embedded"), f"Ollama not reachable at {host}; embedded is installed")
    raise BackendUnavailable(
        f"No backend available. {ollama_error} Or point dskit at an OpenAI-compatible server: "
        "`ds.connect('openai', base_url=..., api_key_env='DEEPSEEK_API_KEY')`."
    )


def cpu_load_meter(client: Client | Backend | Any) -> Callable[[], sysinfo.CpuLoad | None]:
    """Start measuring how busy other programs keep this CPU while `client` generates; call the
    result when done. It gives None where the model runs on another machine (a remote server:
    this CPU does not set its speed)."""
    backend = getattr(client, "backend", client)
    if isinstance(backend, LocalModels) and backend.model_handling().in_process:
        # The model runs in this process, which the meter leaves out: measure over the run.
        return sysinfo.CpuMeter().load
    url = getattr(backend, "host", None) or getattr(backend, "base_url", None)
    host = urllib.parse.urlsplit(url).hostname if isinstance(url, str) else None
    if host and sysinfo.is_loopback(host):
        # A local server's own work would count as another program's during the run: sample
        # the CPU just before it instead.
        before = sysinfo.cpu_load(0.3)
        return lambda: before
    return lambda: None


def default_client() -> Client:
    """The client set by the last `connect()`, connecting automatically the first time."""
    with _lock:
        client = _default
    return client if client is not None else connect()
