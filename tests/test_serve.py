"""`dskit serve`: a real server on a free 127.0.0.1 port, the real embedded models, real clients."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ollama
import pytest
from packaging.version import Version

import dskit as ds
from dskit.backends.base import ChatRequest, Event, Token
from dskit.backends.embedded import EmbeddedBackend
from dskit.errors import ConfigurationError
from dskit.serve.engine import check_name
from dskit.serve.errors import ApiError
from dskit.serve.parsing import (
    parse_keep_alive,
    parse_ollama_logprobs,
    parse_openai_logprobs,
    parse_options,
)
from dskit.serve.security import is_loopback, open_socket
from dskit.serve.streaming import token_json
from dskit.weights import files as model_files

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"
FEW = {"num_predict": 16, "seed": 7}
#: A request that keeps the model busy for a long while (greedy counting rarely stops early).
LONG = {"model": QWEN, "messages": [{"role": "user", "content": "Count from 1 to 1000, "
                                      "separated by spaces."}],
        "options": {"num_predict": 2000, "temperature": 0}}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(embedded: EmbeddedBackend) -> Iterator[ds.serve.Server]:
    srv = ds.serve.start(port=0, backend=embedded, max_queue=4)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: ds.serve.Server) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=120)


def wait_idle(server: ds.serve.Server, model: str, seconds: float = 30.0) -> None:
    """Wait until no request holds or waits for `model`."""
    deadline = time.monotonic() + seconds
    while server.engine.busy(model):
        assert time.monotonic() < deadline, f"{model} still busy after {seconds} s"
        time.sleep(0.02)


# --- small pieces, no server ------------------------------------------------------------------

@pytest.mark.parametrize("raw,seconds", [(None, 300.0), (0, 0.0), ("0", 0.0), (-1, None),
                                         ("-1", None), ("5m", 300.0), ("1h30m", 5400.0),
                                         ("10s", 10.0), ("500ms", 0.5), (42, 42.0)])
def test_keep_alive_durations(raw: Any, seconds: float | None) -> None:
    assert parse_keep_alive(raw, 300.0) == seconds


@pytest.mark.parametrize("raw", ["5 minutes", "m", True, [1], "1d"])
def test_bad_keep_alive_is_400(raw: Any) -> None:
    with pytest.raises(ApiError) as err:
        parse_keep_alive(raw, 300.0)
    assert err.value.status == 400


def test_options_map_to_backend_options() -> None:
    opts = parse_options({"temperature": 0, "top_p": 0.5, "seed": 3, "num_predict": 12,
                          "num_ctx": 1024, "stop": ["\n"], "top_k": 20, "num_thread": 8})
    assert (opts.temperature, opts.top_p, opts.seed, opts.max_tokens) == (0.0, 0.5, 3, 12)
    assert opts.num_ctx == 1024 and opts.stop == ["\n"] and opts.extra == {"top_k": 20}
    with pytest.raises(ApiError, match="temperature"):
        parse_options({"temperature": "hot"})


@pytest.mark.parametrize(("body", "ollama_n", "openai_n"), [
    ({}, None, None), ({"logprobs": True}, 0, 0), ({"logprobs": True, "top_logprobs": 20}, 20, 20),
    ({"logprobs": False}, None, None), ({"top_logprobs": 0}, None, ApiError),
    ({"top_logprobs": 3}, 3, ApiError), ({"logprobs": False, "top_logprobs": 3}, None, ApiError)])
def test_logprobs_settings_of_both_apis(body: dict[str, Any], ollama_n: int | None,
                                        openai_n: int | type | None) -> None:
    assert parse_ollama_logprobs(body) == ollama_n
    if openai_n is ApiError:
        with pytest.raises(ApiError, match='needs "logprobs": true'):
            parse_openai_logprobs(body)
    else:
        assert parse_openai_logprobs(body) == openai_n


def test_a_masked_token_is_still_json() -> None:
    token = Token("书", -float("inf"), (("本", -0.1), ("书", float("-inf"))), "书".encode())
    wire = json.loads(json.dumps(token_json(token), allow_nan=False))
    assert wire == {"token": "书", "logprob": -9999.0, "bytes": list("书".encode()),
                    "top_logprobs": [
                        {"token": "本", "logprob": -0.1, "bytes": list("本".encode())},
                        {"token": "书", "logprob": -9999.0, "bytes": list("书".encode())}]}


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "a\\b", "x..y", "bad\x00name",
                                  "tab\tname", "x" * 200, "", " ", 7, None])
def test_bad_model_names_are_refused(name: Any) -> None:
    with pytest.raises(ApiError) as err:
        check_name(name)
    assert err.value.status == 400


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                       ("127.0.0.2", True), ("0.0.0.0", False),
                                       ("10.0.0.5", False), ("example.com", False)])
def test_loopback_detection(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_non_loopback_bind_is_refused_without_the_flag() -> None:
    with pytest.raises(ConfigurationError, match="--expose"):
        ds.serve.start(host="0.0.0.0", port=0)


@pytest.mark.subprocess
def test_cli_refuses_non_loopback_bind_without_the_flag() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "dskit", "serve", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr and "--expose" in done.stderr


@pytest.mark.subprocess
def test_exposed_cli_warns_and_needs_the_token(unused_port: int) -> None:
    secret = "exposed-test-token"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DSKIT_SERVE_TOKEN": secret}
    proc = subprocess.Popen([sys.executable, "-m", "dskit", "serve", "--host", "0.0.0.0",
                             "--expose", "--port", str(unused_port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    banner: list[str] = []
    try:
        assert proc.stdout is not None
        for text in proc.stdout:
            banner.append(text)
            if "Ctrl-C" in text:
                break
        assert "bearer token: required" in "".join(banner)
        url = f"http://127.0.0.1:{unused_port}"
        assert httpx.get(url + "/api/version", timeout=10).status_code == 401
        assert httpx.get(url + "/api/version", timeout=10,
                         headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    finally:
        proc.send_signal(2)
        out, err = proc.communicate(timeout=30)
    assert "WARNING" in err and "no authentication" in err and "SSH tunnel" in err
    assert secret not in err + out + "".join(banner)


def test_port_in_use_says_to_choose_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match="--port"):
            open_socket("127.0.0.1", port)


# --- the API with the official client ---------------------------------------------------------

def test_root_and_version(server: ds.serve.Server) -> None:
    r = httpx.get(server.url + "/")
    assert r.status_code == 200 and r.text == "Ollama is running"
    assert r.headers["content-type"].startswith("text/plain")
    assert httpx.head(server.url + "/").status_code == 200
    version = httpx.get(server.url + "/api/version").json()["version"]
    assert Version(version) >= Version("0.9.0")


def test_list_show_ps(client: ollama.Client) -> None:
    listed = {m.model: m for m in client.list().models}
    assert {SMALL, QWEN, "all-minilm:l6-v2"} <= set(listed)
    assert listed[SMALL].details.format == "gguf" and listed[SMALL].size > 0
    assert listed["all-minilm:l6-v2"].details.family == "bert"

    shown = client.show(SMALL)
    assert shown.capabilities == ["completion"]
    assert shown.details.family == "llama" and shown.details.quantization_level == "Q4_1"
    assert shown.details.parameter_size == "135M"
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["llama.context_length"] == 8192
    assert client.show("all-minilm").capabilities == ["embedding"]

    client.chat(SMALL, [{"role": "user", "content": "hi"}], options=FEW)
    running = {m.model: m for m in client.ps().models}
    assert SMALL in running
    assert running[SMALL].size > 0 and running[SMALL].expires_at is not None


def test_chat_non_streaming_in_chinese_with_stats(client: ollama.Client) -> None:
    r = client.chat(QWEN, [{"role": "user", "content": "用中文回答：中国的首都是哪个城市？"}],
                    stream=False, options={"temperature": 0, "num_predict": 32})
    assert r.done and r.done_reason in ("stop", "length")
    assert "北京" in r.message.content and r.message.role == "assistant"
    assert r.eval_count and 0 < r.eval_count <= 32
    assert r.prompt_eval_count and r.prompt_eval_count > 5
    assert r.eval_duration and r.prompt_eval_duration and r.total_duration
    assert r.total_duration >= r.eval_duration  # all nanoseconds
    assert r.load_duration is not None


def test_chat_streaming(client: ollama.Client) -> None:
    parts = list(client.chat(SMALL, [{"role": "user", "content": "Name three colours."}],
                             stream=True, options=FEW))
    assert len(parts) > 2 and all(not p.done for p in parts[:-1])
    final = parts[-1]
    assert final.done and final.done_reason in ("stop", "length") and final.eval_count
    assert final.message.content == ""
    text = "".join(p.message.content for p in parts)
    assert text.strip()


def test_think_gives_a_thinking_field(client: ollama.Client) -> None:
    r = client.chat(QWEN, [{"role": "user", "content": "12 × 7 等于多少？"}], think=True,
                    options={"temperature": 0, "num_predict": 48})
    assert r.message.thinking and r.message.thinking.strip()
    parts = list(client.chat(SMALL, [{"role": "user", "content": "What is 3+4?"}], think=True,
                             stream=True, options={"num_predict": 24, "seed": 1}))
    assert any(p.message.thinking for p in parts)
    plain = client.chat(SMALL, [{"role": "user", "content": "What is 3+4?"}], options=FEW)
    assert plain.message.thinking is None and plain.message.content


def test_r1_named_model_gets_the_r1_treatment(embedded: EmbeddedBackend) -> None:
    # A reasoning model is recognised from its name/metadata: smollm2's file registered under an
    # R1 tag exercises that path (the reply is forced to open with "<think>").
    name = "deepseek-r1:stand-in"
    ds.register_gguf(name, model_files.model_path(SMALL))
    try:
        with ds.serve.start(port=0, backend=embedded, models=[name]) as srv:
            client = ollama.Client(host=srv.url, timeout=120)
            assert client.show(name).capabilities == ["completion", "thinking"]
            r = client.chat(name, [{"role": "user", "content": "What is 2+2?"}], think=True,
                            options={"num_predict": 24, "temperature": 0})
            assert r.message.thinking and "<think>" not in r.message.thinking
            # The tags' own tokens are left out: the rest spell exactly what was sent.
            lp = client.chat(name, [{"role": "user", "content": "2加2等于几？"}], think=True,
                             logprobs=True, options={"num_predict": 32, "seed": 2})
            check_tokens(lp.logprobs, (lp.message.thinking or "") + lp.message.content, 0)
            raw = client.chat(name, [{"role": "user", "content": "What is 2+2?"}],
                              options={"num_predict": 8, "temperature": 0})
            assert raw.message.thinking is None and raw.message.content
    finally:
        model_files._registered.pop(name, None)
        embedded.unload(name)


def test_generate_streaming_and_not(client: ollama.Client) -> None:
    r = client.generate(SMALL, "Complete: the sky is", system="Answer in one sentence.",
                        options=FEW)
    assert r.done and r.response and r.eval_count
    parts = list(client.generate(QWEN, "用一句话介绍长城。", stream=True, options=FEW))
    assert parts[-1].done and parts[-1].done_reason in ("stop", "length")
    assert "".join(p.response for p in parts).strip()


def test_options_length_stop_and_seed(client: ollama.Client) -> None:
    msg = [{"role": "user", "content": "Count from 1 to 50, separated by spaces."}]
    short = client.chat(SMALL, msg, options={"num_predict": 5, "temperature": 0})
    assert short.done_reason == "length" and short.eval_count <= 5
    a = client.chat(SMALL, msg, options={"num_predict": 12, "temperature": 0.9, "seed": 11})
    b = client.chat(SMALL, msg, options={"num_predict": 12, "temperature": 0.9, "seed": 11})
    assert a.message.content == b.message.content
    stopped = client.chat(SMALL, msg, options={"num_predict": 40, "temperature": 0,
                                               "stop": ["5"]})
    assert "5" not in stopped.message.content and stopped.done_reason == "stop"


def test_keep_alive_zero_unloads_and_empty_request_loads(client: ollama.Client,
                                                         server: ds.serve.Server) -> None:
    loaded = client.generate(SMALL)  # Ollama's documented way to load a model
    assert loaded.done_reason == "load"
    assert SMALL in [m.model for m in client.ps().models]
    gone = client.generate(SMALL, keep_alive=0)
    assert gone.done_reason == "unload"
    assert SMALL not in [m.model for m in client.ps().models]
    client.chat(SMALL, [{"role": "user", "content": "hi"}], options=FEW, keep_alive=0)
    wait_idle(server, SMALL)
    assert SMALL not in [m.model for m in client.ps().models]
    client.chat(SMALL, [{"role": "user", "content": "hi"}], options=FEW, keep_alive="10m")
    expires = {m.model: m.expires_at for m in client.ps().models}[SMALL]
    assert expires is not None and expires.timestamp() > time.time() + 500


def test_embed_and_legacy_embeddings(client: ollama.Client) -> None:
    r = client.embed("all-minilm", ["The cat sits on the mat.", "A cat is sitting on a mat.",
                                    "股票市场今天下跌了。"])
    vecs = np.array(r.embeddings)
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert r.prompt_eval_count and r.prompt_eval_count > 10
    single = client.embed("all-minilm:l6-v2", "hello")
    assert len(single.embeddings) == 1
    legacy = client.embeddings("all-minilm", "hello")
    assert len(legacy.embedding) == 384
    assert np.allclose(legacy.embedding, single.embeddings[0], atol=1e-5)


def test_embed_counts_word_pieces_and_truncates_like_ollama(client: ollama.Client) -> None:
    """Token counts are llama.cpp's word pieces ([CLS] and [SEP] included); 256 at most."""
    r = client.embed("all-minilm", ["hello", "长城很长"])
    assert r.prompt_eval_count == 3 + 6  # [CLS] hello [SEP]; [CLS] + 4 characters + [SEP]
    long = "知识库把本地文件切成小块。" * 30  # 390 characters, one piece each
    r = client.embed("all-minilm", long)
    assert r.prompt_eval_count == 256
    with pytest.raises(ollama.ResponseError) as err:
        client.embed("all-minilm", long, truncate=False)
    assert err.value.status_code == 400 and "exceeds the context length" in err.value.error
    cut = client.embed("all-minilm", long[:254]).embeddings[0]  # the same 254 characters kept
    assert np.dot(r.embeddings[0], cut) > 0.9999


def test_chat_model_refused_for_embeddings(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(QWEN, "hello")
    assert err.value.status_code == 400 and "does not support embeddings" in err.value.error
    assert "all-minilm" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        client.chat("all-minilm", [{"role": "user", "content": "hi"}])
    assert err.value.status_code == 400 and "does not support chat" in err.value.error


def test_pull_streams_progress_then_success(client: ollama.Client) -> None:
    statuses = [p.status for p in client.pull(SMALL, stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert client.pull(QWEN).status == "success"


def test_pull_assembles_with_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      embedded: EmbeddedBackend) -> None:
    monkeypatch.setenv("DSKIT_CACHE_DIR", str(tmp_path))  # nothing assembled here yet
    with ds.serve.start(port=0, backend=embedded) as srv:
        client = ollama.Client(host=srv.url, timeout=300)
        listed = {m.model: m for m in client.list().models}
        assert listed[QWEN].size > 0  # listed without assembling it first
        assert not list(tmp_path.glob("*.gguf"))
        parts = list(client.pull(QWEN, stream=True))
    progress = [p for p in parts if p.total]
    assert len(progress) > 5 and progress[-1].completed == progress[-1].total
    assert [p.completed for p in progress] == sorted(p.completed for p in progress)
    assert progress[0].digest == "sha256:" + model_files.STANDINS[QWEN].sha256
    assert parts[-1].status == "success"
    assembled = tmp_path / model_files.STANDINS[QWEN].filename
    assert assembled.stat().st_size == progress[-1].total
    assembled.unlink()  # 490 MB: not left behind in pytest's kept temporary directories


def test_pull_of_the_embedding_model_converts_it_with_progress(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded: EmbeddedBackend) -> None:
    monkeypatch.setenv("DSKIT_CACHE_DIR", str(tmp_path))  # no MiniLM GGUF made here yet
    with ds.serve.start(port=0, backend=embedded) as srv:
        client = ollama.Client(host=srv.url, timeout=300)
        parts = list(client.pull("all-minilm", stream=True))
        made = model_files.made_ready(model_files.MINILM)
        assert made is not None and made.parent == tmp_path
        progress = [p for p in parts if p.total]
        assert progress and progress[-1].completed == progress[-1].total == made.stat().st_size
        assert parts[0].status == "pulling manifest" and parts[-1].status == "success"
        mtime = made.stat().st_mtime_ns
        assert client.pull("all-minilm:l6-v2").status == "success"  # made already: reused
        assert made.stat().st_mtime_ns == mtime
        listed = {m.model: m for m in client.list().models}
        assert listed["all-minilm:l6-v2"].size == made.stat().st_size


def test_pull_of_anything_else_explains(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.pull("deepseek-r1:7b")
    assert err.value.status_code == 404
    assert "cannot download" in err.value.error and "ollama pull deepseek-r1:7b" in \
        err.value.error


# --- error shapes -----------------------------------------------------------------------------

def test_error_shapes(server: ds.serve.Server, client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat("deepseek-r1:7b", [{"role": "user", "content": "hi"}])
    assert err.value.status_code == 404 and "not found" in err.value.error
    post = httpx.Client(base_url=server.url, timeout=30)
    r = post.post("/api/chat", content=b"{not json")
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    r = post.post("/api/chat", json={"model": "../../etc/passwd", "messages": []})
    assert r.status_code == 400 and "invalid model name" in r.json()["error"]
    r = post.post("/api/generate", json={"model": SMALL, "prompt": "hi",
                                         "options": {"temperature": "hot"}})
    assert r.status_code == 400 and set(r.json()) == {"error"}
    r = post.post("/api/chat", json={"model": SMALL, "messages": [
        {"role": "user", "content": "x" * 200_001}]})
    assert r.status_code == 400 and "prompt too long" in r.json()["error"]
    r = post.post("/api/generate", json={"model": SMALL, "prompt": "数字 " * 3000})
    assert r.status_code == 400 and "context" in r.json()["error"]  # over the 2048-token window
    r = post.post("/api/embed", content=b"{" + b" " * (5 << 20) + b"}",
                  headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]
    r = post.get("/api/nothing-here")
    assert r.status_code == 404 and r.text == "404 page not found"
    r = post.post("/v1/chat/completions", json={"model": "nope", "messages": [
        {"role": "user", "content": "hi"}]})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


class FailingBackend(EmbeddedBackend):
    """The real model, with a failure injected after a few pieces (a model cannot be made to
    fail mid-reply on demand)."""

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        for n, ev in enumerate(super().stream(request)):
            if n == 3:
                raise RuntimeError("injected failure")
            yield ev


@pytest.mark.model
def test_mid_stream_error_is_an_error_line() -> None:
    with ds.serve.start(port=0, backend=FailingBackend(n_ctx=1024), models=[SMALL]) as srv:
        with httpx.stream("POST", srv.url + "/api/chat", timeout=60, json={
                "model": SMALL, "messages": [{"role": "user", "content": "Tell a story."}],
                "options": {"num_predict": 32}}) as r:
            assert r.status_code == 200
            lines = [json.loads(x) for x in r.iter_lines() if x]
        assert lines[-1] == {"error": "RuntimeError: injected failure"}
        # the three pieces before the failure all arrive (streamed text may be batched)
        assert lines[:-1] and all("message" in line for line in lines[:-1])
        assert len("".join(line["message"]["content"] for line in lines[:-1])) >= 3
        with pytest.raises(ollama.ResponseError, match="injected failure"):
            list(ollama.Client(host=srv.url).chat(SMALL, [{"role": "user", "content": "x"}],
                                                  stream=True, options=FEW))


# --- capacity, disconnects, concurrency ---------------------------------------------------------

def test_disconnect_mid_stream_frees_the_model(server: ds.serve.Server,
                                               client: ollama.Client) -> None:
    with httpx.stream("POST", server.url + "/api/chat", timeout=60, json=LONG) as r:
        lines = r.iter_lines()
        for _ in range(3):
            assert "message" in json.loads(next(lines))
        assert server.engine.busy(QWEN)
    wait_idle(server, QWEN)  # the generation stopped when the client left
    r = client.chat(QWEN, [{"role": "user", "content": "hi"}], options=FEW)
    assert r.done


def test_disconnect_while_waiting_for_a_whole_reply_frees_the_model(
        server: ds.serve.Server) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/api/chat", json={**LONG, "stream": False}, timeout=3)
    wait_idle(server, QWEN)  # not the ~100 s the whole reply would take


def test_server_answers_while_generating(server: ds.serve.Server) -> None:
    with httpx.stream("POST", server.url + "/api/chat", timeout=60, json=LONG) as r:
        lines = r.iter_lines()
        json.loads(next(lines))
        assert httpx.get(server.url + "/api/version", timeout=10).status_code == 200
        assert QWEN in [m["name"] for m in
                        httpx.get(server.url + "/api/ps", timeout=10).json()["models"]]
        assert server.engine.busy(QWEN)  # still generating when those answered
    wait_idle(server, QWEN)


def test_concurrent_clients_are_all_served(server: ds.serve.Server) -> None:
    results: dict[int, Any] = {}

    def ask(i: int) -> None:
        c = ollama.Client(host=server.url, timeout=120)
        model = SMALL if i % 2 else QWEN
        try:
            results[i] = c.chat(model, [{"role": "user", "content": f"数字 {i} 加 1 等于几？"}],
                                options={"num_predict": 12, "seed": i})
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(results) == 4
    for i, r in results.items():
        assert isinstance(r, ollama.ChatResponse), f"client {i}: {r!r}"
        assert r.done and r.eval_count


def test_queue_full_answers_503(embedded: EmbeddedBackend) -> None:
    with ds.serve.start(port=0, backend=embedded, max_queue=1) as srv:
        with httpx.stream("POST", srv.url + "/api/chat", timeout=60, json=LONG) as r:
            lines = r.iter_lines()  # kept: a dropped iterator closes the response
            next(lines)
            queued: dict[str, Any] = {}
            waiter = threading.Thread(target=lambda: queued.setdefault("r", httpx.post(
                srv.url + "/api/chat", timeout=120, json={
                    "model": QWEN, "stream": False, "options": FEW,
                    "messages": [{"role": "user", "content": "hi"}]})))
            waiter.start()
            deadline = time.monotonic() + 10
            while srv.engine.waiting < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            busy = httpx.post(srv.url + "/api/chat", timeout=10, json={
                "model": QWEN, "messages": [{"role": "user", "content": "hi"}]})
            assert busy.status_code == 503 and "server busy" in busy.json()["error"]
        waiter.join(120)  # the first client left: the queued request gets the model
        assert queued["r"].status_code == 200 and queued["r"].json()["done"]


# --- security ---------------------------------------------------------------------------------

def test_token_is_required_when_set(embedded: EmbeddedBackend) -> None:
    secret = "s3cret-token-for-tests"
    with ds.serve.start(port=0, backend=embedded, token=secret) as srv:
        assert secret not in repr(srv)
        r = httpx.get(srv.url + "/api/tags")
        assert r.status_code == 401 and secret not in r.text
        assert httpx.get(srv.url + "/").status_code == 200  # the liveness check stays open
        wrong = ollama.Client(host=srv.url, headers={"Authorization": "Bearer nope"})
        with pytest.raises(ollama.ResponseError) as err:
            wrong.list()
        assert err.value.status_code == 401
        good = ollama.Client(host=srv.url, headers={"Authorization": f"Bearer {secret}"})
        assert SMALL in [m.model for m in good.list().models]


def test_foreign_host_header_is_refused(server: ds.serve.Server) -> None:
    r = httpx.get(server.url + "/api/tags", headers={"Host": "attacker.example:11434"})
    assert r.status_code == 403
    assert httpx.get(server.url + "/api/tags", headers={"Host": "localhost"}).status_code == 200


def test_cors_allows_local_pages_only(server: ds.serve.Server) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(server.url + "/api/chat", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})

    assert preflight("http://localhost:5173").status_code == 200
    assert preflight("https://evil.example").status_code == 403  # as Ollama, before anything


# --- other clients ----------------------------------------------------------------------------

def test_llama_index_ollama_llm_and_embedding(server: ds.serve.Server) -> None:
    from llama_index.embeddings.ollama import OllamaEmbedding
    from llama_index.llms.ollama import Ollama

    llm = Ollama(model=QWEN, base_url=server.url, request_timeout=120,
                 additional_kwargs={"num_predict": 24, "temperature": 0})
    assert llm.metadata.context_window > 0
    assert str(llm.complete("用中文说：你好")).strip()
    chunks = list(llm.stream_complete("Say hello."))
    assert chunks and chunks[-1].text.strip()
    emb = OllamaEmbedding(model_name="all-minilm", base_url=server.url)
    vec = emb.get_text_embedding("知识库")
    assert len(vec) == 384
    assert len(emb.get_text_embedding_batch(["a", "b"])) == 2


def test_dskit_ollama_backend_runs_against_it(server: ds.serve.Server) -> None:
    client = ds.connect("ollama", host=server.url, set_default=False)
    assert client.backend.version() == "0.12.11"  # the Ollama API it speaks: logprobs too
    assert SMALL in client.models()
    reply = client.chat("What is 2+3?", SMALL, max_tokens=24, think=True, seed=3)
    assert reply.thinking and reply.backend == "ollama"
    assert reply.stats.eval_tokens and reply.stats.tokens_per_s
    plain = client.chat("用中文说你好。", QWEN, max_tokens=16)
    assert plain.answer and not plain.thinking
    from dskit.embeddings import OllamaEmbedder

    emb = OllamaEmbedder("all-minilm", backend=client.backend)
    assert emb.embed(["一", "二"]).shape == (2, 384)
    with pytest.raises(ds.errors.DskitError, match="chat model"):
        OllamaEmbedder(QWEN, backend=client.backend).check()


def test_curl_as_in_ollamas_api_docs(server: ds.serve.Server) -> None:
    body = json.dumps({"model": SMALL, "prompt": "Why is the sky blue?",
                       "options": {"num_predict": 8}})
    out = subprocess.run(["curl", "-sS", f"{server.url}/api/generate", "-d", body],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    lines = [json.loads(x) for x in out.splitlines() if x]
    assert lines[-1]["done"] and "response" in lines[0]
    out = subprocess.run(["curl", "-sS", f"{server.url}/api/chat", "-d", json.dumps({
        "model": SMALL, "messages": [{"role": "user", "content": "hi"}], "stream": False,
        "options": {"num_predict": 8}})], capture_output=True, text=True, timeout=120,
        check=True).stdout
    assert json.loads(out)["message"]["role"] == "assistant"
    tags = subprocess.run(["curl", "-sS", f"{server.url}/api/tags"], capture_output=True,
                          text=True, timeout=30, check=True).stdout
    assert SMALL in [m["name"] for m in json.loads(tags)["models"]]


def test_openai_compatible_client(server: ds.serve.Server) -> None:
    import openai

    oa = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", timeout=120)
    ids = [m.id for m in oa.models.list().data]
    assert SMALL in ids and "all-minilm:l6-v2" in ids
    r = oa.chat.completions.create(model=QWEN, max_tokens=24, temperature=0, messages=[
        {"role": "user", "content": "用中文回答：一年有几个月？"}])
    assert r.choices[0].message.content and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 0
    stream = oa.chat.completions.create(model=SMALL, max_tokens=16, stream=True,
                                        stream_options={"include_usage": True},
                                        messages=[{"role": "user", "content": "Say hi"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage and chunks[-1].usage.completion_tokens > 0
    emb = oa.embeddings.create(model="all-minilm", input=["hello", "你好"])  # base64 default
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 384
    with pytest.raises(openai.NotFoundError):
        oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="does not support embeddings"):
        oa.embeddings.create(model=SMALL, input="x")


def test_openai_reasoning_effort_gives_reasoning(server: ds.serve.Server) -> None:
    r = httpx.post(server.url + "/v1/chat/completions", timeout=120, json={
        "model": SMALL, "reasoning_effort": "high", "max_tokens": 24, "seed": 2,
        "messages": [{"role": "user", "content": "What is 5+5?"}]}).json()
    assert r["choices"][0]["message"].get("reasoning")


@pytest.mark.subprocess
def test_cli_serve_answers_and_stops(unused_port: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DSKIT_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dskit", "serve", "--port",
                             str(unused_port), "--model", SMALL], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        banner = []
        for text in proc.stdout:
            banner.append(text)
            if "Ctrl-C" in text:
                break
        assert f"http://127.0.0.1:{unused_port}" in banner[0], banner
        tags = httpx.get(f"http://127.0.0.1:{unused_port}/api/tags", timeout=30).json()
        assert next(m["name"] for m in tags["models"]) == SMALL
        assert QWEN not in [m["name"] for m in tags["models"]]  # --model limits what is served
    finally:
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        proc.wait(30)
    assert proc.returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_a_real_loop_through_serve_is_stopped_and_every_row_kept(server: ds.serve.Server,
                                                                 api: str):
    """smollm2 loops on the Chinese cup puzzle ("！" until the token limit): a client on either
    API stops it with the loop guard, and the comparison keeps the row as "repetition"."""
    client = (ds.connect("ollama", host=server.url, set_default=False) if api == "ollama" else
              ds.connect("openai", base_url=f"{server.url}/v1", set_default=False))
    df = ds.compare(SMALL, [ds.prompts.cup_puzzle("zh").prompt, "What is 2+3?"],
                    client=client, max_tokens=2048, temperature=0, seed=1, progress=False)
    assert len(df) == 2 and df["error"].isna().all()
    assert df["done_reason"].iloc[0] == "repetition", df["answer"].iloc[0][-200:]
    assert df["done_reason"].iloc[1] != "stopped"
    wait_idle(server, SMALL)  # the server stopped generating once the client closed the stream


# --- token log-probabilities ------------------------------------------------------------------

BOOKS = "一个书架有3层，每层放12本书。一共有多少本书？"


def check_tokens(entries: Any, text: str, n: int) -> None:
    """Log-probability entries (either client's typed ones) spell `text`, each a probability,
    with exactly `n` alternatives from the most likely down, the chosen one among them agreeing."""
    assert entries and "".join(e.token for e in entries) == text
    for e in entries:
        assert e.logprob <= 0
        top = [(a.token, a.logprob) for a in e.top_logprobs]
        assert len(top) == n and all(lp <= 0 for _, lp in top)
        assert [lp for _, lp in top] == sorted((lp for _, lp in top), reverse=True)
        same = [lp for t, lp in top if t == e.token]
        if same and e.token:  # the token was among the likeliest: the same number both times
            assert any(lp == pytest.approx(e.logprob, abs=1e-5) for lp in same)


def test_ollama_client_gets_logprobs_whole_and_streamed(client: ollama.Client) -> None:
    msg = [{"role": "user", "content": BOOKS}]
    r = client.chat(QWEN, msg, logprobs=True, top_logprobs=3,
                    options={"temperature": 0, "num_predict": 40})
    check_tokens(r.logprobs, r.message.content, 3)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.message.content)  # Chinese, spelled
    parts = list(client.chat(QWEN, msg, stream=True, logprobs=True, top_logprobs=3,
                             options={"temperature": 0, "num_predict": 40}))
    assert "".join(p.message.content for p in parts) == r.message.content  # same greedy reply
    for p in parts:  # each chunk carries the tokens of its own text
        if p.message.content:
            check_tokens(p.logprobs, p.message.content, 3)
        else:
            assert p.logprobs is None
    # The same tokens (their numbers differ slightly: the prompt came from the cache this time,
    # and llama.cpp's kernels for one position and for a batch round differently).
    assert [e.token for p in parts for e in p.logprobs or ()] == [e.token for e in r.logprobs]


def test_ollama_logprobs_with_thinking_and_generate(client: ollama.Client) -> None:
    r = client.chat(QWEN, [{"role": "user", "content": BOOKS}], think=True, logprobs=True,
                    top_logprobs=2, options={"temperature": 0, "num_predict": 48})
    assert r.message.thinking
    check_tokens(r.logprobs, r.message.thinking + r.message.content, 2)
    parts = list(client.chat(QWEN, [{"role": "user", "content": BOOKS}], think=True,
                             stream=True, logprobs=True, top_logprobs=2,
                             options={"temperature": 0, "num_predict": 48}))
    for p in parts:
        if p.message.thinking or p.message.content:
            check_tokens(p.logprobs, (p.message.thinking or "") + p.message.content, 2)
    # logprobs alone: each token's own, no alternatives (Ollama's default of 0)
    g = client.generate(SMALL, "The capital of France is", logprobs=True, options=FEW)
    check_tokens(g.logprobs, g.response, 0)
    raw = client.generate(SMALL, "1, 2, 3,", raw=True, logprobs=True, top_logprobs=1,
                          options=FEW)
    check_tokens(raw.logprobs, raw.response, 1)


def test_ollama_without_logprobs_has_no_field(server: ds.serve.Server) -> None:
    body = {"model": SMALL, "messages": [{"role": "user", "content": BOOKS}], "options": FEW}
    whole = httpx.post(server.url + "/api/chat", json={**body, "stream": False}, timeout=120)
    assert "logprobs" not in whole.json()
    off = httpx.post(server.url + "/api/chat", timeout=120, json={
        **body, "stream": False, "logprobs": False, "top_logprobs": 3})  # false wins, as Ollama
    assert "logprobs" not in off.json()
    with httpx.stream("POST", server.url + "/api/chat", json=body, timeout=120) as r:
        assert all("logprobs" not in json.loads(x) for x in r.iter_lines() if x)
    # top_logprobs alone asks for them, as ds.chat(top_logprobs=n) does
    alone = httpx.post(server.url + "/api/chat", timeout=120, json={
        **body, "stream": False, "top_logprobs": 2}).json()
    assert alone["logprobs"] and len(alone["logprobs"][0]["top_logprobs"]) == 2
    assert bytes(alone["logprobs"][0]["bytes"]).decode("utf-8", "replace")


def test_openai_client_gets_logprobs_whole_and_streamed(server: ds.serve.Server) -> None:
    import openai

    oa = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", timeout=120)
    msg = [{"role": "user", "content": BOOKS}]
    r = oa.chat.completions.create(model=QWEN, messages=msg, max_tokens=40, temperature=0,
                                   logprobs=True, top_logprobs=3)
    choice = r.choices[0]
    assert choice.logprobs is not None and choice.message.content
    check_tokens(choice.logprobs.content, choice.message.content, 3)
    chunks = list(oa.chat.completions.create(model=QWEN, messages=msg, max_tokens=40,
                                             temperature=0, logprobs=True, top_logprobs=3,
                                             stream=True))
    text = ""
    for c in chunks:
        if c.choices and c.choices[0].delta.content:
            assert c.choices[0].logprobs is not None
            check_tokens(c.choices[0].logprobs.content, c.choices[0].delta.content, 3)
            text += c.choices[0].delta.content
    assert text == choice.message.content
    plain = oa.chat.completions.create(model=SMALL, messages=msg, max_tokens=8)
    assert plain.choices[0].logprobs is None
    for c in oa.chat.completions.create(model=SMALL, messages=msg, max_tokens=8, stream=True):
        assert not c.choices or c.choices[0].logprobs is None


def test_openai_reasoning_tokens_go_beside_the_content(server: ds.serve.Server) -> None:
    body = {"model": QWEN, "messages": [{"role": "user", "content": BOOKS}],
            "reasoning_effort": "high", "max_tokens": 48, "temperature": 0, "logprobs": True,
            "top_logprobs": 2}
    choice = httpx.post(server.url + "/v1/chat/completions", json=body,
                        timeout=120).json()["choices"][0]
    message, logprobs = choice["message"], choice["logprobs"]
    assert message["reasoning"]
    assert "".join(e["token"] for e in logprobs["reasoning_content"]) == message["reasoning"]
    assert "".join(e["token"] for e in logprobs["content"]) == message["content"]
    with httpx.stream("POST", server.url + "/v1/chat/completions", timeout=120,
                      json={**body, "stream": True}) as r:
        events = [json.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {")]
    for ev in events:
        delta, lp = ev["choices"][0]["delta"], ev["choices"][0]["logprobs"]
        if delta.get("reasoning"):
            assert "".join(e["token"] for e in lp["reasoning_content"]) == delta["reasoning"]
            assert lp["content"] == []
        elif delta.get("content"):
            assert "".join(e["token"] for e in lp["content"]) == delta["content"]


def test_dskit_through_serve_gets_reply_tokens(server: ds.serve.Server) -> None:
    client = ds.connect("ollama", host=server.url, set_default=False)
    assert client.backend.is_dskit_serve  # and it speaks an Ollama API with logprobs
    reply = client.chat(BOOKS, QWEN, max_tokens=32, temperature=0, logprobs=True,
                        top_logprobs=2)
    assert reply.tokens and all(t.logprob <= 0 and len(t.top) == 2 for t in reply.tokens)
    assert reply.answer.strip() in "".join(t.text for t in reply.tokens)
    thought = client.chat(BOOKS, QWEN, max_tokens=48, temperature=0, think=True,
                          logprobs=True)
    # Each token in the phase its text went to (the stand-in may reason to the token limit).
    thinking = "".join(t.text for t in thought.tokens if t.phase == "thinking")
    answer = "".join(t.text for t in thought.tokens if t.phase == "answer")
    # A stray `<think>` the stand-in writes is dropped from the text with its tokens, but a
    # token that straddles the tag's end (">\n") keeps its whole text (docs/clients.md).
    def tagless(text: str) -> str:
        return re.sub(r"</?think>?|>", "", text)

    assert thought.thinking.strip() and tagless(thought.thinking.strip()) in tagless(thinking)
    assert thought.answer.strip() in answer and bool(answer.strip()) == bool(thought.answer)


def test_tokens_of_a_stray_tag_in_reasoning_given_apart_are_dropped_with_it() -> None:
    """The stand-in sometimes writes `<think>` inside its reasoning: the text drops the tag
    (issue 27), and the tokens sent beside it must still spell exactly the text sent."""
    from dskit.backends.base import Token
    from dskit.conversation.stream import TokenSplit
    from dskit.reasoning.think import ThinkSplitter

    split = TokenSplit(ThinkSplitter())
    pieces = ["每层12本", "，", "<", "think", ">", "3层", "一共36本"]
    out = []
    for piece in pieces:
        out += split.feed(piece, (Token(piece, -0.1, ((piece, -0.1),)),), "thinking")
    out += split.feed("36", (Token("36", -0.01, (("36", -0.01),)),), "answer")
    out += split.finish()
    for kind in ("thinking", "answer"):
        text = "".join(t for k, t, _ in out if k == kind)
        spelled = "".join(tok.text for k, _, toks in out if k == kind for tok in toks)
        assert spelled == text and "<think>" not in text
    assert "".join(t for k, t, _ in out if k == "thinking") == "每层12本，3层一共36本"
