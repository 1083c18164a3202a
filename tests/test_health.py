"""doctor(): backend choice and why, machine facts, advice; text and HTML renderings."""

from __future__ import annotations

import dskit as ds


def test_doctor_without_ollama(monkeypatch, unused_port):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{unused_port}")
    monkeypatch.delenv("DSKIT_BACKEND", raising=False)
    rep = ds.doctor()
    assert rep.backend == "embedded"
    text = str(rep)
    assert "not reachable" in text and "Ollama" in text
    assert "qwen2.5-coder:0.5b" in text
    assert any("ollama pull deepseek-r1" in a for a in rep.advice)
    html = rep._repr_html_()
    assert "<table>" in html and "RAM" in html
    # Commands in the advice are set as code, not shown with raw backticks (issue 27).
    assert "<code>ollama pull deepseek-r1" in html and "`" not in html
    frame = rep.to_frame()
    assert list(frame.columns) == ["check", "finding", "status"]


def test_doctor_respects_forced_backend(monkeypatch, unused_port):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{unused_port}")
    monkeypatch.setenv("DSKIT_BACKEND", "openai")
    rep = ds.doctor()
    assert rep.backend == "openai"
    assert "DSKIT_BACKEND=openai" in str(rep)


def test_doctor_never_shows_api_keys(monkeypatch, unused_port):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{unused_port}")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-doctor-SECRET-42")
    rep = ds.doctor()
    assert "SECRET" not in str(rep) and "SECRET" not in rep._repr_html_()
    assert "API key set" in str(rep)


def test_doctor_html_escapes_before_it_sets_code():
    """Findings and advice are escaped first: only backticked spans become code."""
    from dskit.checkup import Report

    rep = Report()
    rep.add("模型", "run `ollama pull <b>x</b>` first", "warn")
    rep.advice.append("运行 `ollama serve`，然后重试")
    shown = rep._repr_html_()
    assert "<code>ollama pull &lt;b&gt;x&lt;/b&gt;</code>" in shown
    assert "<code>ollama serve</code>" in shown and "<b>x</b>" not in shown


def test_doctor_warns_when_other_programs_keep_the_cpu_busy(monkeypatch, unused_port):
    """Speeds measured on a busy CPU mislead (issue 27): doctor() says so before any is taken."""
    from dskit import sysinfo

    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{unused_port}")
    monkeypatch.setattr(sysinfo, "cpu_load", lambda seconds=0.5: sysinfo.CpuLoad(1.6, 2, 0.5))
    rep = ds.doctor()
    cpu = next(r for r in rep.rows if r[0] == "CPU")
    assert cpu[2] == "warn" and "busy: other programs kept 1.6 of 2 cores busy" in cpu[1]
    assert any("speeds measured now" in a and "`ds.compare`" in a for a in rep.advice)
    assert "<code>ds.compare</code>" in rep._repr_html_()

    monkeypatch.setattr(sysinfo, "cpu_load", lambda seconds=0.5: sysinfo.CpuLoad(0.1, 2, 0.5))
    rep = ds.doctor()
    cpu = next(r for r in rep.rows if r[0] == "CPU")
    assert cpu[2] == "info" and "other programs kept 0.1 of 2 cores busy" in cpu[1]
    assert not any("busy" in a for a in rep.advice)
