"""What user or client data reaches native code with is bounded, or refused with a typed error
(token counts, stop lists, sampling numbers, llama.cpp's own keywords), in process and through
`dskit serve` (400, never a crash or a 500)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import dskit as ds
from dskit.backends.base import MAX_STOPS, MAX_TOKENS, Options
from dskit.errors import ConfigurationError

SMALL = "smollm2:135m"


@pytest.mark.parametrize(("settings", "says"), [
    ({"max_tokens": 2**40}, "max_tokens"),
    ({"max_tokens": -5}, "max_tokens"),
    ({"num_ctx": 10**30}, "num_ctx"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_p": float("inf")}, "top_p"),
    ({"seed": 2**70}, "seed"),
    ({"stop": [f"停{i}" for i in range(MAX_STOPS + 1)]}, "stop"),
    ({"stop": ["x" * 5000]}, "stop"),
    ({"think_budget": 10**30}, "think_budget=a number that large"),
    ({"think_budget": 2**31}, "think_budget"),
])
def test_settings_beyond_any_engine_are_refused_before_a_request(scripted: Any,
                                                                 settings: dict[str, Any],
                                                                 says: str):
    client = scripted(["never asked"])
    with pytest.raises(ConfigurationError, match=says):
        ds.chat("你好", "fake:1b", client=client, **settings)
    assert client.backend.requests == []  # refused before anything reached the backend


def test_empty_stop_strings_are_dropped_and_the_largest_counts_pass():
    opts = Options(max_tokens=MAX_TOKENS, num_ctx=MAX_TOKENS, stop=["", "。", ""],
                   seed=2**63, temperature=0).checked()
    assert opts.stop == ["。"] and opts.max_tokens == MAX_TOKENS


@pytest.mark.model
def test_an_option_llama_cpp_refuses_is_a_typed_error(embedded_client: Any):
    with pytest.raises(ConfigurationError, match=r"llama\.cpp refused"):
        embedded_client.chat("Say hi.", SMALL, max_tokens=4, options={"logprobs": 10**6})
    assert embedded_client.chat("Say hi.", SMALL, max_tokens=4, stop=[""]).answer  # not cut


@pytest.fixture(scope="module")
def server(embedded: Any) -> Any:
    srv = ds.serve.start(port=0, backend=embedded)
    yield srv
    srv.stop()


@pytest.mark.parametrize("options", [
    {"num_ctx": 2**40}, {"num_predict": 2**40}, {"stop": [f"s{i}" for i in range(500)]},
    {"seed": 2**64}, {"temperature": 1e39},
])
def test_serve_answers_400_to_options_beyond_any_engine(server: Any, options: dict[str, Any]):
    body = {"model": SMALL, "stream": False, "options": options,
            "messages": [{"role": "user", "content": "你好"}]}
    r = httpx.post(f"{server.url}/api/chat", json=body, timeout=60)
    assert r.status_code == 400, r.text
    ok = httpx.post(f"{server.url}/api/chat", timeout=60, json={**body, "options": {
        "num_predict": 2}})
    assert ok.status_code == 200


HOSTILE_BODIES = {
    "dangling $ref": ("/api/chat", {"format": {"$ref": "#/$defs/nowhere"}}),
    "remote $ref": ("/v1/chat/completions", {"response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {
            "properties": {"a": {"$ref": "http://127.0.0.1:9/s.json"}}}}}}),
    "self-referencing tool": ("/api/chat", {"tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"$defs": {"a": {"$ref": "#/$defs/a"}},
                                    "$ref": "#/$defs/a"}}}]}),
    "deep tool arguments": ("/v1/chat/completions", {"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "1", "type": "function",
         "function": {"name": "f", "arguments": "[" * 50_000 + "]" * 50_000}}]},
        {"role": "tool", "tool_call_id": "1", "content": "ok"}]}),
    "5000-digit argument": ("/v1/chat/completions", {"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "1", "type": "function",
         "function": {"name": "f", "arguments": '{"n": ' + "7" * 5000 + "}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "ok"}]}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
def test_serve_never_answers_500_to_a_hostile_body(server: Any, case: str):
    path, extra = HOSTILE_BODIES[case]
    body = {"model": SMALL, "stream": False, "max_tokens": 2, "options": {"num_predict": 2},
            "messages": [{"role": "user", "content": "你好"}], **extra}
    r = httpx.post(f"{server.url}{path}", json=body, timeout=60)
    assert r.status_code in (200, 400), (r.status_code, r.text[:300])
    if case.endswith("$ref") or case.startswith("self"):
        assert r.status_code == 400 and "refer" in r.text


@pytest.mark.model
def test_sixteen_clients_at_once_are_queued_like_ollama_not_refused(embedded: Any):
    """Clients written for Ollama do not retry a 503: the default queue is Ollama's (512)."""
    from concurrent.futures import ThreadPoolExecutor

    with ds.serve.start(port=0, backend=embedded) as srv:
        assert srv.engine.max_queue == 512

        def client(i: int) -> list[int]:
            return [httpx.post(f"{srv.url}/api/chat", timeout=300, json={
                "model": SMALL, "stream": False, "options": {"num_predict": 2, "seed": i},
                "messages": [{"role": "user", "content": f"第{i}个问题：你好"}]}).status_code
                for _ in range(2)]

        with ThreadPoolExecutor(16) as pool:
            codes = [c for cs in pool.map(client, range(16)) for c in cs]
    assert codes == [200] * 32


@pytest.mark.model
def test_an_abandoned_embedding_request_frees_the_embedder(server: Any):
    """A client that leaves a large /api/embed (minutes of work) stops it at the next step,
    and queued requests whose clients left leave the queue."""
    import json as _json
    import socket
    import time

    from dskit.embeddings import LOCAL_MODEL

    texts = [f"第{i}段：" + "龙井茶产于杭州西湖，Longjing tea is pan-fired. " * 12
             for i in range(2000)]
    body = _json.dumps({"model": LOCAL_MODEL, "input": texts}).encode()
    host, port = server.url.removeprefix("http://").split(":")

    def send_and_leave(payload: bytes) -> None:
        with socket.create_connection((host, int(port))) as s:
            s.sendall(b"POST /api/embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      b"application/json\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
            time.sleep(0.5)  # long enough to be queued or started, then the client is gone

    send_and_leave(body)
    small = _json.dumps({"model": LOCAL_MODEL, "input": "你好"}).encode()
    for _ in range(8):
        send_and_leave(small)
    deadline = time.monotonic() + 60  # the whole large request would take minutes
    while server.engine.busy(LOCAL_MODEL) or server.engine.waiting:
        assert time.monotonic() < deadline, "the embedder is still held by clients that left"
        time.sleep(0.1)
    r = httpx.post(f"{server.url}/api/embed", json={"model": LOCAL_MODEL, "input": ["还在吗"]},
                   timeout=60)
    assert r.status_code == 200 and len(r.json()["embeddings"]) == 1
