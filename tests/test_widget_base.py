"""Feedback pieces shared by the widgets: status states, worker errors and stop, model loading."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading

import pytest

import dskit as ds
from dskit.backends.embedded import EmbeddedBackend
from dskit.errors import ConfigurationError
from dskit.widgets.base import StatusLine, Worker, prepare_model

SMALL = "smollm2:135m"


def test_status_line_states_carry_classes_and_a_serial():
    s = StatusLine()
    assert s.state == "idle" and "dskit-status" in s._dom_classes
    s.busy("loading <x>")
    assert "dskit-spinner" in s.value and "loading &lt;x&gt;" in s.value
    assert "dskit-state-busy" in s._dom_classes and "data-serial='1'" in s.value
    s.progress("file", 50, 200)
    assert "<progress" in s.value and "25 %" in s.value
    s.done("10 tok/s")
    assert s.state == "done" and "dskit-stats-line" in s.value and s.text == "10 tok/s"
    assert "class='dskit-spinner'" not in s.value
    assert [c for c in s._dom_classes if c.startswith("dskit-state-")] == ["dskit-state-done"]
    s.error(ConfigurationError("set <FOO>"))
    assert s.state == "error" and "set &lt;FOO&gt;" in s.value and s.serial == 4


def test_worker_shows_errors_and_ends_busy():
    status, seen = StatusLine(), []
    w = Worker(status, seen.append)

    def job():
        raise ValueError("boom")

    assert w.start(job)
    w.wait(10)
    assert seen == [True, False] and not w.busy
    assert status.state == "error" and "ValueError: boom" in status.value


def test_worker_stop_cancels_the_current_step_even_if_registered_late():
    w = Worker(StatusLine(), lambda _busy: None)
    gate, cancelled = threading.Event(), threading.Event()

    def job():
        gate.wait(10)
        w.cancel_with(cancelled.set)  # Stop was pressed before this step began

    w.start(job)
    assert not w.start(job)  # one job at a time
    w.stop()
    gate.set()
    w.wait(10)
    assert cancelled.is_set() and w.stopping.is_set()


def test_prepare_model_loads_with_a_spinner(embedded_client):
    embedded_client.backend.unload(SMALL)  # the shared backend may hold it already
    status = StatusLine()
    prepare_model(embedded_client, SMALL, status)
    assert SMALL in embedded_client.backend.loaded()
    assert re.match(r"loaded smollm2:135m in \d+\.\d s; waiting for the first token", status.text)
    # The load was timed and shown here: the next reply does not count it in its own stats.
    reply = embedded_client.chat("Hi", SMALL, max_tokens=4)
    assert not reply.stats.load_time and "load" not in reply.stats.summary()
    status.clear()
    prepare_model(embedded_client, SMALL, status)  # loaded already: says nothing
    assert status.state == "idle"


def test_chat_widget_stop_while_loading_never_generates(embedded_client):
    embedded_client.backend.unload()
    w = ds.widgets.chat(client=embedded_client, model=SMALL)
    w.prompt.value = "hello"
    w.send()
    w.stop()  # before the model is ready: nothing is generated
    w.wait(120)
    assert w.status.state == "stopped" and not w.busy
    assert w.history.value == "" and w.conversation.history == []


@pytest.mark.model
def test_prepare_model_shows_progress_while_the_file_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("DSKIT_CACHE_DIR", str(tmp_path))  # no stamp yet: the file is verified
    backend = EmbeddedBackend(n_ctx=512)
    status, seen = StatusLine(), []
    original = status._show

    def record(state, body, text):
        seen.append((state, text))
        original(state, body, text)

    status._show = record
    try:
        prepare_model(ds.connect(backend, set_default=False), SMALL, status)
    finally:
        backend.unload()
    texts = [t for _, t in seen]
    assert any(t.startswith("preparing the model file of smollm2:135m") for t in texts), texts
    assert "loading smollm2:135m into memory…" in texts and texts[-1].startswith("loaded ")
    assert {s for s, _ in seen} == {"busy"} and "100 %" in " ".join(texts)


@pytest.mark.subprocess
def test_prepare_embedder_shows_the_conversion(tmp_path):
    """A fresh process and cache: the MiniLM GGUF is made with a progress bar, then loaded."""
    code = (
        "from dskit.embeddings import LocalEmbedder, local_ready\n"
        "from dskit.widgets.base import StatusLine, prepare_embedder\n"
        "status, seen = StatusLine(), []\n"
        "status.observe(lambda change: seen.append(status.text), 'value')\n"
        "prepare_embedder(LocalEmbedder(), status)\n"
        "assert local_ready()\n"
        "print('\\n'.join(seen))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "DSKIT_CACHE_DIR": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "loading the embedding model…"
    bars = [t for t in lines if t.startswith("converting the embedding model for llama.cpp")]
    assert bars and bars[-1].endswith("100 %"), lines
    assert any(p.suffix == ".gguf" for p in tmp_path.iterdir())
