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


def test_dskit_serve_on_ollamas_port_is_recognised(monkeypatch, embedded):
    # Following notebook 05's advice (`dskit serve` on 11434) must not break the other lessons:
    # connect() says what answered, picks a model the server has, doctor() says the same.
    monkeypatch.delenv("DSKIT_MODEL", raising=False)
    with ds.serve.start(port=0, backend=embedded) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        client = ds.connect(set_default=False)
        assert client.name == "ollama" and "`dskit serve` answered" in client.reason
        assert client.default_model in ("qwen2.5-coder:0.5b", "smollm2:135m")
        reply = client.chat("Say hi.", max_tokens=8)
        assert reply.answer and "(a stand-in, not DeepSeek)" in reply.footer()
        report = str(ds.doctor())
        assert "dskit serve" in report and "not Ollama" in report
        assert "ollama pull deepseek-r1" not in report  # no advice to pull into dskit serve
        with pytest.raises(ds.errors.ModelNotFound, match="dskit serve"):
            client.chat("hi", "deepseek-r1:7b")


def test_the_cpu_is_judged_only_where_the_model_runs_on_it(scripted):
    """Busy-CPU warnings (issue 27) concern models computed on this machine, not elsewhere."""
    from dskit.backends.ollama import OllamaBackend
    from dskit.client import cpu_load_meter
    from dskit.sysinfo import CpuLoad

    local = cpu_load_meter(OllamaBackend(host="127.0.0.1:11434"))()  # sampled, no request
    assert isinstance(local, CpuLoad) and local.cores >= 1
    assert isinstance(cpu_load_meter(OllamaBackend(host="localhost:11434"))(), CpuLoad)
    assert cpu_load_meter(OllamaBackend(host="gpu-box.example:11434"))() is None
    assert cpu_load_meter(scripted("你好"))() is None  # a backend with no machine of its own
