"""The Starlette application: routes, error shapes, CORS, the guard, keep-alive expiry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from . import ollama_api, openai_api
from .engine import Engine
from .errors import ApiError
from .security import Guard, error_response

log = logging.getLogger("dskit.serve")

#: Browser origins allowed by default, as Ollama allows them: pages on this machine and
#: desktop apps (Electron/Tauri/VS Code webviews); any other web site is refused by the browser.
LOCAL_ORIGINS = (r"^(https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?"
                 r"|app://.*|file://.*|tauri://.*|vscode-webview://.*)$")
#: How often models whose keep-alive ran out are unloaded.
REAP_SECONDS = 1.0


def build_app(engine: Engine, *, token: str | None = None, max_body: int = 4 << 20,
              loopback_only: bool = True, origins: Sequence[str] = ()) -> Starlette:
    """The ASGI app serving `engine`."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reaper = asyncio.create_task(_reap(engine))
        try:
            yield
        finally:
            reaper.cancel()
            engine.cancel_all()

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(request.url.path, exc.status, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return PlainTextResponse("404 page not found", status_code=404)  # as Ollama
        return error_response(request.url.path, exc.status_code, str(exc.detail))

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("request to %s failed", request.url.path)
        return error_response(request.url.path, 500, f"internal error: {type(exc).__name__}")

    app = Starlette(
        routes=[*ollama_api.routes, *openai_api.routes],
        middleware=[
            Middleware(CORSMiddleware, allow_origin_regex=LOCAL_ORIGINS,
                       allow_origins=list(origins), allow_methods=["*"], allow_headers=["*"]),
            Middleware(Guard, token=token, max_body=max_body, loopback_only=loopback_only),
        ],
        exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: crash},
        lifespan=lifespan,
    )
    app.state.engine = engine
    return app


async def _reap(engine: Engine) -> None:
    """Unload models whose keep-alive ran out (Ollama's expiry), off the event loop."""
    while True:
        await asyncio.sleep(REAP_SECONDS)
        for model in engine.expired():
            try:
                await engine.run(engine.unload, model)
            except Exception:  # one failed unload must not end expiry for the others
                log.exception("unloading %s failed", model)
