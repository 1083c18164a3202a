"""Ollama's REST API (`/api/*`, `/`) over the engine, in the shapes Ollama's clients parse."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from importlib.metadata import version as package_version
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ..backends.base import Done, Token
from ..embeddings import LOCAL_MODEL
from . import streaming
from .engine import OLLAMA_VERSION, Engine, GenRequest, Outcome, utc_now
from .errors import ApiError, api_error
from .parsing import (
    OLLAMA_CHAT,
    OLLAMA_EMBED,
    OLLAMA_EMBEDDINGS,
    OLLAMA_GENERATE,
    OLLAMA_PULL,
    OLLAMA_SHOW,
    check_length,
    check_types,
    parse_dimensions,
    parse_json,
    parse_keep_alive,
    parse_messages,
    parse_ollama_logprobs,
    parse_options,
    parse_texts,
    parse_think,
)
from .tools_api import ollama_tool_calls, parse_format, parse_tools, unreadable

NDJSON = "application/x-ndjson"


async def body_of(request: Request, fields: Mapping[str, tuple[type, ...]]) -> dict[str, Any]:
    """The JSON body with its fields' types checked (as Ollama's Go structs check them); the
    size limit is enforced by the guard middleware while it is read."""
    body = parse_json(await request.body())
    check_types(body, fields)
    return body


def ns(seconds: float | None) -> int:
    """Seconds as Ollama's integer nanoseconds."""
    return round((seconds or 0.0) * 1e9)


def stats(done: Done, seconds: float) -> dict[str, Any]:
    """The final chunk's counters and durations (nanoseconds), as Ollama reports them."""
    s = done.stats
    return {"total_duration": ns(seconds), "load_duration": ns(s.load_time),
            "prompt_eval_count": s.prompt_tokens or 0, "prompt_eval_duration": ns(s.prompt_time),
            "eval_count": s.eval_tokens or 0, "eval_duration": ns(s.eval_time)}


def logprobs_of(tokens: Iterable[Token]) -> list[dict[str, Any]]:
    """Tokens as Ollama's top-level `logprobs` list (`token`, `logprob`, `bytes`,
    `top_logprobs`; the model's text JSON-encoded like any other)."""
    return [streaming.token_json(t) for t in tokens]


def with_logprobs(obj: dict[str, Any], tokens: tuple[Token, ...]) -> dict[str, Any]:
    """A streamed chunk with its tokens' `logprobs` (none without tokens, as Ollama omits an
    empty list)."""
    return {**obj, "logprobs": logprobs_of(tokens)} if tokens else obj


def line(obj: dict[str, Any]) -> bytes:
    """One NDJSON line (UTF-8, Chinese kept readable)."""
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


async def run_generation(request: Request, req: GenRequest, stream: bool,
                         piece: Callable[[str, str], dict[str, Any]],
                         final: Callable[[Outcome], dict[str, Any]],
                         calls: Callable[[Done], dict[str, Any] | None] | None = None
                         ) -> Response:
    """Run `req`, answering NDJSON lines (`piece` per text, `calls` for the tool calls before
    the end, as Ollama streams them, `final` at the end) or one JSON. Streamed text carries
    its tokens' `logprobs` when they were asked for; a whole reply has them all in `final`."""
    started = await streaming.start(request, req)
    if started is None:  # the client left while queued
        return Response(status_code=499)
    if not stream:
        return JSONResponse(final(await started.collect()))

    async def body() -> AsyncIterator[bytes]:
        try:
            async for kind, value in started.rest():
                if kind in ("content", "thinking"):
                    yield line(with_logprobs(piece(kind, value.text), value.tokens))
                elif kind == "done":
                    seconds = time.perf_counter() - started.gen.t0
                    if calls is not None and (called := calls(value)) is not None:
                        yield line(called)
                    yield line(final(Outcome(done=value, seconds=seconds)))
                elif kind == "error":
                    # Headers are sent: Ollama reports a mid-stream failure as an error line.
                    yield line({"error": value.message})
        finally:
            await started.close()

    return StreamingResponse(body(), media_type=NDJSON)


def _no_extras(body: dict[str, Any], model: str) -> None:
    """Refuse request features the embedded models cannot honour, rather than ignore them."""
    if body.get("images"):
        raise ApiError(400, "this model does not support images: the embedded models are "
                       "text-only")


def _chat_model(engine: Engine, body: dict[str, Any], what: str) -> str:
    model, kind = engine.resolve(body.get("model"))
    if kind != "chat":
        raise ApiError(400, f'"{model}" does not support {what}: it is an embedding model; '
                       "use /api/embed with it, or a chat model for chat")
    return model


async def load_or_unload(engine: Engine, model: str, keep_alive: float | None,
                         empty: dict[str, Any]) -> JSONResponse:
    """Ollama's empty request: load the model (or unload it with keep_alive 0)."""
    if keep_alive == 0:
        await engine.run(engine.unload, model)
        return JSONResponse({"model": model, "created_at": utc_now(), **empty,
                             "done_reason": "unload", "done": True})
    seconds = await engine.run(engine.preload, model, keep_alive)
    return JSONResponse({"model": model, "created_at": utc_now(), **empty,
                         "done_reason": "load", "done": True, "load_duration": ns(seconds),
                         "total_duration": ns(seconds)})


async def chat(request: Request) -> Response:
    """POST /api/chat."""
    engine = streaming.engine_of(request)
    body = await body_of(request, OLLAMA_CHAT)
    model = _chat_model(engine, body, "chat")
    _no_extras(body, model)
    messages = parse_messages(body.get("messages"), engine.max_prompt_chars)
    keep_alive = parse_keep_alive(body.get("keep_alive"), engine.keep_alive)
    if not messages:
        return await load_or_unload(engine, model, keep_alive,
                                    {"message": {"role": "assistant", "content": ""}})
    req = GenRequest(model=model, messages=messages, options=parse_options(body.get("options")),
                     think=parse_think(body.get("think")), keep_alive=keep_alive,
                     format=parse_format(body.get("format")), tools=parse_tools(body.get("tools")),
                     logprobs=parse_ollama_logprobs(body))
    stream = body.get("stream", True) is not False

    def piece(kind: str, text: str) -> dict[str, Any]:
        msg = {"role": "assistant", "content": text if kind == "content" else ""}
        if kind == "thinking":
            msg["thinking"] = text
        return {"model": model, "created_at": utc_now(), "message": msg, "done": False}

    def calls(done: Done) -> dict[str, Any] | None:
        """The requested calls, in a chunk of their own (as Ollama streams them)."""
        if not done.tool_calls:
            return None
        msg = {"role": "assistant", "content": unreadable(done.tool_calls),
               "tool_calls": ollama_tool_calls(done.tool_calls)}
        return {"model": model, "created_at": utc_now(), "message": msg, "done": False}

    def final(out: Outcome) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": out.content}
        if out.thinking:
            msg["thinking"] = out.thinking
        if not stream and out.done.tool_calls:  # streamed, they went in a chunk of their own
            msg["content"] += unreadable(out.done.tool_calls)
            msg["tool_calls"] = ollama_tool_calls(out.done.tool_calls)
        return {"model": model, "created_at": utc_now(), "message": msg,
                **whole_logprobs(req, stream, out), "done": True,
                "done_reason": out.done.done_reason or "stop", **stats(out.done, out.seconds)}

    return await run_generation(request, req, stream, piece, final, calls)


def whole_logprobs(req: GenRequest, stream: bool, out: Outcome) -> dict[str, Any]:
    """A whole (not streamed) reply's `logprobs`, reasoning's then answer's, when asked for
    (a list even when empty, so a client sees they were answered)."""
    return {"logprobs": logprobs_of(out.tokens)} if req.logprobs is not None and not stream \
        else {}


async def generate(request: Request) -> Response:
    """POST /api/generate."""
    engine = streaming.engine_of(request)
    body = await body_of(request, OLLAMA_GENERATE)
    model = _chat_model(engine, body, "generate")
    _no_extras(body, model)
    if body.get("tools"):
        raise ApiError(400, "/api/generate takes no tools: use /api/chat for tool calls")
    raw = body.get("raw") is True
    if raw and (body.get("template") or body.get("system") or body.get("context")):
        raise ApiError(400, "raw mode does not support template, system, or context")
    if raw and body.get("format"):
        raise ApiError(400, "dskit serve does not constrain a raw prompt to a format: send the "
                       "prompt without raw, or ask for JSON in the prompt")
    if body.get("suffix"):
        raise ApiError(400, f'"{model}" does not support insert (suffix)')
    prompt, system = body.get("prompt") or "", body.get("system") or ""
    if not isinstance(prompt, str) or not isinstance(system, str):
        raise ApiError(400, "prompt and system must be strings")
    check_length(len(prompt) + len(system), engine.max_prompt_chars)
    keep_alive = parse_keep_alive(body.get("keep_alive"), engine.keep_alive)
    if not prompt:
        return await load_or_unload(engine, model, keep_alive, {"response": ""})
    think = parse_think(body.get("think"))
    if raw and think and not (await asyncio.to_thread(engine.facts, model)).traits.reasoning:
        raise ApiError(400, f'"{model}" does not support thinking')  # what Ollama answers
    messages = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": prompt}]
    req = GenRequest(model=model, messages=messages, options=parse_options(body.get("options")),
                     think=think, keep_alive=keep_alive, raw=prompt if raw else None,
                     format=parse_format(body.get("format")),
                     logprobs=parse_ollama_logprobs(body))
    stream = body.get("stream", True) is not False

    def piece(kind: str, text: str) -> dict[str, Any]:
        out = {"model": model, "created_at": utc_now(),
               "response": text if kind == "content" else "", "done": False}
        if kind == "thinking":
            out["thinking"] = text
        return out

    def final(out: Outcome) -> dict[str, Any]:
        reply = {"model": model, "created_at": utc_now(), "response": out.content}
        if out.thinking:
            reply["thinking"] = out.thinking
        return {**reply, **whole_logprobs(req, stream, out), "done": True,
                "done_reason": out.done.done_reason or "stop", **stats(out.done, out.seconds)}

    return await run_generation(request, req, stream, piece, final)


def _tag(engine: Engine, name: str) -> dict[str, Any]:
    facts = engine.facts(name, cheap=True)
    return {"name": name, "model": name, "modified_at": facts.modified_at, "size": facts.size,
            "digest": facts.digest, "details": facts.details}


async def tags(request: Request) -> Response:
    """GET /api/tags: the embedded chat models and the local embedding model."""
    engine = streaming.engine_of(request)
    names = await asyncio.to_thread(engine.all_models)
    rows = await asyncio.to_thread(lambda: [_tag(engine, n) for n in names])
    return JSONResponse({"models": rows})


async def show(request: Request) -> Response:
    """POST /api/show."""
    engine = streaming.engine_of(request)
    body = await body_of(request, OLLAMA_SHOW)
    model, _ = engine.resolve(body.get("model") or body.get("name"))
    facts = await asyncio.to_thread(engine.facts, model)
    trained = next((v for k, v in facts.model_info.items()
                    if k.endswith(".context_length")), None)
    window = getattr(engine.backend, "n_ctx", None)  # the window models are loaded with here
    if isinstance(trained, int) and window:
        window = min(window, trained)
    params = f"num_ctx {window or trained}" if (window or trained) else ""
    return JSONResponse({
        "license": facts.license,
        "modelfile": f"# served by dskit serve (embedded backend)\nFROM {model}\n",
        "parameters": params,
        "template": facts.template,
        "details": facts.details,
        "model_info": facts.model_info,
        "capabilities": facts.capabilities,
        "modified_at": facts.modified_at,
    })


async def ps(request: Request) -> Response:
    """GET /api/ps: models in memory, with their expiry."""
    engine = streaming.engine_of(request)

    def rows() -> list[dict[str, Any]]:
        out = [engine.ps_row(r) for r in engine.backend.ps()]
        if LOCAL_MODEL in engine.loaded():
            facts = engine.facts(LOCAL_MODEL)
            out.append({"name": LOCAL_MODEL, "model": LOCAL_MODEL, "size": facts.size,
                        "size_vram": 0, "digest": "", "details": facts.details,
                        "expires_at": engine.expires_at(LOCAL_MODEL), "context_length": 256})
        return out

    return JSONResponse({"models": await asyncio.to_thread(rows)})


def dskit_version() -> str:
    """The installed dskit's version (the package metadata; never imports dskit itself)."""
    return package_version("dskit")


async def version(request: Request) -> Response:
    """GET /api/version: an Ollama version with `think` support, and which server this is."""
    return JSONResponse({"version": OLLAMA_VERSION, "server": f"dskit {dskit_version()}"})


async def root(request: Request) -> Response:
    """GET and HEAD /: what Ollama answers."""
    return PlainTextResponse("Ollama is running")


async def embed(request: Request) -> Response:
    """POST /api/embed: unit vectors from the local embedding model."""
    engine = streaming.engine_of(request)
    body = await body_of(request, OLLAMA_EMBED)
    model = embedder_name(engine, body.get("model"))
    texts, _ = parse_texts(body.get("input", []), engine.max_prompt_chars)
    dims = parse_dimensions(body.get("dimensions"))
    truncate = body.get("truncate", True) is not False
    t0 = time.perf_counter()
    vectors, tokens, load = await streaming.while_connected(
        request, lambda cancelled: engine.embed(texts, truncate, dims, cancelled))
    return JSONResponse({"model": model, "embeddings": vectors,
                         "total_duration": ns(time.perf_counter() - t0),
                         "load_duration": ns(load), "prompt_eval_count": tokens})


async def embeddings(request: Request) -> Response:
    """POST /api/embeddings (legacy): one prompt, one vector."""
    engine = streaming.engine_of(request)
    body = await body_of(request, OLLAMA_EMBEDDINGS)
    embedder_name(engine, body.get("model"))  # refuses chat models
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str):
        raise ApiError(400, "prompt must be a string")
    check_length(len(prompt), engine.max_prompt_chars)
    if not prompt:
        return JSONResponse({"embedding": []})
    vectors, _, _ = await streaming.while_connected(
        request, lambda cancelled: engine.embed([prompt], cancelled=cancelled))
    return JSONResponse({"embedding": vectors[0]})


def embedder_name(engine: Engine, raw: Any) -> str:
    """The embedding model a request names; a chat model gets a 400 saying what to use."""
    model, kind = engine.resolve(raw)
    if kind != "embed":
        raise ApiError(400, f'"{model}" does not support embeddings: it is a chat model, and '
                       "chat models make poor embeddings. Use an embedding model: "
                       f"{LOCAL_MODEL} (served here) or, on Ollama, bge-m3 (Chinese) or "
                       "nomic-embed-text")
    return model


async def pull(request: Request) -> Response:
    """POST /api/pull: assemble an installed stand-in, or convert MiniLM, with progress."""
    engine = streaming.engine_of(request)
    body = await body_of(request, OLLAMA_PULL)
    name = body.get("model") or body.get("name")
    try:
        model, _ = engine.resolve(name)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise ApiError(404, f"pull model manifest: file does not exist: dskit serve runs the "
                       f"embedded backend, which cannot download models (no network here). It "
                       f"serves: {', '.join(engine.all_models()) or 'none'}. To run {name}, use "
                       f"Ollama on a GPU instance: `ollama pull {name}`") from None
    stream = body.get("stream", True) is not False
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()
    facts = engine.facts(model, cheap=True)
    digest = f"sha256:{facts.digest}" if facts.digest else ""
    pulling = f"pulling {facts.digest[:12]}" if facts.digest else f"pulling {model}"
    last = [0.0, -1]

    def progress(done: int, total: int) -> None:
        # A line per percent at most: a 490 MB assembly must not flood the client.
        pct = done * 100 // max(total, 1)
        now = time.monotonic()
        if pct != last[1] and (now - last[0] > 0.05 or done >= total):
            last[0], last[1] = now, pct
            loop.call_soon_threadsafe(queue.put_nowait, {
                "status": pulling, "digest": digest, "total": total, "completed": done})

    def work() -> None:
        try:
            size = engine.pull(model, progress)
            for item in ({"status": pulling, "digest": digest, "total": size, "completed": size},
                         {"status": "verifying sha256 digest"}, {"status": "writing manifest"},
                         {"status": "success"}):
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:  # handed to the event loop, which reports it
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    worker = asyncio.ensure_future(engine.run(work))  # referenced below: kept alive until read

    async def lines() -> AsyncIterator[bytes]:
        yield line({"status": "pulling manifest"})
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                yield line({"error": api_error(item).message})
                continue
            yield line(item)
        await worker

    if stream:
        return StreamingResponse(lines(), media_type=NDJSON)
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise api_error(item)
    await worker
    return JSONResponse({"status": "success"})


async def unsupported(request: Request) -> Response:
    """Model management that only makes sense on Ollama."""
    raise ApiError(501, f"{request.url.path} is not supported by dskit serve: the embedded "
                   "models come from installed packages; create, copy, delete and push models "
                   "with Ollama")


routes = [
    Route("/", root, methods=["GET", "HEAD"]),
    Route("/api/version", version, methods=["GET", "HEAD"]),
    Route("/api/tags", tags, methods=["GET", "HEAD"]),
    Route("/api/ps", ps, methods=["GET"]),
    Route("/api/show", show, methods=["POST"]),
    Route("/api/chat", chat, methods=["POST"]),
    Route("/api/generate", generate, methods=["POST"]),
    Route("/api/embed", embed, methods=["POST"]),
    Route("/api/embeddings", embeddings, methods=["POST"]),
    Route("/api/pull", pull, methods=["POST"]),
    *(Route(p, unsupported, methods=["POST", "DELETE"])
      for p in ("/api/create", "/api/copy", "/api/delete", "/api/push")),
]
