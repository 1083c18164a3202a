"""Safe defaults: loopback binding, bearer token, body limit, Host check against DNS rebinding."""

from __future__ import annotations

import errno
import hmac
import re
import socket
from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigurationError
from ..sysinfo import is_loopback
from .errors import BodyTooLarge, openai_error

EXPOSE_WARNING = (
    "WARNING: dskit serve is listening on {host}, reachable from other machines. The Ollama API "
    "has no authentication of its own, and exposed Ollama ports are scanned for and abused. "
    "{token}Prefer keeping 127.0.0.1 and an SSH tunnel (ssh -L {port}:127.0.0.1:{port} "
    "user@server); otherwise open the port in the firewall only to your own address."
)


#: Browser origins allowed by default, as Ollama allows them: pages on this machine and
#: desktop apps (Electron/Tauri/VS Code webviews). Any other web page is refused.
LOCAL_ORIGINS = (r"^(https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"
                 r"|app://.*|file://.*|tauri://.*|vscode-webview://.*)$")
_LOCAL = re.compile(LOCAL_ORIGINS)


def origin_allowed(origin: str, extra: Sequence[str] = ()) -> bool:
    """Whether a browser page from `origin` may use the server (local pages, desktop apps,
    and the `--origin` values; `*` allows every origin)."""
    return bool(_LOCAL.fullmatch(origin)) or origin in extra or "*" in extra


def check_bind(host: str, expose: bool) -> None:
    """Refuse a non-loopback address unless exposing was asked for explicitly."""
    if not is_loopback(host) and not expose:
        raise ConfigurationError(
            f"refusing to listen on {host}: that makes the API reachable from other machines, "
            "and it has no authentication of its own. Keep the default 127.0.0.1 (reach it "
            "from elsewhere through an SSH tunnel), or pass --expose (Python: expose=True) "
            "together with a token (--token or DSKIT_SERVE_TOKEN) and a firewall rule."
        )


def open_socket(host: str, port: int, in_use: str | None = None) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); a clear error if taken
    (`in_use`: what to do then, when it is not `dskit serve` that is starting)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE and in_use is not None:
            raise ConfigurationError(f"port {port} on {host} is already in use: {in_use}"
                                     ) from None
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {host} is already in use (is Ollama or another dskit serve "
                f"running?): stop it, or choose another port, e.g. `dskit serve --port "
                f"{port + 1 if port else 11435}`, and point clients there (OLLAMA_HOST)"
            ) from None
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def error_response(path: str, status: int, message: str) -> Response:
    """An error in the shape the caller's API uses: OpenAI's under /v1, Ollama's elsewhere."""
    if path.startswith("/v1/"):
        return JSONResponse(openai_error(status, message), status_code=status)
    return JSONResponse({"error": message}, status_code=status)


class Guard:
    """ASGI middleware: Host check, Origin check, bearer token, and the request body limit.

    The outermost layer: a request it refuses never reaches CORS handling or a route, so a
    web page on another site cannot make the server do anything, even with a "simple"
    request that browsers send without asking first (a text/plain POST). Pure ASGI (no
    BaseHTTPMiddleware) so streaming responses and disconnects pass untouched.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int,
                 loopback_only: bool, origins: Sequence[str] = (),
                 too_large_fix: str = "start dskit serve with a larger --max-body") -> None:
        self.app = app
        self.too_large_fix = too_large_fix
        self._token = token  # never logged or echoed
        self.max_body = max_body
        self.loopback_only = loopback_only
        self.origins = tuple(origins)

    def __repr__(self) -> str:
        return f"Guard(token={'set' if self._token else 'none'}, max_body={self.max_body})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        refusal = self._refuse(path, scope.get("method", ""), headers)
        if refusal is not None:
            origin = headers.get("origin")
            if origin and origin_allowed(origin, self.origins):
                # A page allowed to call us may read why it was refused (e.g. a 401).
                refusal.headers["Access-Control-Allow-Origin"] = origin
                refusal.headers["Vary"] = "Origin"
            await refusal(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(413, self._too_large())
            return message

        await self.app(scope, limited, send)

    def _too_large(self) -> str:
        return (f"request body too large: the limit is {self.max_body} bytes "
                f"({self.too_large_fix})")

    def _refuse(self, path: str, method: str, headers: dict[str, str]) -> Any:
        if self.loopback_only and not _local_host(headers.get("host", "")):
            # A web page can point a DNS name at 127.0.0.1 (DNS rebinding); a server bound to
            # loopback answers only to loopback names, as Ollama does.
            return error_response(path, 403, "forbidden: this server answers only requests "
                                  "addressed to localhost / 127.0.0.1")
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(origin, self.origins):
            # As Ollama: a page from another site gets 403 before anything runs, whether the
            # browser asked first (a preflight) or not (a simple request).
            return error_response(path, 403, f"forbidden: the web page at {origin[:100]!r} "
                                  "may not use this server (allowed: local pages and desktop "
                                  "apps; start dskit serve with --origin to allow another)")
        if self._token and method != "OPTIONS" and path != "/":
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                return error_response(path, 401, "unauthorized: send the server's token as "
                                      "'Authorization: Bearer <token>'")
        length = headers.get("content-length", "")
        # Digits beyond any body size are refused before int() (which stops at 4300 digits).
        if length.isdigit() and (len(length) > 18 or int(length) > self.max_body):
            return error_response(path, 413, self._too_large())
        return None


def _local_host(host_header: str) -> bool:
    """Whether a Host header names this machine's loopback (empty: HTTP/1.0, allowed)."""
    if not host_header:
        return True
    host = host_header.strip()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return is_loopback(host)
