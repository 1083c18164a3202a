"""`dskit serve` against hostile requests: web pages from other sites, values that overflow or
have the wrong type, fuzzed bodies on every endpoint, a client that leaves while its prompt is
evaluated, and an internal error that must not break the connection. A real server on
127.0.0.1 with the real embedded models."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dskit as ds
from dskit.backends.base import ChatRequest, Event
from dskit.backends.embedded import EmbeddedBackend

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"
EVIL = "https://evil.example"
FEW = {"num_predict": 4, "seed": 1}
#: Every route, with the method it answers.
ENDPOINTS = [("GET", "/"), ("GET", "/api/version"), ("GET", "/api/tags"), ("GET", "/api/ps"),
             ("POST", "/api/show"), ("POST", "/api/chat"), ("POST", "/api/generate"),
             ("POST", "/api/embed"), ("POST", "/api/embeddings"), ("POST", "/api/pull"),
             ("DELETE", "/api/delete"), ("GET", "/v1/models"), ("GET", f"/v1/models/{SMALL}"),
             ("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings")]


@pytest.fixture(scope="module")
def server(embedded: EmbeddedBackend) -> Iterator[ds.serve.Server]:
    srv = ds.serve.start(port=0, backend=embedded, max_queue=4)
    yield srv
    srv.stop()


def wait_idle(server: ds.serve.Server, model: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while server.engine.busy(model):
        assert time.monotonic() < deadline, f"{model} still busy after {seconds} s"
        time.sleep(0.02)


def loaded(server: ds.serve.Server) -> list[str]:
    r = httpx.get(server.url + "/api/ps", timeout=30)
    assert r.status_code == 200
    return [m["name"] for m in r.json()["models"]]


# --- a web page must not drive the server ------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_foreign_page_is_refused_on_every_endpoint(server: ds.serve.Server, method: str,
                                                     path: str) -> None:
    # What a page's fetch() sends without a preflight: a "simple" text/plain request.
    body = json.dumps({"model": SMALL, "prompt": "hi", "messages": [
        {"role": "user", "content": "hi"}], "input": "hi"}).encode()
    r = httpx.request(method, server.url + path, timeout=30, content=body, headers={
        "Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8"})
    assert r.status_code == 403 and "may not use this server" in r.text
    assert "access-control-allow-origin" not in r.headers
    preflight = httpx.options(server.url + path, timeout=30, headers={
        "Origin": EVIL, "Access-Control-Request-Method": method})
    assert preflight.status_code == 403


def test_a_simple_cross_site_request_cannot_unload_a_model(server: ds.serve.Server) -> None:
    assert httpx.post(server.url + "/api/generate", timeout=120,
                      json={"model": SMALL}).json()["done_reason"] == "load"
    unload = json.dumps({"model": SMALL, "keep_alive": 0})
    for origin in (EVIL, "null", "http://localhost.evil.example", "http://127.0.0.1.nip.io"):
        r = httpx.post(server.url + "/api/generate", content=unload, timeout=30,
                       headers={"Origin": origin, "Content-Type": "text/plain"})
        assert r.status_code == 403, origin
        assert SMALL in loaded(server)  # nothing ran
    # The same request from a page on this machine is served (and may read the answer).
    r = httpx.post(server.url + "/api/generate", content=unload, timeout=60,
                   headers={"Origin": "http://localhost:8888", "Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json()["done_reason"] == "unload"
    assert r.headers["access-control-allow-origin"] == "http://localhost:8888"
    assert SMALL not in loaded(server)


def test_allowed_origins_and_requests_without_one(embedded: EmbeddedBackend) -> None:
    with ds.serve.start(port=0, backend=embedded, origins=["https://my.app"]) as srv:
        for origin in ("http://localhost:5173", "http://127.0.0.1", "http://[::1]:3000",
                       "app://obsidian.md", "tauri://localhost", "vscode-webview://x1",
                       "https://my.app"):
            r = httpx.get(srv.url + "/api/version", headers={"Origin": origin}, timeout=30)
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
        preflight = httpx.options(srv.url + "/api/chat", timeout=30, headers={
            "Origin": "https://my.app", "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200
        assert httpx.get(srv.url + "/api/tags", timeout=30).status_code == 200  # curl, SDKs
        assert httpx.get(srv.url + "/api/tags", headers={"Origin": "https://other.app"},
                         timeout=30).status_code == 403


def test_an_allowed_page_can_read_why_it_was_refused(embedded: EmbeddedBackend) -> None:
    with ds.serve.start(port=0, backend=embedded, token="a-token-for-tests") as srv:
        r = httpx.get(srv.url + "/api/tags", headers={"Origin": "http://localhost:5173"},
                      timeout=30)
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == "http://localhost:5173"


# --- values that overflow or have the wrong type -------------------------------------------------

@pytest.mark.parametrize("keep_alive", ["1e12", '"99999999h"', "9" * 400, "9.3e18"])
def test_a_huge_keep_alive_is_clamped_and_ps_keeps_working(server: ds.serve.Server,
                                                           keep_alive: str) -> None:
    body = f'{{"model": "{SMALL}", "keep_alive": {keep_alive}}}'
    r = httpx.post(server.url + "/api/generate", content=body, timeout=120)
    assert r.status_code == 200 and r.json()["done_reason"] == "load"
    ps = httpx.get(server.url + "/api/ps", timeout=30)
    assert ps.status_code == 200
    row = next(m for m in ps.json()["models"] if m["name"] == SMALL)
    # Clamped to Go's largest Duration, as Ollama clamps: about 292 years from now.
    assert 2300 < int(row["expires_at"][:4]) < 2330
    httpx.post(server.url + "/api/generate", json={"model": SMALL, "keep_alive": "5m"},
               timeout=60)


BAD_BODIES = [
    ("/api/chat", '{"model": "m", "messages": ' + "[" * 50_000 + "]" * 50_000 + "}",
     "nested too deeply"),
    ("/api/generate", '{"model": "m", "options": {"seed": ' + "9" * 5000 + "}}",
     "invalid JSON"),
    ("/api/generate", f'{{"model": "{SMALL}", "prompt": "x", "options": {{"temperature": NaN}}}}',
     "NaN is not valid JSON"),
    ("/api/chat", f'{{"model": "{SMALL}", "keep_alive": Infinity}}', "Infinity is not valid"),
    ("/api/generate", f'{{"model": "{SMALL}", "prompt": "x", "options": {{"top_p": 1e999}}}}',
     "too large"),
    ("/api/generate", f'{{"model": "{SMALL}", "prompt": "hi", "stream": "false"}}',
     '"stream" must be true or false, not "false"'),
    ("/api/chat", f'{{"model": "{SMALL}", "messages": "hi"}}', '"messages" must be a list'),
    ("/api/chat", f'{{"model": "{SMALL}", "messages": [{{"role": {"[" * 900}{"]" * 900}}}]}}',
     "invalid message role a list"),
    ("/api/generate", f'{{"model": "{SMALL}", "prompt": "x", "options": "fast"}}',
     '"options" must be a JSON object'),
    ("/api/generate", f'{{"model": "{SMALL}", "prompt": "x", "options": {{"num_predict": 1.5}}}}',
     "whole number"),
    ("/api/generate", f'{{"model": "{SMALL}", "prompt": "x", "options": {{"top_k": 1{"0" * 30}}}}}',
     "out of range"),
    ("/api/generate", f'{{"model": "{SMALL}", "prompt": "x", "options": {{"temperature": 1e39}}}}',
     "out of range"),
    ("/api/generate", f'{{"model": "{SMALL}", "prompt": "x", "options": {{"seed": [1]}}}}',
     "must be a number"),
    ("/api/generate", f'{{"model": "{SMALL}", "keep_alive": "{"9" * 500}h"}}',
     "invalid keep_alive"),
    ("/api/generate", f'{{"model": "{SMALL}", "keep_alive": true}}', '"keep_alive" must be'),
    ("/api/chat", f'{{"model": "{SMALL}", "messages": [], "think": 5}}', '"think" must be'),
    ("/api/embed", '{"model": "all-minilm", "input": "x", "truncate": "no"}', '"truncate"'),
    ("/api/pull", f'{{"model": "{SMALL}", "stream": 0}}', '"stream" must be true or false'),
    ("/api/show", '{"model": 5}', '"model" must be a string'),
    ("/v1/chat/completions", f'{{"model": "{SMALL}", "messages": [], "stream": "true"}}',
     '"stream" must be true or false'),
    ("/v1/chat/completions", f'{{"model": "{SMALL}", "messages": [], "max_tokens": "10"}}',
     '"max_tokens" must be a whole number'),
    ("/v1/embeddings", '{"model": "all-minilm", "input": "x", "dimensions": 2.5}',
     '"dimensions" must be a whole number'),
    ("/api/chat", f'{{"model": "{SMALL}", "messages": [], "logprobs": "yes"}}',
     '"logprobs" must be true or false, not "yes"'),
    ("/v1/chat/completions", f'{{"model": "{SMALL}", "messages": [], "logprobs": 1}}',
     '"logprobs" must be true or false'),
    # top_logprobs without logprobs is OpenAI's 400 (Ollama's shape takes it as asking for them)
    ("/v1/chat/completions", f'{{"model": "{SMALL}", "messages": [{{"role": "user", '
     f'"content": "你好"}}], "top_logprobs": 3}}', 'top_logprobs needs "logprobs": true'),
    ("/v1/chat/completions", f'{{"model": "{SMALL}", "messages": [{{"role": "user", '
     f'"content": "你好"}}], "logprobs": false, "top_logprobs": 0}}', "send both"),
]
#: What every refused `top_logprobs` is told.
TOP_LOGPROBS = "top_logprobs must be a whole number from 0 to 20"
BAD_BODIES += [
    (path, json.dumps({"model": SMALL, "logprobs": True, "top_logprobs": top, **extra}),
     TOP_LOGPROBS)
    for top in (-1, 21, "5", True, 2.5, 10**30)
    for path, extra in (("/api/chat", {"messages": [{"role": "user", "content": "你好"}]}),
                        ("/api/generate", {"prompt": "你好"}),
                        ("/v1/chat/completions", {"messages": [{"role": "user",
                                                                "content": "你好"}]}))]


@pytest.mark.parametrize(("path", "body", "words"), BAD_BODIES)
def test_bad_values_get_a_400_with_a_message(server: ds.serve.Server, path: str, body: str,
                                             words: str) -> None:
    r = httpx.post(server.url + path, content=body.encode(), timeout=60)
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    message = error["message"] if isinstance(error, dict) else error
    assert words in message
    if words == TOP_LOGPROBS:  # the value is shown back, short and JSON-quoted
        assert message.endswith(f"not {json.dumps(json.loads(body)['top_logprobs'])}") or \
            message.endswith("not a number that large")


@pytest.mark.parametrize(("digits", "status"), [(19, b"413"), (5000, b"400")])
def test_a_huge_content_length_is_refused(server: ds.serve.Server, digits: int,
                                          status: bytes) -> None:
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                     + b"9" * digits + b"\r\n\r\n{}")
        assert sock.recv(100).split(b" ")[1] == status


class _Flaky:
    """The real embedded backend whose model listing fails once (an internal error that no
    request can provoke on purpose)."""

    def __init__(self, inner: EmbeddedBackend) -> None:
        self.inner = inner
        self.failures = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_models(self) -> list[str]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("injected failure")
        return self.inner.list_models()


def test_a_500_does_not_break_the_clients_connection(embedded: EmbeddedBackend) -> None:
    with ds.serve.start(port=0, backend=_Flaky(embedded)) as srv:
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
        conn.request("GET", "/api/tags")
        first = conn.getresponse()
        assert first.status == 500
        assert json.loads(first.read()) == {"error": "internal error: RuntimeError"}
        sock = conn.sock
        assert sock is not None
        conn.request("GET", "/api/tags")  # the same keep-alive connection
        second = conn.getresponse()
        assert second.status == 200 and SMALL in second.read().decode()
        assert conn.sock is sock  # not reconnected: the first connection stayed usable
        conn.close()


# --- a client that leaves while its prompt is evaluated -----------------------------------------

def test_a_client_leaving_during_prompt_evaluation_frees_the_model(
        server: ds.serve.Server, embedded: EmbeddedBackend) -> None:
    llm = embedded.load(QWEN).llm
    # A short reply first: the cache then holds a short prompt, so any count above 200 below
    # comes from evaluating the long one.
    httpx.post(server.url + "/api/chat", timeout=120, json={
        "model": QWEN, "stream": False, "options": FEW,
        "messages": [{"role": "user", "content": "hi"}]})
    assert llm.n_tokens < 100
    vocabulary = ["river", "mountain", "lantern", "orchard", "harbour", "meadow", "violin",
                  "copper", "glacier", "thunder", "pebble", "saddle", "compass", "willow"]
    rng = random.Random(3000)  # seeded: unseeded draws sometimes tokenized past the window
    words = " ".join(rng.choice(vocabulary) for _ in range(3000))
    long_prompt = f"Put these words in alphabetical order: {words}"
    total = len(llm.tokenize(long_prompt.encode()))
    assert 2500 < total < 3900  # long, and within the 4096-token window
    body = json.dumps({"model": QWEN, "messages": [{"role": "user", "content": long_prompt}],
                       "options": {"num_predict": 8}}).encode()
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                 b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    deadline = time.monotonic() + 120
    while llm.n_tokens < 200:  # the prompt is being evaluated, batch by batch
        assert time.monotonic() < deadline, "the long prompt never started"
        time.sleep(0.01)
    sock.close()  # the client leaves before the first token
    wait_idle(server, QWEN)
    # Abandoned between two batches: most of the prompt was never evaluated.
    assert 200 <= llm.n_tokens < total // 2
    r = httpx.post(server.url + "/api/chat", timeout=120, json={
        "model": QWEN, "stream": False, "options": FEW,
        "messages": [{"role": "user", "content": "1+1="}]})
    assert r.status_code == 200 and r.json()["done"]


# --- fuzzing: generated bodies on every endpoint --------------------------------------------------

class _Short:
    """The real embedded backend with replies cut to a few tokens, so the fuzz stays quick."""

    def __init__(self, inner: EmbeddedBackend) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        request.options.max_tokens = min(request.options.max_tokens, 4)
        return self.inner.stream(request)


@pytest.fixture(scope="module")
def fuzzed(embedded: EmbeddedBackend) -> Iterator[tuple[ds.serve.Server, httpx.Client]]:
    srv = ds.serve.start(port=0, backend=_Short(embedded), models=[SMALL], max_queue=2)
    # One keep-alive client for every example: an error must not break its connection.
    with httpx.Client(base_url=srv.url, timeout=120) as client:
        yield srv, client
    srv.stop()


SCALAR = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
          allow_infinity=False) | st.text(max_size=12)
          | st.sampled_from([2**63, -(2**63) - 1, 10**400, 1e300, -1e300, 3.5e38, ""]))
ANY = st.recursive(SCALAR, lambda kids: st.lists(kids, max_size=3)
                   | st.dictionaries(st.text(max_size=8), kids, max_size=3), max_leaves=8)
MODEL = st.sampled_from([SMALL, "all-minilm", "smollm2:135m:latest", "nope:1b", "", "../x"]) | ANY
TEXT = st.text(max_size=30) | ANY
OPTION_NAMES = ["temperature", "top_p", "seed", "num_predict", "num_ctx", "top_k", "min_p",
                "repeat_penalty", "mirostat", "mirostat_tau", "stop", "num_gpu", "unknown"]
OPTIONS = st.dictionaries(st.sampled_from(OPTION_NAMES), SCALAR | st.lists(TEXT, max_size=2),
                          max_size=4) | ANY
MESSAGES = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "developer", "x"]) | ANY},
    optional={"content": TEXT | st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url"]) | ANY}, optional={"text": TEXT})),
        "images": ANY, "thinking": TEXT}), max_size=3) | ANY
KEEP = st.sampled_from([0, -1, "5m", "1h30m", 1e12, "99999999h", "-1s", "bogus", "inf"]) | ANY
FLAG = st.booleans() | ANY
TOP = st.integers(-2, 22) | ANY
THINK = st.sampled_from([True, False, "high", "none"]) | ANY
COUNT = st.integers(-5, 600) | ANY


def _fields(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


BODIES: dict[str, st.SearchStrategy[Any]] = {
    "/api/chat": _fields(model=MODEL, messages=MESSAGES, options=OPTIONS, keep_alive=KEEP,
                         stream=FLAG, think=THINK, format=ANY, tools=ANY, logprobs=FLAG,
                         top_logprobs=TOP),
    "/api/generate": _fields(model=MODEL, prompt=TEXT, system=TEXT, options=OPTIONS,
                             keep_alive=KEEP, stream=FLAG, think=THINK, raw=FLAG, suffix=TEXT,
                             images=ANY, context=ANY, logprobs=FLAG, top_logprobs=TOP),
    "/api/show": _fields(model=MODEL, name=MODEL, verbose=FLAG),
    "/api/embed": _fields(model=MODEL, input=TEXT | st.lists(TEXT, max_size=3),
                          truncate=FLAG, dimensions=COUNT, keep_alive=KEEP),
    "/api/embeddings": _fields(model=MODEL, prompt=TEXT, keep_alive=KEEP),
    "/api/pull": _fields(model=MODEL, name=MODEL, stream=FLAG, insecure=FLAG),
    "/v1/chat/completions": _fields(
        model=MODEL, messages=MESSAGES, stream=FLAG, max_tokens=COUNT, temperature=SCALAR,
        top_p=SCALAR, seed=SCALAR, stop=TEXT | st.lists(TEXT, max_size=2), n=COUNT,
        stream_options=ANY, response_format=ANY, reasoning_effort=THINK, reasoning=ANY,
        tools=ANY, logprobs=FLAG, top_logprobs=TOP),
    "/v1/embeddings": _fields(model=MODEL, input=TEXT | st.lists(TEXT, max_size=3),
                              encoding_format=st.sampled_from(["float", "base64"]) | ANY,
                              dimensions=COUNT),
}


def _valid(required: dict[str, Any], **optional: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


# Well-formed requests with edge values where the types allow them: they reach the engine and
# the model (sampling settings at the ends of their ranges, odd keep-alives, two-phase
# reasoning), where the purely random bodies above are refused at the door.
NUMBER = (st.integers(-3, 3) | st.floats(-2, 2) | st.sampled_from(
    [0, -1, 2**31, 2**62, -(2**62), 1e30, -1e30, 3.4e38, 1e-30]))
GOOD_OPTIONS = st.dictionaries(st.sampled_from(OPTION_NAMES), NUMBER, max_size=4) | \
    st.fixed_dictionaries({}, optional={"stop": st.lists(st.text(max_size=3), max_size=2),
                                        "num_predict": st.integers(-2, 4)})
GOOD_MESSAGES = st.lists(st.fixed_dictionaries({
    "role": st.sampled_from(["user", "system", "assistant", "tool", "developer"]),
    "content": st.text(max_size=30)}), min_size=1, max_size=3)
GOOD_KEEP = st.sampled_from([None, "5m", "10s", -1, 1e12, "99999999h", 3600.5])
VALID: dict[str, st.SearchStrategy[Any]] = {
    "/api/chat": _valid({"model": st.just(SMALL), "messages": GOOD_MESSAGES},
                        options=GOOD_OPTIONS, keep_alive=GOOD_KEEP, stream=st.booleans(),
                        think=st.sampled_from([True, False, "low", None]),
                        logprobs=st.booleans(), top_logprobs=st.integers(0, 20)),
    "/api/generate": _valid({"model": st.just(SMALL), "prompt": st.text(max_size=30)},
                            system=st.text(max_size=20), options=GOOD_OPTIONS,
                            keep_alive=GOOD_KEEP, stream=st.booleans(),
                            think=st.sampled_from([True, False, None]),
                            logprobs=st.booleans(), top_logprobs=st.integers(0, 20)),
    "/api/show": _valid({"model": st.sampled_from([SMALL, "all-minilm", QWEN])}),
    "/api/embed": _valid({"model": st.just("all-minilm"),
                          "input": st.text(max_size=30) | st.lists(st.text(max_size=20),
                                                                   max_size=3)},
                         truncate=st.booleans(), dimensions=st.integers(-2, 400),
                         keep_alive=GOOD_KEEP),
    "/api/embeddings": _valid({"model": st.just("all-minilm"), "prompt": st.text(max_size=30)}),
    "/api/pull": _valid({"model": st.sampled_from([SMALL, "all-minilm", "deepseek-r1:7b"])},
                        stream=st.booleans()),
    "/v1/chat/completions": _valid(
        {"model": st.just(SMALL), "messages": GOOD_MESSAGES}, stream=st.booleans(),
        max_tokens=st.integers(-2, 4), temperature=NUMBER, top_p=NUMBER,
        seed=st.integers(-(2**63), 2**63 - 1), stop=st.text(max_size=3),
        presence_penalty=NUMBER, frequency_penalty=NUMBER,
        stream_options=st.fixed_dictionaries({"include_usage": st.booleans()}),
        reasoning_effort=st.sampled_from(["none", "low", "high"]), logprobs=st.just(True),
        top_logprobs=st.integers(0, 20)),
    "/v1/embeddings": _valid({"model": st.just("all-minilm"),
                              "input": st.text(max_size=30) | st.lists(st.text(max_size=20),
                                                                       max_size=3)},
                             encoding_format=st.sampled_from(["float", "base64"]),
                             dimensions=st.integers(-2, 400)),
}


@pytest.mark.parametrize("path", list(BODIES))
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_fuzzed_bodies_never_get_a_5xx(fuzzed: tuple[ds.serve.Server, httpx.Client], path: str,
                                       data: st.DataObject) -> None:
    _, client = fuzzed
    body = data.draw(st.one_of(VALID[path], VALID[path], BODIES[path], ANY), label="body")
    r = client.post(path, content=json.dumps(body).encode())
    assert r.status_code < 500, r.text[:500]
    if r.status_code >= 400:  # a typed error in the API's own shape, saying what is wrong
        error = r.json()["error"]
        assert (error["message"] if path.startswith("/v1/") else error)
    assert client.get("/api/version").status_code == 200  # still answering, same connection


def test_the_fuzzed_server_still_serves_a_real_request(
        fuzzed: tuple[ds.serve.Server, httpx.Client]) -> None:
    srv, client = fuzzed
    r = client.post("/api/chat", json={"model": SMALL, "stream": False, "options": FEW,
                                       "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.json()["done"]
    assert not srv.engine.busy(SMALL) and srv.engine.waiting == 0
    assert srv.running
