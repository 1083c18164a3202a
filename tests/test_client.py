"""connect(): automatic and forced backend choice, the default client."""

from __future__ import annotations

import pytest

import dskit as ds
from dskit.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _no_forced_backend(monkeypatch):
    monkeypatch.delenv("DSKIT_BACKEND", raising=False)


def test_auto_picks_ollama_when_it_answers(monkeypatch, httpserver):
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.12.3"})
    monkeypatch.setenv("OLLAMA_HOST", httpserver.url_for("/").rstrip("/"))
    client = ds.connect(set_default=False)
    assert client.name == "ollama"
    assert "answered" in client.reason


def test_auto_falls_back_to_embedded(monkeypatch, unused_port):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{unused_port}")
    client = ds.connect(set_default=False)
    assert client.name == "embedded"
    assert "not reachable" in client.reason
    assert client.default_model == "qwen2.5-coder:0.5b"


def test_env_forces_a_backend(monkeypatch):
    monkeypatch.setenv("DSKIT_BACKEND", "embedded")
    client = ds.connect(set_default=False)
    assert client.name == "embedded" and client.reason == "DSKIT_BACKEND=embedded"


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="ollama, openai, embedded"):
        ds.connect("llamafile", set_default=False)


def test_connect_sets_the_default(monkeypatch):
    import dskit.client as c

    monkeypatch.setattr(c, "_default", None)
    client = ds.connect("embedded")
    assert c.default_client() is client


def test_empty_prompt_and_bad_messages_are_rejected():
    client = ds.connect("embedded", set_default=False)
    with pytest.raises(ConfigurationError, match="empty"):
        client.chat("   ")
    with pytest.raises(ConfigurationError, match="role"):
        client.chat([{"role": "robot", "content": "x"}])
