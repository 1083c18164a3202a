"""The Ollama backend against a real HTTP server replaying the shapes of Ollama's API docs."""

from __future__ import annotations

import json
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from dskit.backends.ollama import OllamaBackend, resolve_host
from dskit.client import Client, connect
from dskit.conversation.session import Conversation
from dskit.conversation.stream import ChatStream
from dskit.errors import (
    BackendError,
    ConfigurationError,
    LogprobsUnsupported,
    ModelNotFound,
    OllamaNotRunning,
    ServerError,
    StreamInterrupted,
)
from dskit.recommendations import FOLD_NOTE
from dskit.reply import Reply
from tests.rawhttp import (
    Handler,
    RawServer,
    chunked_head,
    ndjson_lines,
    send_json,
    stop_while_reading,
)

MODEL = "deepseek-r1:7b"
NDJSON = "application/x-ndjson"

# /api/show for the original R1 Qwen distill and for R1-0528 (served as deepseek-r1:8b).
SHOW_R1 = {
    "modelfile": "FROM deepseek-r1:7b",
    "parameters": "stop \"<｜begin▁of▁sentence｜>\"",
    "template": "{{- if .System }}{{ .System }}{{ end }}",
    "details": {"format": "gguf", "family": "qwen2", "families": ["qwen2"],
                "parameter_size": "7.6B", "quantization_level": "Q4_K_M"},
    "model_info": {"general.architecture": "qwen2",
                   "general.basename": "DeepSeek-R1-Distill-Qwen",
                   "general.parameter_count": 7615616512},
    "capabilities": ["completion", "thinking"],
}
SHOW_0528 = {
    **SHOW_R1,
    "details": {"format": "gguf", "family": "qwen3", "families": ["qwen3"],
                "parameter_size": "8.2B", "quantization_level": "Q4_K_M"},
    "model_info": {"general.architecture": "qwen3",
                   "general.basename": "DeepSeek-R1-0528-Qwen3",
                   "general.parameter_count": 8190735360},
}
TAGS = {"models": [
    {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189,
     "digest": "a80c4f17acd5", "modified_at": "2025-05-04T17:37:44.706015396-07:00",
     "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B"}},
    {"name": MODEL, "model": MODEL, "size": 4683075271, "digest": "0a8c26691023",
     "modified_at": "2025-05-01T10:00:00.000000000-07:00",
     "details": {"format": "gguf", "family": "qwen2", "parameter_size": "7.6B"}},
]}
FINAL = {"total_duration": 5_000_000_000, "load_duration": 1_500_000_000,
         "prompt_eval_count": 26, "prompt_eval_duration": 130_000_000,
         "eval_count": 120, "eval_duration": 3_000_000_000}


def chunk(content: str = "", thinking: str | None = None, model: str = MODEL) -> dict[str, Any]:
    """One streamed /api/chat object."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    return {"model": model, "created_at": "2025-06-01T08:52:19.385406455-07:00",
            "message": message, "done": False}


def final(done_reason: str = "stop", model: str = MODEL, **stats: int) -> dict[str, Any]:
    """The last streamed object, with Ollama's statistics."""
    return {"model": model, "created_at": "2025-06-01T08:52:25.1Z",
            "message": {"role": "assistant", "content": ""}, "done": True,
            "done_reason": done_reason, **{**FINAL, **stats}}


def ndjson(*objs: dict[str, Any]) -> str:
    return "\n".join(json.dumps(o) for o in objs) + "\n"


def raw_stream(*pieces: str, done_reason: str = "stop") -> str:
    """An old-server reply: the content pieces as chunks, then the final object."""
    return ndjson(*(chunk(p) for p in pieces), final(done_reason))


# Inline tags cut across lines in every awkward place.
INLINE = ["<th", "ink>\nThe user asks 2+2.", " Two plus two is four.</th", "ink>\n\n",
          "The answer", " is **4**."]


def serve(httpserver: HTTPServer, version: str = "0.9.0", show: dict[str, Any] | None = None,
          chat: str | list[str] | None = None) -> Client:
    """Register Ollama endpoints and connect to them; `chat` lists successive replies."""
    httpserver.expect_request("/api/version").respond_with_json({"version": version})
    httpserver.expect_request("/api/tags").respond_with_json(TAGS)
    httpserver.expect_request("/api/show", method="POST").respond_with_json(show or SHOW_R1)
    for body in [chat] if isinstance(chat, str) else chat or []:
        httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
            body, content_type=NDJSON)
    return connect("ollama", host=httpserver.url_for(""), set_default=False)


def chat_requests(httpserver: HTTPServer) -> list[dict[str, Any]]:
    """The JSON bodies of the /api/chat requests the server received, in order."""
    return [req.get_json() for req, _ in httpserver.log if req.path == "/api/chat"]


# --- host resolution ---------------------------------------------------------------------

@pytest.mark.parametrize(("given", "expected"), [
    (None, "http://127.0.0.1:11434"),
    ("", "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("0.0.0.0:8080", "http://127.0.0.1:8080"),
    (":11435", "http://127.0.0.1:11435"),
    ("gpu-box", "http://gpu-box:11434"),
    ("gpu-box:9000", "http://gpu-box:9000"),
    ("http://gpu-box", "http://gpu-box:80"),
    ("https://ollama.example.org", "https://ollama.example.org:443"),
    ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
    ("https://proxy.example.org:8443/ollama/", "https://proxy.example.org:8443/ollama"),
    ("[::]:11434", "http://[::1]:11434"),
    ("[fe80::1]", "http://[fe80::1]:11434"),
])
def test_resolve_host_accepts_ollamas_forms(monkeypatch: pytest.MonkeyPatch, given: str | None,
                                           expected: str) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert resolve_host(given) == expected


def test_resolve_host_reads_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")
    assert resolve_host(None) == "http://127.0.0.1:11500"
    assert resolve_host("other:1") == "http://other:1"  # an explicit host wins


# --- streaming, thinking and the version probe --------------------------------------------

def test_new_server_gets_think_and_thinking_field_is_reasoning(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.9.0", chat=ndjson(
        chunk(thinking="The user asks 2+2. "), chunk(thinking="That is 4."),
        chunk("The answer"), chunk(" is **4**."), final()))
    stream = client.chat("What is 2+2?", model=MODEL, stream=True)
    assert isinstance(stream, ChatStream)
    kinds = [(c.kind, c.text) for c in stream]
    assert kinds[0] == ("thinking", "The user asks 2+2. ")
    assert {k for k, _ in kinds} == {"thinking", "answer"}
    reply = stream.reply
    assert reply.thinking == "The user asks 2+2. That is 4."
    assert reply.answer == "The answer is **4**."
    assert reply.status == "ok" and reply.backend == "ollama" and reply.model == MODEL
    [sent] = chat_requests(httpserver)
    assert sent["think"] is True
    assert sent["stream"] is True and sent["model"] == MODEL


def test_old_server_gets_no_think_and_inline_tags_are_split(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.6.8", chat=raw_stream(*INLINE))
    reply = client.chat("What is 2+2?", model=MODEL)
    assert isinstance(reply, Reply)
    assert reply.thinking == "The user asks 2+2. Two plus two is four."
    assert reply.answer == "The answer is **4**."
    assert "<think>" not in reply.answer + reply.thinking
    [sent] = chat_requests(httpserver)
    assert "think" not in sent


def test_template_injected_opening_tag_is_handled(httpserver: HTTPServer) -> None:
    # Some R1 templates end the prompt with "<think>\n": the output then has only "</think>".
    client = serve(httpserver, "0.6.8",
                   chat=raw_stream("Reasoning here.", "</think>", "\n\nFinal."))
    reply = client.chat("q", model=MODEL)
    assert (reply.thinking, reply.answer) == ("Reasoning here.", "Final.")


def test_think_false_on_new_server_sends_false_and_splits_inline(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.11.4", chat=raw_stream("<think>\n\n</think>\n\n", "Four."))
    reply = client.chat("q", model=MODEL, think=False)
    assert reply.answer == "Four." and reply.thinking == ""
    [sent] = chat_requests(httpserver)
    assert sent["think"] is False


def test_version_is_probed_once(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.9.0", chat=[raw_stream("<think>a</think>b")] * 2)
    client.chat("one", model=MODEL)
    client.chat("two", model=MODEL)
    probes = [req for req, _ in httpserver.log if req.path == "/api/version"]
    assert len(probes) == 1
    shows = [req for req, _ in httpserver.log if req.path == "/api/show"]
    assert len(shows) == 1  # model details are cached too


def test_final_chunk_gives_stats(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.9.0", chat=ndjson(
        chunk(thinking="hmm"), chunk("4"), final(eval_count=250, eval_duration=5_000_000_000)))
    reply = client.chat("q", model=MODEL)
    stats = reply.stats
    assert stats.tokens_per_s == pytest.approx(250 / 5_000_000_000 * 1e9)
    assert stats.eval_tokens == 250
    assert stats.load_time == pytest.approx(1.5)
    assert stats.prompt_tokens == 26
    assert stats.prompt_time == pytest.approx(0.13)
    assert stats.ttft is not None and stats.total_time is not None
    assert reply.done_reason == "stop"


def test_num_ctx_and_num_predict_always_sent(httpserver: HTTPServer) -> None:
    client = serve(httpserver, chat=[raw_stream("<think>x</think>y")] * 2)
    client.chat("q", model=MODEL)
    client.chat("q", model=MODEL, max_tokens=100, num_ctx=2048, seed=7, stop=["\n\nUser:"],
                options={"num_gpu": 0})
    first, second = (r["options"] for r in chat_requests(httpserver))
    assert first["num_ctx"] == 8192 and first["num_predict"] == 4096
    assert second["num_ctx"] == 2048 and second["num_predict"] == 100
    assert second["seed"] == 7 and second["stop"] == ["\n\nUser:"] and second["num_gpu"] == 0


def test_keep_alive_is_passed(httpserver: HTTPServer) -> None:
    serve(httpserver, chat=raw_stream("<think>x</think>y"))
    client = connect("ollama", host=httpserver.url_for(""), keep_alive="30m", set_default=False)
    client.chat("q", model=MODEL)
    [sent] = chat_requests(httpserver)
    assert sent["keep_alive"] == "30m"


# --- DeepSeek's recommendations --------------------------------------------------------------

def test_r1_recommendations_are_sent(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.9.0", show=SHOW_R1, chat=ndjson(chunk("ok"), final()))
    reply = client.chat("What is 2+2?", model=MODEL, system="You are terse.")
    [sent] = chat_requests(httpserver)
    assert sent["options"]["temperature"] == 0.6
    assert sent["options"]["top_p"] == 0.95
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert sent["messages"][0]["content"] == "You are terse.\n\nWhat is 2+2?"
    assert FOLD_NOTE in reply.notes


def test_explicit_sampling_overrides_recommendations(httpserver: HTTPServer) -> None:
    client = serve(httpserver, chat=ndjson(chunk("ok"), final()))
    client.chat("q", model=MODEL, temperature=0.0, top_p=1.0)
    [sent] = chat_requests(httpserver)
    assert sent["options"]["temperature"] == 0.0 and sent["options"]["top_p"] == 1.0


def test_r1_0528_is_recognised_from_model_info_and_keeps_system(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.9.0", show=SHOW_0528,
                   chat=ndjson(chunk(thinking="t", model="deepseek-r1:8b"),
                               chunk("ok", model="deepseek-r1:8b"), final()))
    reply = client.chat("Hi", model="deepseek-r1:8b", system="You are terse.")
    [sent] = chat_requests(httpserver)
    assert sent["messages"] == [{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": "Hi"}]
    assert sent["options"]["temperature"] == 0.6
    assert FOLD_NOTE not in reply.notes
    show = [req.get_json() for req, _ in httpserver.log if req.path == "/api/show"]
    assert show == [{"model": "deepseek-r1:8b"}]


def test_history_never_contains_reasoning(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.6.8", chat=[
        raw_stream(*INLINE),
        raw_stream("<think>\nThey want double.</think>", "\n\nThe answer is **8**."),
    ])
    conv = Conversation(client=client, model=MODEL)
    conv.send("What is 2+2?")
    second = conv.send("And doubled?")
    assert isinstance(second, Reply) and second.answer == "The answer is **8**."
    messages = chat_requests(httpserver)[1]["messages"]
    assert messages == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "The answer is **4**."},
        {"role": "user", "content": "And doubled?"},
    ]
    assert len(conv.history) == 4 and all("think" not in m["content"] for m in conv.history)


# --- errors ------------------------------------------------------------------------------------

def test_model_not_found_names_the_pull_command(httpserver: HTTPServer) -> None:
    missing = "deepseek-r1:70b"
    error = {"error": f"model '{missing}' not found"}
    httpserver.expect_request("/api/show", method="POST").respond_with_json(error, status=404)
    client = serve(httpserver, "0.9.0")
    httpserver.expect_request("/api/chat", method="POST").respond_with_json(error, status=404)
    with pytest.raises(ModelNotFound) as info:
        client.chat("Hi", model=missing)
    assert f"ds.models.pull('{missing}')" in str(info.value)
    assert f"ollama pull {missing}" in str(info.value)
    assert info.value.available == ["llama3.2:latest", MODEL]
    assert client.backend.model_details(missing) == {}


def test_out_of_memory_says_to_pick_a_smaller_model(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.9.0")
    httpserver.expect_request("/api/chat", method="POST").respond_with_json(
        {"error": "model requires more system memory (44.3 GiB) than is available (15.1 GiB)"},
        status=500)
    with pytest.raises(ServerError) as info:
        client.chat("Hi", model=MODEL)
    assert info.value.status == 500
    assert "44.3 GiB" in str(info.value) and "smaller model" in str(info.value)


def test_error_line_mid_stream_interrupts_with_partial(httpserver: HTTPServer) -> None:
    broken = ndjson(*(chunk(p) for p in INLINE[:5]),
                    {"error": "an error was encountered while running the model: unexpected EOF"})
    client = serve(httpserver, "0.6.8", chat=[raw_stream("<think>x</think>", "First answer."),
                                              broken])
    conv = Conversation(client=client, model=MODEL)
    conv.send("First?")
    before = [dict(m) for m in conv.history]
    with pytest.raises(StreamInterrupted) as info:
        conv.send("What is 2+2?")
    assert "unexpected EOF" in str(info.value)
    partial = info.value.partial
    assert partial is not None
    assert partial.thinking == "The user asks 2+2. Two plus two is four."
    assert partial.answer == "The answer"
    assert conv.history == before and len(conv.replies) == 1


def ollama_like(raw_server: Callable[..., RawServer], chat: Handler) -> RawServer:
    """A raw server that answers like Ollama 0.9 with an R1 model, and `chat` for /api/chat."""
    return raw_server({"/api/version": send_json({"version": "0.9.0"}),
                       "/api/show": send_json(SHOW_R1), "/api/chat": chat})


def test_dropped_connection_mid_stream_interrupts_with_partial(
        raw_server: Callable[..., RawServer]) -> None:
    def chat(conn: socket.socket, _request: Any) -> None:
        chunked_head(conn)
        ndjson_lines(conn, chunk(thinking="Adding two and two."), chunk("The answer is"))
        # then the socket closes without the final chunk or the chunked terminator

    server = ollama_like(raw_server, chat)
    client = connect("ollama", host=server.url, set_default=False)
    conv = Conversation(client=client, model=MODEL)
    with pytest.raises(StreamInterrupted) as info:
        conv.send("What is 2+2?")
    partial = info.value.partial
    assert partial is not None
    assert partial.thinking == "Adding two and two."
    assert partial.answer == "The answer is"
    assert conv.history == []


def test_closing_the_stream_early_closes_the_connection(
        raw_server: Callable[..., RawServer]) -> None:
    def chat(conn: socket.socket, _request: Any) -> None:
        chunked_head(conn)
        ndjson_lines(conn, chunk(thinking="Thinking hard"), chunk(thinking=" and long"))
        server.linger(conn, 10)  # a generation that never ends, until the client leaves

    server = ollama_like(raw_server, chat)
    client = connect("ollama", host=server.url, set_default=False)
    stream = client.chat("q", model=MODEL, stream=True)
    assert isinstance(stream, ChatStream)
    chunks = iter(stream)
    first = next(chunks)
    assert first.kind == "thinking"
    chunks.close()  # type: ignore[attr-defined]  # a generator: the consumer left early
    assert server.client_closed.wait(5), "the HTTP response was not closed"


def test_server_that_never_answers_fails_fast() -> None:
    # A listening socket nobody accepts from: TCP connects, but no HTTP answer ever comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        client = connect("ollama", host=host, set_default=False)
        start = time.monotonic()
        with pytest.raises(OllamaNotRunning) as info:
            client.chat("Hi", model=MODEL)
        assert time.monotonic() - start < 5  # bounds a hang only (probe_timeout is 2 s)
    assert "no answer within 2 s" in str(info.value)


def test_nothing_listening_says_how_to_fix_it() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    client = connect("ollama", host=f"127.0.0.1:{port}", set_default=False)
    with pytest.raises(OllamaNotRunning) as info:
        client.chat("Hi", model=MODEL)
    message = str(info.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "OLLAMA_HOST" in message and "ollama serve" in message and "embedded" in message
    backend = client.backend
    with pytest.raises(OllamaNotRunning):
        backend.describe()


def test_non_ollama_server_is_not_mistaken_for_ollama(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/version").respond_with_data("<html>hello</html>",
                                                              content_type="text/html")
    backend = OllamaBackend(host=httpserver.url_for(""))
    with pytest.raises(OllamaNotRunning, match="not like Ollama"):
        backend.version()


@pytest.mark.parametrize("version", ["0.9.0", "0.6.8"])
def test_reply_ending_while_thinking_has_no_answer(httpserver: HTTPServer, version: str) -> None:
    if version == "0.9.0":
        body = ndjson(chunk(thinking="Let me think"), chunk(thinking=" step by step"),
                      final("length", eval_count=4096))
    else:
        body = raw_stream("<think>\nLet me", " think step by step", done_reason="length")
    client = serve(httpserver, version, chat=body)
    reply = client.chat("Prove it.", model=MODEL)
    assert reply.unfinished_reasoning is True
    assert reply.answer == "" and "step by step" in reply.thinking
    assert reply.status.startswith("no answer")
    assert reply.done_reason == "length"


# --- models and description ----------------------------------------------------------------------

def test_models_default_model_and_describe(httpserver: HTTPServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSKIT_MODEL", raising=False)
    client = serve(httpserver, "0.9.2")
    assert client.models() == ["llama3.2:latest", MODEL]
    assert client.default_model == MODEL  # the first local deepseek-r1
    assert client.backend.describe() == {"backend": "ollama", "host": httpserver.url_for("")
                                         .rstrip("/"), "version": "0.9.2",
                                         "models": ["llama3.2:latest", MODEL]}
    monkeypatch.setenv("DSKIT_MODEL", "deepseek-r1:14b")
    assert client.default_model == "deepseek-r1:14b"
    given = OllamaBackend(host=httpserver.url_for(""), model="deepseek-r1:1.5b")
    assert given.default_model == "deepseek-r1:1.5b"
    details = client.backend.model_details(MODEL)
    assert details["model_info"]["general.architecture"] == "qwen2"
    assert details["capabilities"] == ["completion", "thinking"]


def test_default_model_falls_back_without_a_local_r1(httpserver: HTTPServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSKIT_MODEL", raising=False)
    httpserver.expect_request("/api/tags").respond_with_json({"models": []})
    client = serve(httpserver)
    assert client.default_model == "deepseek-r1:7b"


def test_model_without_thinking_support_is_retried_without_think(httpserver: HTTPServer) -> None:
    # A model pulled before Ollama 0.9 has a template without thinking support.
    client = serve(httpserver, "0.9.0")
    httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_json(
        {"error": f"\"registry.ollama.ai/library/{MODEL}\" does not support thinking"},
        status=400)
    httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
        raw_stream(*INLINE), content_type=NDJSON)
    reply = client.chat("What is 2+2?", model=MODEL)
    assert reply.answer == "The answer is **4**."
    assert reply.thinking == "The user asks 2+2. Two plus two is four."
    first, second = chat_requests(httpserver)
    assert first["think"] is True and "think" not in second
    assert any("does not support thinking" in n for n in reply.notes)


def test_stream_ending_without_final_chunk_is_interrupted(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.9.0", chat=ndjson(chunk(thinking="hmm"), chunk("Partial")))
    with pytest.raises(StreamInterrupted, match="final chunk") as info:
        client.chat("q", model=MODEL)
    assert info.value.partial is not None and info.value.partial.answer == "Partial"


def test_think_false_answer_without_tags_is_an_answer(httpserver: HTTPServer) -> None:
    # Ollama >= 0.9 honours think=false for R1 by closing the reasoning in the prompt itself.
    client = serve(httpserver, "0.9.0", chat=raw_stream("Four", "."))
    reply = client.chat("q", model=MODEL, think=False)
    assert (reply.thinking, reply.answer) == ("", "Four.")


def test_r1_that_skips_reasoning_on_an_old_server_is_an_answer(httpserver: HTTPServer) -> None:
    # No tags at all and a natural stop: the model answered directly, it did not "stop thinking".
    client = serve(httpserver, "0.6.8", chat=raw_stream("Four", "."))
    reply = client.chat("q", model=MODEL)
    assert (reply.thinking, reply.answer) == ("", "Four.")
    assert not reply.unfinished_reasoning and reply.status == "ok"
    assert reply.stats.thinking_tokens == 0 and reply.stats.answer_tokens
    assert "The model answered without reasoning." in reply.notes


def test_r1_cut_off_mid_reasoning_on_an_old_server_has_no_answer(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.6.8", chat=raw_stream("Let me think", done_reason="length"))
    reply = client.chat("q", model=MODEL)
    assert reply.thinking == "Let me think" and reply.unfinished_reasoning
    assert reply.status.startswith("no answer")


# --- stalled servers, malformed replies, echoed secrets ------------------------------------------

def stalling(server_box: list[RawServer], *parts: dict[str, Any], headers: bool = True) -> Handler:
    """A /api/chat handler that sends `parts` and then nothing, until the client leaves."""
    def chat(conn: socket.socket, _request: Any) -> None:
        if headers:
            chunked_head(conn)
            ndjson_lines(conn, *parts)
        server_box[0].linger(conn, 30)
    return chat


def stalled(raw_server: Callable[..., RawServer], *parts: dict[str, Any],
            headers: bool = True) -> RawServer:
    box: list[RawServer] = []
    box.append(ollama_like(raw_server, stalling(box, *parts, headers=headers)))
    return box[0]


@pytest.mark.parametrize("where", ["before the headers", "after the headers", "mid-reply"])
def test_stop_ends_a_stalled_reply_at_once(raw_server: Callable[..., RawServer],
                                           where: str) -> None:
    parts = [chunk(thinking="Adding two and two."), chunk("The answer is")] \
        if where == "mid-reply" else []
    server = stalled(raw_server, *parts, headers=where != "before the headers")
    stream = connect("ollama", host=server.url, set_default=False).chat(
        "What is 2+2?", model=MODEL, stream=True)
    assert isinstance(stream, ChatStream)
    stop_while_reading(stream, lambda got: any(r.path == "/api/chat" for r in server.requests)
                       and len(got) >= len(parts))
    assert stream.reply.done_reason == "stopped"
    assert stream.reply.answer == ("The answer is" if parts else "")
    if where != "before the headers":  # the socket was shut: Ollama stops generating
        assert server.client_closed.wait(10)


def test_a_silent_server_becomes_stream_interrupted_with_the_partial_reply(
        raw_server: Callable[..., RawServer]) -> None:
    server = stalled(raw_server, chunk(thinking="Adding."), chunk("It is"))
    client = connect("ollama", host=server.url, set_default=False, idle_timeout=1)
    with pytest.raises(StreamInterrupted, match="sent nothing for 1 s") as info:
        client.chat("What is 2+2?", model=MODEL)
    assert "DSKIT_IDLE_TIMEOUT" in str(info.value)
    partial = info.value.partial
    assert partial is not None and partial.answer == "It is" and partial.thinking == "Adding."


def test_the_idle_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OllamaBackend().idle_timeout == 300.0  # generous: R1 may think for minutes
    monkeypatch.setenv("DSKIT_IDLE_TIMEOUT", "45")
    assert OllamaBackend().idle_timeout == 45.0
    assert OllamaBackend(idle_timeout=7).idle_timeout == 7.0
    monkeypatch.setenv("DSKIT_IDLE_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="DSKIT_IDLE_TIMEOUT='soon'"):
        OllamaBackend()


@pytest.mark.parametrize("bad", [
    {"model": MODEL, "message": {"role": "assistant", "content": 5}, "done": False},
    {"model": MODEL, "message": "not an object", "done": False},
    [1, 2, 3],
    {"model": MODEL, "message": {"role": "assistant", "content": "x"}, "done": "later"},
])
def test_a_malformed_field_is_a_dskit_error_with_the_partial_reply(
        raw_server: Callable[..., RawServer], bad: Any) -> None:
    def chat(conn: socket.socket, _request: Any) -> None:
        chunked_head(conn)
        ndjson_lines(conn, chunk(thinking="Adding."), chunk("The answer"))
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(json.dumps(bad)) + 1,
                                                   json.dumps(bad).encode() + b"\n"))

    client = connect("ollama", host=ollama_like(raw_server, chat).url, set_default=False)
    with pytest.raises(StreamInterrupted, match="sent a reply dskit cannot read") as info:
        client.chat("What is 2+2?", model=MODEL)
    partial = info.value.partial
    assert partial is not None and partial.answer == "The answer"


def test_a_malformed_listing_is_a_dskit_error(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server({"/api/version": send_json({"version": "0.9.0"}),
                         "/api/tags": send_json({"models": [{"model": 5, "size": "big"}]})})
    with pytest.raises(BackendError, match="cannot read"):
        OllamaBackend(host=server.url).list_models()


OLLAMA_KEY = "ollama-key-SECRET-9f8e7d"


def echoing(key: str) -> dict[str, Handler]:
    """Ollama endpoints that echo `key` in every field they can."""
    def chat(conn: socket.socket, request: Any) -> None:
        if b"first" in request.body:  # an HTTP error whose body quotes the key
            body = json.dumps({"error": f"invalid key {key}"}).encode()
            conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            return
        chunked_head(conn)
        ndjson_lines(conn, chunk(f"echo {key}"))  # model output: the user's own data, kept
        if b"second" in request.body:  # an error line mid-stream
            ndjson_lines(conn, {"error": f"runner failed for {key}"})
        elif b"fourth" in request.body:  # a long value, which pydantic quotes cut in the middle
            ndjson_lines(conn, {"model": MODEL, "message": {"role": "assistant", "content": [
                "x" * 60 + key]}, "done": False})
        else:  # a malformed line quoting it
            ndjson_lines(conn, {"model": MODEL, "message": {"role": key, "content": [key]},
                                "done": False})
        conn.sendall(b"0\r\n\r\n")
    return {"/api/version": send_json({"version": "0.9.0"}), "/api/show": send_json(SHOW_R1),
            "/api/chat": chat, "/api/tags": send_json({"models": [{"model": key, "size": 1}]})}


def test_an_echoed_key_never_reaches_a_message(raw_server: Callable[..., RawServer],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", OLLAMA_KEY)
    server = raw_server(echoing(OLLAMA_KEY))
    client = connect("ollama", host=server.url, set_default=False)
    errors = []
    for prompt in ("first", "second", "third", "fourth"):
        with pytest.raises(BackendError) as info:
            client.chat(prompt, model=MODEL)
        errors.append(info.value)
    sent = next(r for r in server.requests if r.path == "/api/chat")
    assert sent.headers["authorization"] == f"Bearer {OLLAMA_KEY}"  # it was really sent
    models = client.models()
    shown = [text for exc in errors for text in (
        str(exc), repr(exc), "".join(traceback.format_exception(exc)))] + [str(models)]
    assert all("***" in str(exc) for exc in errors[:2]) and "***" in str(models)
    for exc in errors[2:]:  # a malformed reply: the field is named, its value is not quoted
        assert "message.content: Input should be a valid string" in str(exc)
    for text in shown:
        assert OLLAMA_KEY not in text
        assert OLLAMA_KEY[2:14] not in text  # nor most of it, left by a shortened quote


def test_pulling_may_be_silent_longer_than_the_idle_limit(
        raw_server: Callable[..., RawServer]) -> None:
    def pull(conn: socket.socket, _request: Any) -> None:
        chunked_head(conn)
        ndjson_lines(conn, {"status": "pulling manifest"}, {"status": "verifying sha256 digest"})
        time.sleep(2.5)  # verifying hundreds of GB: silent, and not stalled
        ndjson_lines(conn, {"status": "success"})
        conn.sendall(b"0\r\n\r\n")

    server = raw_server({"/api/version": send_json({"version": "0.9.0"}), "/api/pull": pull})
    backend = OllamaBackend(host=server.url, idle_timeout=1)
    assert [p["status"] for p in backend.pull(MODEL)][-1] == "success"


@pytest.mark.parametrize(("server", "words"), [
    (None, "Ollama 0.12.4 at"), ("dskit 0.1.0", "is a `dskit serve` from before token")])
def test_logprobs_from_a_server_before_them_say_what_to_upgrade(
        httpserver: HTTPServer, server: str | None, words: str) -> None:
    httpserver.expect_request("/api/version").respond_with_json(
        {"version": "0.12.4", **({"server": server} if server else {})})
    client = serve(httpserver, "0.12.4")  # the version route above answers first
    with pytest.raises(LogprobsUnsupported, match="logprobs=True") as err:
        client.chat("2加2等于几？", "deepseek-r1:7b", logprobs=True)
    assert words in str(err.value)
    assert not chat_requests(httpserver)  # refused before anything was sent
