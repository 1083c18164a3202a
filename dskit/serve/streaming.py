"""Reading a generation from the event loop: its items, its first item, the whole reply.

Both APIs (Ollama's `/api` and the OpenAI-compatible `/v1`) answer generations the same way:
wait for the first item while the request is queued (so an error still chooses the status
code), then stream or collect the rest; a client that leaves stops the generation.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request

from ..backends.base import Token
from .engine import Engine, Generation, GenRequest, Outcome
from .errors import ClientGone

#: How often a request waiting for its model checks whether its client is still there.
POLL_SECONDS = 0.25
#: What a log-probability JSON cannot hold (-inf: a masked token) is sent as, as OpenAI does.
UNLIKELY = -9999.0

Item = tuple[str, Any]


def finite(logprob: float) -> float:
    """A log-probability JSON can carry (JSON has no -Infinity or NaN)."""
    return logprob if math.isfinite(logprob) else UNLIKELY


def token_json(token: Token) -> dict[str, Any]:
    """One token in both APIs' shape (`token`, `logprob`, `bytes`, `top_logprobs`)."""
    out = token.as_dict()
    out["logprob"] = finite(out["logprob"])
    for alt in out["top_logprobs"]:
        alt["logprob"] = finite(alt["logprob"])
    return out


def engine_of(request: Request) -> Engine:
    """The engine the app was built with."""
    return request.app.state.engine


async def items(gen: Generation, request: Request) -> AsyncIterator[Item]:
    """The worker's items; a client that goes away stops the generation and frees the model."""
    checked = time.monotonic()
    try:
        while True:
            try:
                item = await asyncio.wait_for(gen.next(), POLL_SECONDS)
            except asyncio.TimeoutError:
                item = None
            # While queued, evaluating a prompt or collecting a non-streamed reply nothing is
            # written to the client, so ask the server whether it is still there.
            if time.monotonic() - checked >= POLL_SECONDS:
                checked = time.monotonic()
                if await request.is_disconnected():
                    return
            if item is None:
                continue
            yield item
            if item[0] in ("done", "error"):
                return
    finally:
        gen.cancelled.set()  # no-op when the generation finished; stops it otherwise


async def while_connected(request: Request, work: Callable[[threading.Event], Any]) -> Any:
    """Run model work off the event loop, `work(cancelled)`; when the client leaves,
    `cancelled` is set, so queued work leaves the queue and running work stops at its next
    step, and `ClientGone` is raised."""
    engine = engine_of(request)
    cancelled = threading.Event()
    task = asyncio.ensure_future(engine.run(work, cancelled))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientGone
    finally:
        cancelled.set()  # no-op for finished work


@dataclass
class Started:
    """A generation whose first item has arrived: `rest` yields it again, then the others."""

    gen: Generation
    first: Item
    source: AsyncIterator[Item]

    async def rest(self) -> AsyncIterator[Item]:
        """The first item (unless it is only the start marker), then the rest."""
        if self.first[0] != "first":
            yield self.first
        async for item in self.source:
            yield item

    async def close(self) -> None:
        """Stop reading (and generating, if it still runs)."""
        await self.source.aclose()  # type: ignore[attr-defined]

    async def collect(self) -> Outcome:
        """The whole reply: the text by kind, its tokens in order with their phase, and the
        final event (raises its error)."""
        out = Outcome()
        parts: dict[str, list[str]] = {"content": [], "thinking": []}
        try:
            async for kind, value in self.rest():
                if kind == "error":
                    raise value
                if kind in parts:
                    parts[kind].append(value.text)
                    phase = "thinking" if kind == "thinking" else "answer"
                    out.tokens += (replace(t, phase=phase) for t in value.tokens)
                elif kind == "done":
                    out.done = value
        finally:
            await self.close()
        out.content, out.thinking = "".join(parts["content"]), "".join(parts["thinking"])
        out.seconds = time.perf_counter() - self.gen.t0
        return out


async def start(request: Request, req: GenRequest) -> Started | None:
    """Queue `req` and wait for its first item; None when the client left while queued.

    An error before the first item is raised here, so the handler can still answer it with
    its own status code (404, 400, 503) instead of a 200 followed by an error line.
    """
    gen = engine_of(request).start(req, asyncio.get_running_loop())
    source = items(gen, request)
    try:
        async for kind, value in source:
            if kind == "error":
                raise value
            return Started(gen, (kind, value), source)
    except BaseException:
        await source.aclose()  # type: ignore[attr-defined]
        raise
    await source.aclose()  # type: ignore[attr-defined]
    return None
