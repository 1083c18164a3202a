"""Secrets never reach output: known ones in any encoding, and by shape (URL credentials,
Bearer/Basic values, sk- keys), in errors, doctor(), HTTP log records, tool results and
exports."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

import dskit as ds
from dskit.backends.base import Delta, Done
from dskit.errors import BackendError, redact, register_secret
from dskit.reply import Stats
from dskit.tools import ToolRequest

KEY = "sk-live-7Qx9Zr2Lm4Np6Vt8Wy0Ab"  # a made-up key in a platform's shape


def forms(secret: str) -> list[str]:
    """How a server or a library may echo a secret back."""
    return [secret, secret.upper(), secret.lower(), base64.b64encode(secret.encode()).decode(),
            secret[:9] + "\n" + secret[9:], "".join(f"\\u{ord(c):04x}" for c in secret),
            "&#" + ";&#".join(str(ord(c)) for c in secret) + ";"]


@pytest.mark.parametrize("i", range(7))
def test_a_known_secret_is_redacted_in_each_encoding(i: int):
    register_secret(KEY)
    echoed = forms(KEY)[i]
    assert KEY[5:15].lower() not in redact(f"the server said: {echoed}!").lower()


@pytest.mark.parametrize("text", [
    "https://alice:s3cr3t-pass@api.example.invalid/v1/chat",
    "Authorization: Bearer abcdEFGH1234ijkl", "auth=Basic dXNlcjpwYXNzd29yZA==",
    "key sk-proj-AAAABBBBCCCCDDDDEEEE1234",
])
def test_secrets_are_redacted_by_their_shape(text: str):
    out = redact(text)
    assert all(part not in out for part in ("s3cr3t", "abcdEFGH", "dXNlcjpw", "AAAABBBB"))
    assert "***" in out


def test_doctor_never_shows_a_base_url_password(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DSKIT_OPENAI_BASE_URL", "http://bob:hunter2-secret@127.0.0.1:9/v1")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    report = ds.doctor()
    for shown in (str(report), report._repr_html_(), report.to_frame().to_string()):
        assert "hunter2" not in shown and "bob:" not in shown


def test_http_log_records_carry_no_credentials(httpserver: HTTPServer,
                                               caplog: pytest.LogCaptureFixture):
    httpserver.expect_request("/v1/models").respond_with_json(
        {"object": "list", "data": [{"id": "m", "object": "model"}]})
    url = httpserver.url_for("/v1").replace("http://", "http://carol:pw-9f8e7d6c@")
    with caplog.at_level(logging.DEBUG):
        client = ds.connect("openai", base_url=url, api_key=KEY, set_default=False)
        assert client.models() == ["m"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in logged  # httpx did log the request…
    assert "pw-9f8e7d6c" not in logged and KEY not in logged  # …without the secrets


def test_a_tool_error_holding_a_key_reaches_neither_the_model_nor_an_export(scripted: Any):
    def fetch(city: str) -> str:
        """Fetch the weather."""
        raise ConnectionError(f"GET https://dave:{KEY}@weather.invalid/{city} failed")

    client = scripted(
        [Done(stats=Stats(), tool_calls=[ToolRequest("fetch", {"city": "杭州"})])],
        [Delta("answer", "杭州天气未知。"), Done(stats=Stats())])
    reply = ds.chat("杭州天气如何？", "fake:1b", client=client, tools=[fetch])
    sent_back = str(client.backend.requests[1].messages)
    for text in (sent_back, str(reply.tool_calls), reply.to_markdown(), reply.to_html()):
        assert KEY not in text and "dave:" not in text
    assert "ConnectionError" in reply.tool_calls[0].error


def test_an_error_echoing_a_key_in_any_encoding_is_clean(httpserver: HTTPServer):
    echoed = " | ".join(forms(KEY))
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_data(
        f'{{"error": {{"message": "bad key {echoed}"}}}}', status=500,
        content_type="application/json")
    client = ds.connect("openai", base_url=httpserver.url_for("/v1"), api_key=KEY,
                        set_default=False)
    with pytest.raises(BackendError) as caught:
        client.chat("hi", "m")
    message = str(caught.value).lower()
    assert KEY[5:15].lower() not in message
    assert base64.b64encode(KEY.encode()).decode()[:12].lower() not in message


def test_a_clipped_message_ends_at_a_word_and_says_it_was_cut():
    """Errors quoting a server are not cut mid-word (issue 27), and never exceed the limit."""
    from dskit.errors import clip

    text = "the model deepseek-r1:7b could not be loaded because the server ran out of memory"
    short = clip(text, 40)
    assert short.endswith("…") and len(short) <= 40 and text.startswith(short[:-1])
    assert short[:-1].split()[-1] in text.split()  # a whole word before the mark
    chinese = "服务器内存不足，无法加载模型 deepseek-r1:7b，请换一个更小的模型再试一次"
    assert len(clip(chinese, 10)) <= 10 and clip(chinese, 10).endswith("…")
    assert clip("short", 40) == "short"
