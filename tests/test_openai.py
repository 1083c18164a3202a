"""The OpenAI-compatible backend: against a real llama-cpp-python server, then recorded shapes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dskit.backends.base import Backend, ChatRequest, Delta, Done, Options
from dskit.backends.openai import OpenAIBackend, normalise_base_url
from dskit.client import Client, connect
from dskit.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    ModelNotFound,
    RateLimited,
    ServerError,
    StreamInterrupted,
)
from dskit.reasoning.plan import ReasoningPlan
from dskit.weights.files import model_path
from tests.rawhttp import send_bytes, stop_while_reading

SECRET = "sk-test-SECRET123"
ENV_VARS = ("DSKIT_OPENAI_BASE_URL", "OPENAI_BASE_URL", "DSKIT_OPENAI_API_KEY", "OPENAI_API_KEY",
            "DEEPSEEK_API_KEY", "DSKIT_MODEL", "DSKIT_BACKEND", "MY_KEY")
SERVED_NAME = "smollm2:135m"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys or URLs from the developer's shell must not leak into these tests."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- (1) a real OpenAI-compatible server: llama-cpp-python's own -------------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `python -m llama_cpp.server` on the small GGUF; yield its /v1 base URL."""
    gguf = model_path(SERVED_NAME)
    port = _free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
           "--model_alias", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "2048", "--n_threads", "2"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready after 120 s:\n{_tail(log)}")
            time.sleep(0.5)
        yield base
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server died during the tests ({proc.returncode}):\n"
                        f"{_tail(log)}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _tail(path: Path, n: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture(scope="module")
def real(llama_server: str) -> Client:
    return connect("openai", base_url=llama_server, set_default=False)


GEN = {"max_tokens": 32, "temperature": 0, "seed": 1}


def test_real_list_models_describe_default(real: Client, llama_server: str) -> None:
    assert real.models() == [SERVED_NAME]
    assert real.default_model == SERVED_NAME
    info = real.backend.describe()
    assert info == {"backend": "openai", "base_url": llama_server, "api_key": "not set",
                    "models": [SERVED_NAME]}
    assert isinstance(real.backend, Backend)


def test_real_chat(real: Client) -> None:
    reply = real.chat("Say hello", model=SERVED_NAME, **GEN)
    assert reply.answer.strip()
    assert reply.thinking == ""
    assert (reply.backend, reply.model) == ("openai", SERVED_NAME)
    assert reply.done_reason in ("stop", "length")
    s = reply.stats
    assert s.eval_tokens and s.eval_tokens > 1
    assert s.eval_time and s.eval_time > 0
    assert s.tokens_per_s and s.tokens_per_s > 0
    assert s.ttft is not None and s.total_time is not None and s.ttft <= s.total_time
    assert s.answer_tokens and s.thinking_tokens == 0


def test_real_seed_reaches_the_server(real: Client) -> None:
    sampled = {"max_tokens": 12, "temperature": 1.0, "seed": 7}
    a = real.chat("Name a colour.", model=SERVED_NAME, **sampled)
    b = real.chat("Name a colour.", model=SERVED_NAME, **sampled)
    assert a.answer and a.answer == b.answer


def test_real_stream(real: Client) -> None:
    s = real.chat("Say hello", model=SERVED_NAME, stream=True, **GEN)
    chunks = list(s)
    assert len(chunks) > 1
    assert {c.kind for c in chunks} == {"answer"}
    assert "".join(c.text for c in chunks).strip() == s.reply.answer
    assert s.reply.answer and s.reply.stats.tokens_per_s


def test_real_stream_stopped_early_frees_the_server(real: Client) -> None:
    s = real.chat("Count from one to fifty in words.", model=SERVED_NAME, stream=True,
                  max_tokens=64, temperature=0)
    for _ in s:
        s.stop()
    assert s.reply.done_reason == "stopped" and s.reply.answer
    # The closed response must not leave the single-slot server busy.
    again = real.chat("Say hi", model=SERVED_NAME, max_tokens=8, temperature=0)
    assert again.answer


def test_real_conversation(real: Client) -> None:
    conv = real.conversation(SERVED_NAME, max_tokens=24, temperature=0, seed=1)
    first = conv.send("My name is Ada. Say hello to me.")
    second = conv.send("What is my name?")
    assert first.answer and second.answer
    assert [m["role"] for m in conv.history] == ["user", "assistant", "user", "assistant"]
    assert conv.history[1]["content"] == first.answer


def test_real_chinese_prompt(real: Client) -> None:
    reply = real.chat("用一句话介绍你自己", model=SERVED_NAME, **GEN)
    assert reply.answer.strip()
    assert "\ufffd" not in reply.answer  # multi-byte characters arrive whole


def test_real_unknown_model_is_served_by_default(real: Client) -> None:
    # llama-cpp-python answers any model name with its only model; no ModelNotFound here.
    assert real.chat("Say hi", model="whatever", max_tokens=4, temperature=0).answer


# -- (2) recorded shapes a local server cannot produce on demand -------------------------------


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
           usage: dict[str, Any] | None = None, model: str = "m") -> dict[str, Any]:
    c: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                         "model": model,
                         "choices": [] if delta is None and finish is None else
                         [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    if usage is not None:
        c["usage"] = usage
    return c


def _sse(*events: dict[str, Any] | str, done: bool = True) -> str:
    body = "".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events)
    return body + ("data: [DONE]\n\n" if done else "")


@pytest.fixture
def server(httpserver_ipv4: Any) -> Any:
    """pytest-httpserver bound to 127.0.0.1."""
    return httpserver_ipv4


def _serve_stream(server: Any, body: str) -> None:
    server.expect_request("/v1/chat/completions", method="POST").respond_with_data(
        body, content_type="text/event-stream")


def _client(server: Any, **kwargs: Any) -> Client:
    return connect("openai", base_url=server.url_for("/v1"), set_default=False, **kwargs)


def _sent(server: Any, path: str = "/v1/chat/completions") -> Any:
    return next(req for req, _ in server.log if req.path == path)


DEEPSEEK_USAGE = {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 30}}


def test_deepseek_reasoning_content_shape(server: Any) -> None:
    _serve_stream(server, _sse(
        _chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
        _chunk({"content": None, "reasoning_content": "9.11 < 9.8 because"}),
        _chunk({"content": None, "reasoning_content": " 0.11 < 0.8."}),
        _chunk({"content": "9.8 is", "reasoning_content": None}),
        _chunk({"content": " greater.", "reasoning_content": None}),
        _chunk({"content": "", "reasoning_content": None}, finish="stop"),
        _chunk(usage=DEEPSEEK_USAGE),
    ))
    client = _client(server, model="deepseek-reasoner")
    reply = client.chat("9.11 and 9.8, which is greater?", max_tokens=64,
                        options={"frequency_penalty": 0.5})
    assert reply.thinking == "9.11 < 9.8 because 0.11 < 0.8."
    assert reply.answer == "9.8 is greater."
    assert reply.reasoned and reply.done_reason == "stop" and reply.status == "ok"
    s = reply.stats
    assert (s.prompt_tokens, s.eval_tokens, s.thinking_tokens, s.answer_tokens) == (12, 40, 30, 10)
    assert s.eval_time and s.eval_time > 0 and s.tokens_per_s
    body = json.loads(_sent(server).get_data())
    assert body["model"] == "deepseek-reasoner" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 64 and body["frequency_penalty"] == 0.5
    assert body["messages"] == [{"role": "user", "content": "9.11 and 9.8, which is greater?"}]
    assert "seed" not in body and "stop" not in body


def test_deepseek_stream_chunks_are_tagged(server: Any) -> None:
    _serve_stream(server, _sse(
        _chunk({"role": "assistant", "content": None, "reasoning_content": "think"}),
        _chunk({"content": "answer", "reasoning_content": None}, finish="stop"),
    ))
    s = _client(server, model="deepseek-reasoner").chat("q", stream=True)
    assert [(c.kind, c.text) for c in s] == [("thinking", "think"), ("answer", "answer")]


def test_ollama_v1_reasoning_shape(server: Any) -> None:
    _serve_stream(server, _sse(
        _chunk({"role": "assistant", "content": "", "reasoning": "Okay,"}),
        _chunk({"content": "", "reasoning": " the user greets me."}),
        _chunk({"content": "Hello"}),
        _chunk({"content": " there!"}),
        _chunk({"content": ""}, finish="stop"),
        _chunk(usage={"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}),
    ))
    reply = _client(server).chat("hi", model="deepseek-r1:7b", seed=3, stop=["\n\n\n"])
    assert (reply.thinking, reply.answer) == ("Okay, the user greets me.", "Hello there!")
    assert reply.stats.eval_tokens == 9 and reply.stats.prompt_tokens == 5
    body = json.loads(_sent(server).get_data())
    # DeepSeek's R1 recommendations reach the wire.
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.6, 0.95, 3)
    assert body["stop"] == ["\n\n\n"]


@pytest.mark.parametrize(("model", "pieces"), [
    ("some-model", ["<th", "ink>\nLet me", " think.</thi", "nk>\n\nHello", "!"]),
    # R1 distills whose template injects the opening tag: the output starts inside reasoning.
    ("deepseek-r1-distill-qwen-7b", ["Let me think.", "</think>", "\n\nHello!"]),
])
def test_inline_think_tags_in_content(server: Any, model: str, pieces: list[str]) -> None:
    _serve_stream(server, _sse(*[_chunk({"content": p}) for p in pieces],
                               _chunk({}, finish="stop")))
    reply = _client(server).chat("hi", model=model)
    assert (reply.thinking, reply.answer) == ("Let me think.", "Hello!")


def test_backend_events_and_prefix(server: Any) -> None:
    _serve_stream(server, _sse(_chunk({"content": "<think>a</think>b"}), _chunk({}, "length")))
    backend = OpenAIBackend(base_url=server.url_for("/v1"))
    events = list(backend.stream(ChatRequest("m", [{"role": "user", "content": "q"}],
                                             Options(max_tokens=5),
                                             ReasoningPlan(prefix="<think>\n"))))
    assert events[0] == Delta("raw", "<think>a</think>b")
    done = events[-1]
    assert isinstance(done, Done) and done.done_reason == "length" and done.prefixed is False
    assert done.stats.eval_tokens == 1  # no usage sent: counted from the stream


def test_server_ignoring_stream_answers_in_json(server: Any) -> None:
    server.expect_request("/v1/chat/completions").respond_with_json({
        "id": "x", "object": "chat.completion", "model": "deepseek-reasoner",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "reasoning_content": "Hmm.",
                                 "content": "Hi!"}}],
        "usage": DEEPSEEK_USAGE})
    reply = _client(server).chat("hi", model="deepseek-reasoner", options={"stream": False})
    assert (reply.thinking, reply.answer, reply.done_reason) == ("Hmm.", "Hi!", "stop")
    assert reply.stats.thinking_tokens == 30
    assert json.loads(_sent(server).get_data())["stream"] is True  # extras cannot break SSE


def test_list_models_and_default_model(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server.expect_request("/v1/models").respond_with_json(
        {"object": "list", "data": [{"id": "deepseek-chat"}, {"id": "deepseek-reasoner"}]})
    backend = OpenAIBackend(base_url=server.url_for("/"))  # a bare host gets /v1
    assert backend.list_models() == ["deepseek-chat", "deepseek-reasoner"]
    assert backend.default_model == "deepseek-chat"
    monkeypatch.setenv("DSKIT_MODEL", "from-env")
    assert backend.default_model == "from-env"
    assert OpenAIBackend(base_url=server.url_for("/v1"), model="given").default_model == "given"
    assert backend.model_details("deepseek-reasoner") == {"reasoning": True}
    assert backend.model_details("llama3") == {}


SECRET_BODY = {"error": {"message": f"Incorrect API key provided: {SECRET}.",
                         "type": "invalid_request_error", "code": "invalid_api_key"}}


@pytest.mark.parametrize("status", [401, 403])
def test_auth_error_never_shows_the_key(server: Any, monkeypatch: pytest.MonkeyPatch,
                                        status: int) -> None:
    monkeypatch.setenv("DSKIT_OPENAI_API_KEY", SECRET)
    server.expect_request("/v1/chat/completions").respond_with_json(SECRET_BODY, status=status)
    server.expect_request("/v1/models").respond_with_json(SECRET_BODY, status=status)
    client = _client(server, model="deepseek-reasoner")
    with pytest.raises(AuthenticationError) as info:
        client.chat("hi")
    exc = info.value
    assert exc.status == status
    assert "DSKIT_OPENAI_API_KEY" in str(exc) and "***" in str(exc)
    assert _sent(server).headers["Authorization"] == f"Bearer {SECRET}"  # it was sent
    described = client.backend.describe()
    assert described["api_key"] == "set" and "error" in described
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(client),
             repr(client.backend), str(client.backend), str(described),
             str(vars(client.backend))]
    assert "api_key=***" in repr(client.backend)
    for text in shown:
        assert SECRET not in text


def test_auth_error_without_key_says_what_to_set(server: Any) -> None:
    server.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "Authentication Fails", "type": "authentication_error"}},
        status=401)
    backend = OpenAIBackend(base_url=server.url_for("/v1"), api_key_env="MY_KEY")
    assert "api_key=None" in repr(backend)
    with pytest.raises(AuthenticationError, match="no API key is set: set one of MY_KEY, "
                                                   "DSKIT_OPENAI_API_KEY"):
        list(backend.stream(ChatRequest("m", [{"role": "user", "content": "q"}])))


@pytest.mark.parametrize(("kwargs", "env", "expected"), [
    ({"api_key": "explicit"}, {"MY_KEY": "named", "DSKIT_OPENAI_API_KEY": "d"}, "explicit"),
    ({"api_key_env": "MY_KEY"}, {"MY_KEY": "named", "DSKIT_OPENAI_API_KEY": "d"}, "named"),
    ({"api_key_env": "MY_KEY"}, {"DSKIT_OPENAI_API_KEY": "d", "OPENAI_API_KEY": "o"}, "d"),
    ({}, {"OPENAI_API_KEY": "o", "DEEPSEEK_API_KEY": "ds"}, "o"),
    ({}, {"DEEPSEEK_API_KEY": "ds"}, "ds"),
    ({}, {}, None),
])
def test_api_key_precedence(server: Any, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, str],
                            env: dict[str, str], expected: str | None) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    server.expect_request("/v1/models").respond_with_json({"data": []})
    backend = OpenAIBackend(base_url=server.url_for("/v1"), **kwargs)
    backend.list_models()
    auth = _sent(server, "/v1/models").headers.get("Authorization")
    assert auth == (f"Bearer {expected}" if expected else None)
    assert backend.describe()["api_key"] == ("set" if expected else "not set")


def test_rate_limited_mentions_retry_after(server: Any) -> None:
    server.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}, status=429,
        headers={"Retry-After": "7"})
    with pytest.raises(RateLimited, match="retry after 7 s") as info:
        _client(server).chat("hi", model="m")
    assert info.value.status == 429 and "Rate limit reached" in str(info.value)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_carry_the_message(server: Any, status: int) -> None:
    server.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "CUDA out of memory", "type": "InternalServerError"}},
        status=status)
    with pytest.raises(ServerError, match="CUDA out of memory") as info:
        _client(server).chat("hi", model="m")
    assert info.value.status == status


def test_plain_text_server_error(server: Any) -> None:
    server.expect_request("/v1/chat/completions").respond_with_data(
        "upstream connect error", status=502, content_type="text/plain")
    with pytest.raises(ServerError, match=r"502.*upstream connect error"):
        _client(server).chat("hi", model="m")


def test_unknown_model(server: Any) -> None:
    server.expect_request("/v1/chat/completions").respond_with_json(
        {"object": "error", "message": "The model `deepseek-r1:1000b` does not exist.",
         "type": "NotFoundError", "param": None, "code": 404}, status=404)
    server.expect_request("/v1/models").respond_with_json(
        {"data": [{"id": "deepseek-ai/DeepSeek-R1"}]})
    with pytest.raises(ModelNotFound) as info:
        _client(server).chat("hi", model="deepseek-r1:1000b")
    exc = info.value
    assert (exc.model, exc.backend, exc.available) == ("deepseek-r1:1000b", "openai",
                                                       ["deepseek-ai/DeepSeek-R1"])
    assert "deepseek-ai/DeepSeek-R1" in str(exc)


def test_wrong_path_says_check_base_url(server: Any) -> None:
    server.expect_request("/api/chat/completions").respond_with_data("Not Found", status=404)
    backend = OpenAIBackend(base_url=server.url_for("/api"))
    with pytest.raises(BackendError, match="check base_url"):
        list(backend.stream(ChatRequest("m", [{"role": "user", "content": "q"}])))


@pytest.mark.parametrize("error_event", [
    _chunk() | {"error": {"message": "upstream overloaded", "type": "server_error"}},
    "event: error\ndata: upstream overloaded",
])
def test_error_mid_stream_keeps_partial(server: Any, error_event: Any) -> None:
    body = _sse(_chunk({"role": "assistant", "content": "Hello"}), _chunk({"content": " world"}),
                done=False)
    if isinstance(error_event, str):
        body += error_event + "\n\n"
    else:
        body += _sse(error_event, done=False)
    _serve_stream(server, body)
    with pytest.raises(StreamInterrupted, match="upstream overloaded") as info:
        _client(server).chat("hi", model="m")
    assert info.value.partial is not None
    assert info.value.partial.answer == "Hello world"


# -- raw sockets: broken connections ----------------------------------------------------------


def _events(*texts: str) -> list[bytes]:
    return [_sse(_chunk({"content": t}), done=False).encode() for t in texts]


def _chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)


@pytest.mark.parametrize("framing", ["chunked", "until-close"])
def test_dropped_connection_keeps_partial(framing: str, raw_server: Any) -> None:
    events = _events("Hello", " world")
    if framing == "chunked":  # the body breaks off mid-way: a protocol error in httpx
        head = b"Transfer-Encoding: chunked\r\n"
        body = _chunked(events)
    else:  # a clean close that never says [DONE]
        head = b"Connection: close\r\n"
        body = b"".join(events)
    raw = raw_server({"/v1/chat/completions": send_bytes(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + head + b"\r\n" + body)})
    client = connect("openai", base_url=raw.url + "/v1", set_default=False)
    with pytest.raises(StreamInterrupted) as info:
        client.chat("hi", model="m")
    assert info.value.partial is not None
    assert info.value.partial.answer == "Hello world"
    assert raw.url + "/v1" in str(info.value)


def test_closing_the_generator_closes_the_connection(raw_server: Any) -> None:
    def answer(conn: Any, _request: Any) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(_events("Hello")))
        raw.linger(conn, 10)

    raw = raw_server({"/v1/chat/completions": answer})
    backend = OpenAIBackend(base_url=raw.url + "/v1")
    events = backend.stream(ChatRequest("m", [{"role": "user", "content": "q"}]))
    assert next(events) == Delta("raw", "Hello")
    events.close()
    assert raw.client_closed.wait(10)


def test_nothing_listening_is_backend_unavailable() -> None:
    base = f"http://127.0.0.1:{_free_port()}/v1"
    client = connect("openai", base_url=base, set_default=False)
    assert client.default_model == "deepseek-v4-flash"  # no listing: DeepSeek's platform model
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1") as info:
        client.chat("hi", model="m")
    assert base in str(info.value) and "DSKIT_OPENAI_BASE_URL" in str(info.value)
    with pytest.raises(BackendUnavailable):
        client.models()
    info_ = client.backend.describe()
    assert "models" not in info_ and "cannot reach" in info_["error"]


# -- configuration -----------------------------------------------------------------------------


def test_base_url_is_required() -> None:
    with pytest.raises(ConfigurationError, match=r"DSKIT_OPENAI_BASE_URL.*api\.deepseek\.com"):
        OpenAIBackend()


def test_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    assert OpenAIBackend().base_url == "http://127.0.0.1:8000/v1"
    monkeypatch.setenv("DSKIT_OPENAI_BASE_URL", "https://api.deepseek.com")
    assert OpenAIBackend().base_url == "https://api.deepseek.com/v1"
    assert OpenAIBackend(base_url="http://127.0.0.1:11434").base_url == "http://127.0.0.1:11434/v1"


@pytest.mark.parametrize(("given", "expected"), [
    ("https://api.deepseek.com", "https://api.deepseek.com/v1"),
    ("https://api.deepseek.com/", "https://api.deepseek.com/v1"),
    ("https://api.deepseek.com/v1/", "https://api.deepseek.com/v1"),
    ("http://127.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:8000/v1"),
    ("http://gateway.local/api/openai/v1", "http://gateway.local/api/openai/v1"),
])
def test_normalise_base_url(given: str, expected: str) -> None:
    assert normalise_base_url(given) == expected


@pytest.mark.parametrize("bad", ["", "   ", "api.deepseek.com"])
def test_bad_base_url(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        normalise_base_url(bad)


def test_base_url_credentials_are_not_shown() -> None:
    backend = OpenAIBackend(base_url="http://user:hunter2@127.0.0.1:9/v1")
    assert "hunter2" not in repr(backend) and "hunter2" not in str(backend.describe())


# -- stalled servers, malformed events, echoed secrets -----------------------------------------


def _stalling(box: list[Any], parts: list[bytes], headers: bool = True) -> Any:
    def answer(conn: Any, _request: Any) -> None:
        if headers:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(parts))
        box[0].linger(conn, 30)
    return answer


def _stalled(raw_server: Any, parts: list[bytes], headers: bool = True) -> Any:
    box: list[Any] = []
    box.append(raw_server({"/v1/chat/completions": _stalling(box, parts, headers)}))
    return box[0]


@pytest.mark.parametrize("where", ["before the headers", "after the headers", "mid-reply"])
def test_stop_ends_a_stalled_stream_at_once(raw_server: Any, where: str) -> None:
    parts = _events("Hello", " world") if where == "mid-reply" else []
    raw = _stalled(raw_server, parts, headers=where != "before the headers")
    client = connect("openai", base_url=raw.url + "/v1", set_default=False)
    stream = client.chat("hi", model="m", stream=True)
    stop_while_reading(stream, lambda got: bool(raw.requests) and len(got) >= len(parts))
    assert stream.reply.done_reason == "stopped"
    assert stream.reply.answer == ("Hello world" if parts else "")
    if where != "before the headers":
        assert raw.client_closed.wait(10)  # the socket was shut: the server stops generating


def test_a_silent_server_is_interrupted_after_the_idle_limit(raw_server: Any) -> None:
    raw = _stalled(raw_server, _events("Hello", " wor"))
    client = connect("openai", base_url=raw.url + "/v1", set_default=False, idle_timeout=1)
    with pytest.raises(StreamInterrupted, match="sent nothing for 1 s") as info:
        client.chat("hi", model="m")
    assert info.value.partial is not None and info.value.partial.answer == "Hello wor"
    assert OpenAIBackend(base_url=raw.url, timeout=9).idle_timeout == 9.0  # the older name


@pytest.mark.parametrize("bad", [
    _chunk({"content": 5}),
    _chunk({"reasoning_content": ["a"]}),
    _chunk() | {"choices": "everything"},
    _chunk() | {"choices": [["not", "an", "object"]]},
    _chunk() | {"choices": [{"index": 0, "delta": "text"}]},
    _chunk({"content": "x"}, finish=7),
    _chunk() | {"usage": "lots"},
    "[1, 2, 3]",
])
def test_a_malformed_event_is_a_dskit_error_with_the_partial_reply(server: Any,
                                                                    bad: Any) -> None:
    _serve_stream(server, _sse(_chunk({"role": "assistant", "content": "Hello"}), bad))
    with pytest.raises(StreamInterrupted, match="malformed event") as info:
        _client(server).chat("hi", model="m")
    assert info.value.partial is not None and info.value.partial.answer == "Hello"


def test_a_malformed_whole_reply_is_a_dskit_error(server: Any) -> None:
    server.expect_request("/v1/chat/completions").respond_with_json(
        {"choices": [{"message": {"content": 5}}]})
    with pytest.raises(BackendError, match="cannot read"):
        _client(server).chat("hi", model="m")


def _echo(key: str, kind: str) -> bytes:
    """A whole HTTP response that echoes `key` in one more place a server can put it."""
    if kind == "retry-after":
        body = json.dumps({"error": {"message": "slow down"}}).encode()
        return (b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %s\r\nContent-Type: "
                b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (key.encode(), len(body), body))
    if kind == "error body":
        body = json.dumps({"error": {"message": f"key {key} is not valid here"}}).encode()
        return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    if kind == "long error body":  # not JSON: quoted up to 500 characters, the key at the cut
        body = b"error: " + b"x" * 480 + key.encode()
        return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    if kind == "content type":
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/x-%s\r\nContent-Length: 2\r\n\r\nok"
                % key.encode())
    events = {"malformed event": f"data: {{not json {key}}}\n\n",
              # quoted up to 200 characters: the cut falls inside the key
              "long malformed event": f"data: {{not json {'x' * 177}{key}}}\n\n",
              "error event": f"event: error\ndata: quota exceeded for {key}\n\n",
              "error chunk": "data: " + json.dumps({"error": {"message": key}}) + "\n\n",
              "malformed field": "data: " + json.dumps(_chunk({"content": [key]})) + "\n\n"}
    body = _chunked([_sse(_chunk({"content": "Hi"}), done=False).encode(),
                     events[kind].encode()]) + b"0\r\n\r\n"
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body)


@pytest.mark.parametrize("kind", ["retry-after", "error body", "long error body", "content type",
                                  "malformed event", "long malformed event", "error event",
                                  "error chunk", "malformed field"])
def test_an_echoed_key_never_reaches_a_message(raw_server: Any, monkeypatch: pytest.MonkeyPatch,
                                               kind: str) -> None:
    monkeypatch.setenv("DSKIT_OPENAI_API_KEY", SECRET)
    # The raw server closes each connection after its answer: say so, or the client may reuse
    # the connection for the model list below and meet a reset instead of an answer.
    reply = _echo(SECRET, kind).replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
    raw = raw_server({"/v1/chat/completions": send_bytes(reply),
                      "/v1/models": send_bytes(b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
                                               b"Content-Type: application/"
                                               b"json\r\nContent-Length: %d\r\n\r\n%s" % (
                          len(json.dumps({"data": [{"id": SECRET}]})),
                          json.dumps({"data": [{"id": SECRET}]}).encode()))})
    client = connect("openai", base_url=raw.url + "/v1", set_default=False)
    with pytest.raises(BackendError) as info:
        client.chat("hi", model="m")
    assert raw.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was sent
    exc = info.value
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc)),
             str(client.models()), str(client.backend.describe())]
    if kind in ("retry-after", "content type"):  # not quoted: neither seconds, a date nor SSE
        assert "***" not in str(exc)
    else:  # quoted, with the key replaced
        assert "***" in str(exc)
    for text in shown:
        assert SECRET not in text, text
        assert SECRET[:12] not in text, text  # nor the start of it, left by a shortened quote


def test_keep_alive_comments_alone_do_not_keep_a_stalled_reply_alive(raw_server: Any) -> None:
    """A server (or a proxy) that sends only SSE comments keeps the socket busy, so the read's
    own timeout never fires: the reply still ends as stalled, its partial text kept."""

    def handler(conn: Any, request: Any) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                     + b"".join(_events("你好", "，世界")))
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                conn.sendall(b": keep-alive\n\n")
                time.sleep(0.2)
        except OSError:
            return  # the client gave up: what the test wants

    raw = raw_server({"/v1/chat/completions": handler})
    client = connect("openai", base_url=raw.url + "/v1", set_default=False, idle_timeout=1)
    t0 = time.monotonic()
    with pytest.raises(StreamInterrupted, match="keep-alive comments do not count") as info:
        client.chat("hi", model="m")
    assert info.value.partial is not None and info.value.partial.answer == "你好，世界"
    assert time.monotonic() - t0 < 15  # not the server's 20 s: bounded by the idle limit
