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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import DskitError
from . import ollama_api, openai_api
from .engine import Engine
from .errors import ApiError, ClientGone
from .errors import api_error as to_api_error
from .security import LOCAL_ORIGINS, Guard, error_response

log = logging.getLogger("dskit.serve")

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

    async def dskit_error(request: Request, exc: Exception) -> Response:
        # A dskit error raised while a request is read (a bad option, a schema no grammar can
        # hold) is the client's to fix: its status from the one table, never a 500.
        mapped = to_api_error(exc)
        return error_response(request.url.path, mapped.status, mapped.message)

    async def client_gone(request: Request, exc: Exception) -> Response:
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return PlainTextResponse("404 page not found", status_code=404)  # as Ollama
        return error_response(request.url.path, exc.status_code, str(exc.detail))

    app = Starlette(
        routes=[*ollama_api.routes, *openai_api.routes],
        middleware=[
            # Outermost: a refused Host or Origin never reaches CORS or a route.
            Middleware(Guard, token=token, max_body=max_body, loopback_only=loopback_only,
                       origins=origins),
            Middleware(CORSMiddleware, allow_origin_regex=LOCAL_ORIGINS,
                       allow_origins=list(origins), allow_methods=["*"], allow_headers=["*"]),
            Middleware(Contain),
        ],
        exception_handlers={ApiError: api_error, DskitError: dskit_error, ClientGone: client_gone,
                            HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.engine = engine
    return app


class Contain:
    """ASGI middleware: an unexpected error becomes a 500 answer, and stays inside.

    Starlette's own handler for `Exception` answers and then re-raises, and uvicorn then
    drops the connection, so a client's next request on it fails too. Here the error is
    logged and answered, and the connection stays usable. An error after the response has
    started cannot be answered any more: that one still ends the connection, which is how
    a client learns the body is incomplete.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.exception("request to %s failed", scope.get("path", ""))
            if started:
                raise
            response = error_response(scope.get("path", ""), 500,
                                      f"internal error: {type(exc).__name__}")
            await response(scope, receive, send)


async def _reap(engine: Engine) -> None:
    """Unload models whose keep-alive ran out (Ollama's expiry), off the event loop."""
    while True:
        await asyncio.sleep(REAP_SECONDS)
        for model in engine.expired():
            try:
                await engine.run(engine.unload, model)
            except Exception:  # one failed unload must not end expiry for the others
                log.exception("unloading %s failed", model)
