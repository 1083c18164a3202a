"""The OpenAI-compatible API that Ollama also offers: `/v1/chat/completions`, models, embeddings."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..backends.base import Done, Token
from . import streaming
from .engine import GenRequest
from .errors import ApiError, openai_error
from .ollama_api import body_of, embedder_name
from .parsing import (
    OPENAI_CHAT,
    OPENAI_EMBEDDINGS,
    parse_dimensions,
    parse_messages,
    parse_openai_logprobs,
    parse_options,
    parse_texts,
    stop_list,
)
from .streaming import engine_of
from .tools_api import openai_tool_calls, parse_response_format, parse_tools, unreadable

FINGERPRINT = "fp_dskit"


def _sse(obj: dict[str, Any] | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def _usage(done: Done) -> dict[str, int]:
    prompt, completion = done.stats.prompt_tokens or 0, done.stats.eval_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _think(body: dict[str, Any]) -> bool | None:
    """`reasoning_effort` ("none" switches reasoning off) or `reasoning: {"effort": ...}`."""
    effort = body.get("reasoning_effort")
    if effort is None and isinstance(body.get("reasoning"), dict):
        effort = body["reasoning"].get("effort")
    if effort is None:
        return None
    if effort in ("none", False):
        return False
    if effort in ("minimal", "low", "medium", "high", True):
        return True
    raise ApiError(400, "reasoning_effort must be none, low, medium or high")


def _logprobs(asked: int | None, content: Sequence[Token], reasoning: Sequence[Token] = ()
              ) -> dict[str, Any] | None:
    """A choice's `logprobs`: null unless asked for. `content` holds the answer's tokens
    only, so they spell `content` as in OpenAI's API; the reasoning's go in
    `reasoning_content`, beside it (where DeepSeek's platform names the reasoning)."""
    if asked is None:
        return None
    out: dict[str, Any] = {"content": [streaming.token_json(t) for t in content],
                           "refusal": None}
    if reasoning:
        out["reasoning_content"] = [streaming.token_json(t) for t in reasoning]
    return out


def _finish(done: Done, calls: list[dict[str, Any]]) -> str:
    """OpenAI's finish_reason: `tool_calls` when the model asked for calls."""
    return "tool_calls" if calls else done.done_reason or "stop"


def _options(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI sampling fields as Ollama options."""
    opts: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("seed", "seed"),
                         ("presence_penalty", "presence_penalty"),
                         ("frequency_penalty", "frequency_penalty")):
        if body.get(theirs) is not None:
            opts[ours] = body[theirs]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        opts["num_predict"] = limit
    if body.get("stop") is not None:
        opts["stop"] = stop_list(body["stop"])
    return opts


async def chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions, streaming (SSE) or not."""
    engine = engine_of(request)
    body = await body_of(request, OPENAI_CHAT)
    model, kind = engine.resolve(body.get("model"))
    if kind != "chat":
        raise ApiError(400, f'"{model}" does not support chat: it is an embedding model')
    if body.get("n") not in (None, 1):
        raise ApiError(400, "n must be 1: one choice per request")
    messages = parse_messages(body.get("messages"), engine.max_prompt_chars)
    if not messages:
        raise ApiError(400, "messages must not be empty")
    req = GenRequest(model=model, messages=messages, options=parse_options(_options(body)),
                     think=_think(body), keep_alive=engine.keep_alive,
                     format=parse_response_format(body.get("response_format")),
                     tools=parse_tools(body.get("tools"), body.get("tool_choice")),
                     logprobs=parse_openai_logprobs(body))
    stream = bool(body.get("stream"))
    stream_options = body.get("stream_options")
    usage_wanted = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
    ident = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    head = {"id": ident, "created": created, "model": model,
            "system_fingerprint": FINGERPRINT}

    started = await streaming.start(request, req)
    if started is None:  # the client left while queued
        return Response(status_code=499)
    if not stream:
        out = await started.collect()
        message: dict[str, Any] = {"role": "assistant",
                                   "content": out.content + unreadable(out.done.tool_calls)}
        if out.thinking:
            message["reasoning"] = out.thinking
        called = openai_tool_calls(out.done.tool_calls)
        if called:
            message["tool_calls"] = called
        logprobs = _logprobs(req.logprobs, [t for t in out.tokens if t.phase == "answer"],
                             [t for t in out.tokens if t.phase == "thinking"])
        return JSONResponse({**head, "object": "chat.completion", "choices": [
            {"index": 0, "message": message, "logprobs": logprobs,
             "finish_reason": _finish(out.done, called)}], "usage": _usage(out.done)})

    def chunk(delta: dict[str, Any], finish: str | None = None,
              logprobs: dict[str, Any] | None = None) -> bytes:
        return _sse({**head, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]})

    async def events() -> AsyncIterator[bytes]:
        try:
            async for k, value in started.rest():
                if k == "content":
                    yield chunk({"role": "assistant", "content": value.text}, None,
                                _logprobs(req.logprobs, value.tokens))
                elif k == "thinking":
                    # Ollama's /v1 name for it (DeepSeek's platform says reasoning_content).
                    yield chunk({"role": "assistant", "content": "", "reasoning": value.text},
                                None, _logprobs(req.logprobs, (), value.tokens))
                elif k == "done":
                    called = openai_tool_calls(value.tool_calls, streaming=True)
                    if unreadable(value.tool_calls):
                        yield chunk({"role": "assistant",
                                     "content": unreadable(value.tool_calls)})
                    if called:
                        yield chunk({"role": "assistant", "tool_calls": called})
                    yield chunk({}, _finish(value, called))
                    if usage_wanted:
                        yield _sse({**head, "object": "chat.completion.chunk", "choices": [],
                                    "usage": _usage(value)})
                    yield _sse("[DONE]")
                elif k == "error":
                    yield _sse(openai_error(value.status, value.message))
        finally:
            await started.close()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def _model_row(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": int(time.time()), "owned_by": "dskit"}


async def models(request: Request) -> Response:
    """GET /v1/models."""
    names = await asyncio.to_thread(engine_of(request).all_models)
    return JSONResponse({"object": "list", "data": [_model_row(n) for n in names]})


async def model(request: Request) -> Response:
    """GET /v1/models/{model}."""
    name, _ = engine_of(request).resolve(request.path_params["model"])
    return JSONResponse(_model_row(name))


async def embeddings(request: Request) -> Response:
    """POST /v1/embeddings: floats, or base64 (the OpenAI client's default encoding)."""
    engine = engine_of(request)
    body = await body_of(request, OPENAI_EMBEDDINGS)
    name = embedder_name(engine, body.get("model"))
    texts, _ = parse_texts(body.get("input"), engine.max_prompt_chars)
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise ApiError(400, "encoding_format must be float or base64")
    dims = parse_dimensions(body.get("dimensions"))
    vectors, tokens, _ = await streaming.while_connected(
        request, lambda cancelled: engine.embed(texts, True, dims, cancelled))

    def encode(vec: list[float]) -> list[float] | str:
        if encoding == "float":
            return vec
        return base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()

    return JSONResponse({"object": "list", "model": name, "data": [
        {"object": "embedding", "embedding": encode(v), "index": i}
        for i, v in enumerate(vectors)], "usage": {"prompt_tokens": tokens,
                                                   "total_tokens": tokens}})


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/models/{model:path}", model, methods=["GET"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
]
