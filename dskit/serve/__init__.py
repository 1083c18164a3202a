"""`dskit serve`: Ollama's REST API (and its OpenAI-compatible /v1) over the embedded models;
`dskit mcp`: knowledge bases as MCP tools.

    server = ds.serve.start(port=0)      # background thread; server.url, server.stop()
    ds.serve.run(port=11434)             # blocking, what the `dskit serve` command runs
    kbs = ds.serve.start_mcp("notes")    # MCP over HTTP in a background thread; kbs.url

Nothing is imported or started until one of them is called.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from .. import config
from ..backends.embedded import EmbeddedBackend
from ..errors import BackendUnavailable, ConfigurationError

#: Requests that may wait for a busy model before a 503: Ollama's own default
#: (OLLAMA_MAX_QUEUE), since clients written for Ollama do not retry a 503.
DEFAULT_MAX_QUEUE = 512

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "McpServer", "Server", "answer_reply", "run",
           "serve_in_thread", "start", "start_mcp", "uvicorn_server"]


def __getattr__(name: str) -> Any:
    # The MCP modules import this package (serve_in_thread) and the knowledge bases: they
    # load on first use.
    if name in ("start_mcp", "McpServer"):
        from . import mcp_server

        return mcp_server.start if name == "start_mcp" else mcp_server.McpServer
    if name == "answer_reply":
        from .kb_tools import answer_reply

        return answer_reply
    raise AttributeError(f"module 'dskit.serve' has no attribute {name!r}")


class Server:
    """A running `dskit serve` in a background thread."""

    def __init__(self, uvicorn_server: Any, thread: threading.Thread, engine: Any,
                 host: str, port: int, owns_backend: bool) -> None:
        self._server = uvicorn_server
        self._thread = thread
        self.engine = engine
        self.host, self.port = host, port
        self._owns_backend = owns_backend

    @property
    def url(self) -> str:
        """Where clients connect (a wildcard bind is reached through loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Server(url={self.url!r}, running={self.running})"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop generating, close the server, free the models it loaded."""
        self.engine.cancel_all()
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._owns_backend:
            self.engine.backend.unload()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _prepare(host: str, port: int, *, backend: Any, models: Sequence[str] | None,
             token: str | None, expose: bool, max_queue: int, keep_alive: float | str | None,
             max_body: int, max_prompt_chars: int, origins: Sequence[str]
             ) -> tuple[Any, Any, Any, bool, str | None]:
    """Check the settings, bind the socket, build engine and app."""
    # Starlette and uvicorn are the optional `serve` extra: imported only when a server starts.
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(
            "dskit serve needs Starlette and uvicorn: `pip install 'dskit[serve,embedded]'`"
        ) from exc
    from .app import build_app
    from .engine import DEFAULT_KEEP_ALIVE, Engine
    from .errors import ApiError
    from .parsing import parse_keep_alive
    from .security import check_bind, is_loopback, open_socket

    check_bind(host, expose)
    if token is None:
        token = config.serve_token()
    try:
        keep = parse_keep_alive(keep_alive, DEFAULT_KEEP_ALIVE)
    except ApiError as exc:
        raise ConfigurationError(exc.message) from None
    if max_body < 1024 or max_prompt_chars < 1:
        raise ConfigurationError("max_body must be at least 1024 bytes and max_prompt_chars "
                                 "at least 1")
    owns = backend is None
    if backend is None:
        backend = EmbeddedBackend()
    engine = Engine(backend, models=list(models) if models else None, max_queue=max_queue,
                    keep_alive=keep, max_prompt_chars=max_prompt_chars)
    if models:
        unknown = [m for m in models if m not in backend.list_models()]
        if unknown:
            raise ConfigurationError(
                f"cannot serve {', '.join(unknown)}: the embedded backend has "
                f"{', '.join(backend.list_models()) or 'no models'} (DeepSeek-R1 tags need "
                "Ollama; a GGUF file of your own: `ds.register_gguf(name, path)`)")
    sock = open_socket(host, port)
    app = build_app(engine, token=token, max_body=max_body, loopback_only=is_loopback(host),
                    origins=origins)
    return sock, app, engine, owns, token


def _warn_if_exposed(host: str, port: int, token: str | None) -> None:
    """Print, on stderr, that a non-loopback server is reachable and unauthenticated."""
    from .security import EXPOSE_WARNING, is_loopback

    if not is_loopback(host):
        auth = ("Requests must carry the bearer token; still, " if token else
                "Set a token (DSKIT_SERVE_TOKEN) so requests must carry it. ")
        print(EXPOSE_WARNING.format(host=host, port=port, token=auth), file=sys.stderr,
              flush=True)


def uvicorn_server(app: Any, log_level: str) -> Any:
    """A uvicorn server for `app` (lifespan on, no websockets, 3 s to shut down gracefully)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=log_level == "debug",
                            lifespan="on", ws="none", timeout_graceful_shutdown=3)
    return uvicorn.Server(config)


def serve_in_thread(server: Any, sock: Any, what: str, startup_timeout: float = 30.0
                    ) -> threading.Thread:
    """Run a uvicorn `server` on the bound `sock` in a daemon thread; return once it serves
    (a `ConfigurationError` if it does not start within `startup_timeout` seconds)."""
    host, port = sock.getsockname()[:2]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"{what.replace(' ', '-')}:{port}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise ConfigurationError(f"{what} did not start on {host}:{port}; see the log "
                                     "above")
        time.sleep(0.02)
    return thread


def start(host: str = DEFAULT_HOST, port: int = 0, *, backend: Any = None,
          models: Sequence[str] | None = None, token: str | None = None, expose: bool = False,
          max_queue: int = DEFAULT_MAX_QUEUE, keep_alive: float | str | None = "5m",
          max_body: int = 4 << 20, max_prompt_chars: int = 200_000,
          origins: Sequence[str] = (), log_level: str = "warning",
          startup_timeout: float = 30.0) -> Server:
    """Start the server in a background thread (port 0: a free port) and return its handle.

    `backend`: an `EmbeddedBackend` to serve (default: a new one); `models`: serve only these
    chat models; `token` (or DSKIT_SERVE_TOKEN): require `Authorization: Bearer <token>`;
    `expose`: allow a non-loopback `host`; `max_queue`: requests that may wait for a busy
    model before the server answers 503.
    """
    sock, app, engine, owns, token = _prepare(
        host, port, backend=backend, models=models, token=token, expose=expose,
        max_queue=max_queue, keep_alive=keep_alive, max_body=max_body,
        max_prompt_chars=max_prompt_chars, origins=origins)
    bound = sock.getsockname()[1]
    _warn_if_exposed(host, bound, token)
    server = uvicorn_server(app, log_level)
    thread = serve_in_thread(server, sock, "dskit serve", startup_timeout)
    return Server(server, thread, engine, host, bound, owns)


def run(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, models: Sequence[str] | None = None,
        token: str | None = None, expose: bool = False, max_queue: int = DEFAULT_MAX_QUEUE,
        keep_alive: float | str | None = "5m", max_body: int = 4 << 20,
        max_prompt_chars: int = 200_000, origins: Sequence[str] = (),
        log_level: str = "warning", out: IO[str] | None = None) -> None:
    """Serve in the foreground until Ctrl-C (the `dskit serve` command)."""
    from .security import is_loopback

    out = out or sys.stdout
    sock, app, engine, _, token = _prepare(
        host, port, backend=None, models=models, token=token, expose=expose,
        max_queue=max_queue, keep_alive=keep_alive, max_body=max_body,
        max_prompt_chars=max_prompt_chars, origins=origins)
    bound = sock.getsockname()[1]
    _warn_if_exposed(host, bound, token)
    shown = f"[{host}]" if ":" in host else host
    print(f"dskit serve: Ollama API at http://{shown}:{bound} (OpenAI-compatible under /v1)",
          file=out)
    print("models: " + ", ".join(engine.all_models()), file=out)
    print("bearer token: " + ("required" if token else "none (loopback only)"
                              if is_loopback(host) else "none"), file=out)
    if models:
        seconds = engine.preload(models[0], engine.keep_alive)
        print(f"loaded {models[0]} in {seconds:.1f} s", file=out)
    print("Ctrl-C stops it.", file=out, flush=True)
    try:
        uvicorn_server(app, log_level).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it handled; the server has already shut down
    finally:
        engine.backend.unload()
    print("dskit serve: stopped", file=out)
