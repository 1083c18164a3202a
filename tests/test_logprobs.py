"""Token log-probabilities (`logprobs=True`): the real embedded model, and Ollama's and an
OpenAI-compatible server's exact request fields and response shapes, replayed."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

import dskit as ds
from dskit.backends.base import Delta, Done, Stats, Token, token_from_dict
from dskit.client import Client, connect
from dskit.errors import BackendError, ConfigurationError, LogprobsUnsupported
from tests.fakes import ScriptedBackend

SHELF = "一个书架有3层，每层放12本书。一共有多少本书？"
R1 = "deepseek-r1:7b"
SHOW = {"template": "{{ .Prompt }}", "capabilities": ["completion", "thinking"],
        "details": {"family": "qwen2", "parameter_size": "7.6B"},
        "model_info": {"general.architecture": "qwen2", "general.basename":
                       "DeepSeek-R1-Distill-Qwen"}}


def _lp(token: str, logprob: float, *alts: tuple[str, float]) -> dict[str, Any]:
    """One token in the OpenAI / Ollama shape."""
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                             for t, lp in alts]}


# -- the seam ---------------------------------------------------------------------------------

def test_a_token_round_trips_through_the_api_shape() -> None:
    token = Token("书", -0.25, (("书", -0.25), ("本", -1.75)), "书".encode())
    again = token_from_dict(token.as_dict())
    assert again == token
    assert token.as_dict()["bytes"] == list("书".encode())
    for bad in ({"logprob": -1.0}, {"token": "a", "logprob": "x"}, {"token": "a"}, "a",
                {"token": "a", "logprob": True}):
        with pytest.raises(ValueError):
            token_from_dict(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "fix"), [
    ({"logprobs": "yes"}, "True or False"),
    ({"logprobs": True, "top_logprobs": 21}, "0 to 20"),
    ({"logprobs": True, "top_logprobs": -1}, "0 to 20"),
    ({"top_logprobs": True}, "0 to 20"),
    ({"logprobs": True, "exit_at": [0, 64]}, "exit_at"),
])
def test_wrong_settings_say_the_fix(given: dict[str, Any], fix: str) -> None:
    client = Client(ScriptedBackend(["x"]))
    with pytest.raises(ConfigurationError, match=fix):
        if "exit_at" in given:
            ds.compare("fake:1b", ["q"], client=client, progress=False, **given)
        else:
            ds.chat("q", client=client, **given)


def test_tokens_get_the_phase_their_text_went_to() -> None:
    """Raw text split by the chat layer: a token's phase is where its text landed, and the
    tokens of the tags (text the reply does not show) are left out, so the tokens spell the
    reasoning and the answer."""
    t = [Token(x, -0.1, ((x, -0.1), ("?", -3.0))) for x in ("<think>", "想", "</think>", "36")]
    backend = ScriptedBackend([Delta("raw", "<think>", (t[0],)), Delta("raw", "想", (t[1],)),
                               Delta("raw", "</think>", (t[2],)), Delta("raw", "36", (t[3],)),
                               Done(Stats(eval_tokens=4), "stop")])
    reply = ds.chat(SHELF, client=Client(backend), logprobs=True, recommendations=False)
    assert backend.requests[0].logprobs == 5  # the default number of alternatives
    assert [(x.text, x.phase) for x in reply.tokens] == [("想", "thinking"), ("36", "answer")]
    assert reply.answer == "36" and reply.options["top_logprobs"] == 5


def test_a_server_that_sends_none_gets_a_note_and_nothing_changes_unasked() -> None:
    reply = ds.chat(SHELF, client=Client(ScriptedBackend(["36"])), logprobs=True)
    assert reply.tokens == [] and any("sent no token log-probabilities" in n
                                      for n in reply.notes)
    plain = ScriptedBackend(["36"])
    reply = ds.chat(SHELF, client=Client(plain))
    assert plain.requests[0].logprobs is None and "top_logprobs" not in reply.options
    with pytest.raises(ConfigurationError, match="logprobs=True"):
        reply.confidence()


# -- Ollama's shapes --------------------------------------------------------------------------

def _ollama(httpserver: HTTPServer, version: str, body: str, path: str = "/api/chat") -> Any:
    httpserver.expect_request("/api/version").respond_with_json({"version": version})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(SHOW)
    httpserver.expect_request("/api/tags").respond_with_json({"models": []})
    httpserver.expect_request(path, method="POST").respond_with_data(
        body, content_type="application/x-ndjson")
    return connect("ollama", host=httpserver.url_for(""), set_default=False)


def _lines(*objs: dict[str, Any]) -> str:
    return "\n".join(json.dumps(o) for o in objs) + "\n"


def _chunk(thinking: str = "", content: str = "", logprobs: list[Any] | None = None
           ) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    out: dict[str, Any] = {"model": R1, "created_at": "2025-12-01T00:00:00Z",
                           "message": message, "done": False}
    if logprobs is not None:
        out["logprobs"] = logprobs
    return out


FINAL = {"model": R1, "created_at": "2025-12-01T00:00:01Z",
         "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
         "eval_count": 3, "eval_duration": 30_000_000}


def test_ollama_gets_the_fields_and_its_tokens_are_read(httpserver: HTTPServer) -> None:
    body = _lines(_chunk(thinking="3×12", logprobs=[_lp("3×12", -0.5, ("3×12", -0.5),
                                                         ("3", -1.2))]),
                  _chunk(content="36", logprobs=[_lp("36", -0.05, ("36", -0.05),
                                                      ("37", -3.5))]),
                  _chunk(content="本", logprobs=[_lp("本", -0.2, ("本", -0.2), ("个", -1.9))]),
                  FINAL)
    client = _ollama(httpserver, "0.13.0", body)
    reply = ds.chat(SHELF, client=client, logprobs=True, top_logprobs=2, think=True)
    sent = next(r.get_json() for r, _ in httpserver.log if r.path == "/api/chat")
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    assert [(t.text, t.phase) for t in reply.tokens] == [
        ("3×12", "thinking"), ("36", "answer"), ("本", "answer")]
    assert reply.tokens[1].top == (("36", -0.05), ("37", -3.5))
    assert reply.answer == "36本"


def test_an_ollama_before_logprobs_is_refused_naming_the_version(httpserver: HTTPServer
                                                                   ) -> None:
    client = _ollama(httpserver, "0.12.10", _lines(_chunk(content="36"), FINAL))
    with pytest.raises(LogprobsUnsupported, match=r"0\.12\.10.*0\.12\.11"):
        ds.chat(SHELF, client=client, logprobs=True)
    assert not [r for r, _ in httpserver.log if r.path == "/api/chat"]  # nothing was sent
    reply = ds.chat(SHELF, client=client)  # unasked, the same server works as before
    assert reply.answer == "36" and reply.tokens == []
    sent = next(r.get_json() for r, _ in httpserver.log if r.path == "/api/chat")
    assert "logprobs" not in sent and "top_logprobs" not in sent


def test_a_malformed_ollama_logprob_is_an_error_naming_it(httpserver: HTTPServer) -> None:
    client = _ollama(httpserver, "0.13.0",
                     _lines(_chunk(content="36", logprobs=[{"token": "36"}]), FINAL))
    with pytest.raises(BackendError, match="logprob"):
        ds.chat(SHELF, client=client, logprobs=True)


# -- an OpenAI-compatible server's shapes (vLLM: reasoning_content beside content) ------------

def _sse(*chunks: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def _choice(delta: dict[str, Any], logprobs: list[Any] | None, finish: str | None = None
            ) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "r1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                         "logprobs": None if logprobs is None else {"content": logprobs}}]}


def test_openai_compatible_gets_the_fields_and_its_tokens_are_read(httpserver: HTTPServer
                                                                     ) -> None:
    body = _sse(_choice({"role": "assistant", "reasoning_content": "每层12本"},
                        [_lp("每层", -0.3, ("每层", -0.3), ("一", -1.5)),
                         _lp("12本", -0.1, ("12本", -0.1), ("十", -2.6))]),
                _choice({"content": "36"}, [_lp("36", -0.02, ("36", -0.02), ("35", -4.1))]),
                _choice({}, None, "stop"),
                {"id": "c1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3}})
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_data(
        body, content_type="text/event-stream")
    client = connect("openai", base_url=httpserver.url_for("/v1"), api_key="k",
                     set_default=False)
    reply = ds.chat(SHELF, "r1", client=client, logprobs=True, top_logprobs=2)
    sent = next(r.get_json() for r, _ in httpserver.log if r.path == "/v1/chat/completions")
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    assert [(t.text, t.phase) for t in reply.tokens] == [
        ("每层", "thinking"), ("12本", "thinking"), ("36", "answer")]
    assert reply.thinking == "每层12本" and reply.answer == "36"
    confidence = reply.confidence(window=2)
    assert confidence is not None and confidence.tokens == 3 and confidence.k == 2


# -- the real embedded model ------------------------------------------------------------------

@pytest.fixture(scope="module")
def shelf(embedded_client: Client) -> ds.Reply:
    return ds.chat(SHELF, client=embedded_client, logprobs=True, top_logprobs=4, think=True,
                   max_tokens=160, seed=7)


def test_embedded_tokens_add_up_to_the_reply_with_valid_probabilities(shelf: ds.Reply) -> None:
    thinking = "".join(t.text for t in shelf.tokens if t.phase == "thinking")
    answer = "".join(t.text for t in shelf.tokens if t.phase == "answer")
    assert answer.strip() == shelf.answer
    assert thinking.strip() and shelf.thinking.startswith(thinking.strip()[:20])
    for token in shelf.tokens:
        assert token.logprob <= 1e-6 and len(token.top) == 4
        probs = [lp for _, lp in token.top]
        assert probs == sorted(probs, reverse=True) and sum(math.exp(p) for p in probs) <= 1.0001
        # The chosen token's probability is its entry's when it is among the most likely.
        same = [lp for text, lp in token.top if text == token.text]
        if same and token.text:
            assert any(abs(lp - token.logprob) < 1e-4 for lp in same)
    assert any("\u4e00" <= ch <= "\u9fff" for t in shelf.tokens for ch in t.text)


def test_embedded_stream_stopped_keeps_the_tokens_so_far(embedded_client: Client) -> None:
    stream = ds.chat("Count from 1 to 50, one number per line.", client=embedded_client,
                     stream=True, logprobs=True, top_logprobs=1, max_tokens=200, seed=1)
    for i, _ in enumerate(stream):
        if i == 5:
            stream.stop()
    reply = stream.reply
    assert reply.done_reason == "stopped" and reply.tokens
    assert "".join(t.text for t in reply.tokens).strip().startswith(reply.answer[:10])


def test_embedded_raw_completion_gives_tokens(embedded_client: Client) -> None:
    from dskit.backends.base import Options

    events = list(embedded_client.backend.complete(  # type: ignore[attr-defined]
        embedded_client.default_model, "1, 2, 3, 4,", Options(max_tokens=6, temperature=0),
        logprobs=2))
    tokens = [t for ev in events if isinstance(ev, Delta) for t in ev.tokens]
    text = "".join(ev.text for ev in events if isinstance(ev, Delta))
    assert tokens and "".join(t.text for t in tokens) == text


def test_asking_changes_nothing_in_the_text(embedded_client: Client) -> None:
    """The same seed and settings give the same reply with and without log-probabilities."""
    args: dict[str, Any] = {"client": embedded_client, "max_tokens": 40, "seed": 3,
                            "temperature": 0}
    # Each from the same cache state: llama.cpp's sums differ in the last bits when a prompt is
    # evaluated in other batches (a cached prefix), which can tip a near-tie at temperature 0.
    ds.chat("你好", client=embedded_client, max_tokens=1)
    with_tokens = ds.chat(SHELF, logprobs=True, **args)
    ds.chat("你好", client=embedded_client, max_tokens=1)
    without = ds.chat(SHELF, **args)
    assert with_tokens.answer == without.answer and without.tokens == []


def test_confidence_needs_alternatives(embedded_client: Client) -> None:
    reply = ds.chat(SHELF, client=embedded_client, logprobs=True, top_logprobs=0,
                    max_tokens=8, seed=1)
    assert reply.tokens and all(t.top == () for t in reply.tokens)
    with pytest.raises(ConfigurationError, match="top_logprobs=5"):
        reply.confidence()



def test_the_log_softmax_matches_a_float64_reference() -> None:
    """The tap's arithmetic on a vocabulary-sized vector: log-probabilities within 1e-6 of a
    float64 log-softmax, the top ids the most likely, most likely first."""
    import numpy as np

    from dskit.backends.token_probs import _log_softmax_top

    rng = np.random.default_rng(0)
    logits = (rng.standard_normal(151_936) * 4).astype(np.float32)
    wide = logits.astype(np.float64)
    reference = wide - (wide.max() + np.log(np.exp(wide - wide.max()).sum()))
    ids, logprob_of = _log_softmax_top(logits, 5)
    assert ids == list(np.argsort(-reference)[:5])
    assert np.allclose(logprob_of(ids), reference[ids], atol=1e-6)
    assert abs(np.exp(reference).sum() - 1) < 1e-9 and _log_softmax_top(logits, 0)[0] == []
