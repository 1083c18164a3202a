"""pull / switch / loaded: Ollama against a server replaying its documented shapes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dskit import sysinfo
from dskit.backends.base import ChatRequest, Delta, Options
from dskit.client import Client, connect
from dskit.errors import (
    BackendError,
    ConfigurationError,
    InsufficientResources,
    ModelNotFound,
    ServerError,
)
from dskit.models import manage
from dskit.models.family import spec_for
from dskit.weights import files as model_files

NDJSON = "application/x-ndjson"
R1_7B, R1_14B, LLAMA = "deepseek-r1:7b", "deepseek-r1:14b", "llama3.2:latest"
D1 = "sha256:aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899"
D2 = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

TAGS = {"models": [
    {"name": name, "model": name, "size": size, "digest": "0a8c26691023",
     "modified_at": "2025-05-01T10:00:00.000000000-07:00",
     "details": {"format": "gguf", "family": "qwen2", "parameter_size": "7.6B"}}
    for name, size in ((LLAMA, 2019393189), (R1_7B, 4683075271), (R1_14B, 8988124069))
]}

# /api/pull as docs/api.md shows it: manifest, layers without then with `completed`, the end.
PULL_LINES = [
    {"status": "pulling manifest"},
    {"status": f"pulling {D1[7:19]}", "digest": D1, "total": 4_683_073_184},
    {"status": f"pulling {D1[7:19]}", "digest": D1, "total": 4_683_073_184,
     "completed": 241_970},
    {"status": f"pulling {D2[7:19]}", "digest": D2, "total": 1_065, "completed": 1_065},
    {"status": f"pulling {D1[7:19]}", "digest": D1, "total": 4_683_073_184,
     "completed": 2_000_000_000},
    {"status": f"pulling {D1[7:19]}", "digest": D1, "total": 4_683_073_184,
     "completed": 4_683_073_184},
    {"status": "verifying sha256 digest"},
    {"status": "writing manifest"},
    {"status": "removing any unused layers"},
    {"status": "success"},
]

# /api/ps: fully on GPU, on CPU only, and split between the two.
PS = {"models": [
    {"name": R1_7B, "model": R1_7B, "size": 6_000_000_000, "size_vram": 6_000_000_000,
     "digest": "2ae6f6dd7a3d", "details": {"format": "gguf", "family": "qwen2"},
     "expires_at": "2025-06-04T14:38:31.83753-07:00", "context_length": 8192},
    {"name": LLAMA, "model": LLAMA, "size": 3_000_000_000, "size_vram": 0,
     "digest": "a80c4f17acd5", "details": {"format": "gguf", "family": "llama"},
     "expires_at": "2025-06-04T14:40:00.0-07:00"},
    {"name": "deepseek-r1:32b", "model": "deepseek-r1:32b", "size": 22_000_000_000,
     "size_vram": 11_000_000_000, "digest": "38056bbcbb2d",
     "details": {"format": "gguf", "family": "qwen2"},
     "expires_at": "2025-06-04T14:41:00.0-07:00"},
]}


def ndjson(*objs: dict[str, Any]) -> str:
    return "\n".join(json.dumps(o) for o in objs) + "\n"


def serve(httpserver: HTTPServer, tags: dict[str, Any] | None = None) -> Client:
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.9.0"})
    httpserver.expect_request("/api/tags").respond_with_json(tags or TAGS)
    return connect("ollama", host=httpserver.url_for(""), set_default=False)


def bodies(httpserver: HTTPServer, path: str) -> list[dict[str, Any]]:
    return [req.get_json() for req, _ in httpserver.log if req.path == path]


@pytest.fixture
def roomy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with plenty of disk and memory (the checks pass)."""
    monkeypatch.setattr(sysinfo, "disk_free", lambda path=None: (str(path or "/models"), 10**13))
    monkeypatch.setattr(sysinfo, "ram", lambda: (512 * 10**9, 500 * 10**9))
    monkeypatch.setattr(sysinfo, "gpus", lambda timeout=5.0: [])


@pytest.fixture
def small_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 GB of RAM, no GPU and 10 GB of free disk."""
    monkeypatch.setattr(sysinfo, "disk_free", lambda path=None: ("/small/models", 10 * 10**9))
    monkeypatch.setattr(sysinfo, "ram", lambda: (8 * 10**9, 6 * 10**9))
    monkeypatch.setattr(sysinfo, "gpus", lambda timeout=5.0: [])


# --- Ollama: pull ------------------------------------------------------------------------------

def test_pull_draws_a_bar_per_layer_up_to_its_total(httpserver: HTTPServer, roomy: None) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*PULL_LINES), content_type=NDJSON)
    out = io.StringIO()
    summary = manage.pull("deepseek-r1:8b", client, progress=out)

    assert bodies(httpserver, "/api/pull") == [
        {"model": "deepseek-r1:8b", "insecure": False, "stream": True}]
    assert summary["tag"] == "deepseek-r1:8b" and summary["status"] == "success"
    assert summary["seconds"] >= 0 and summary["backend"] == "ollama"
    assert summary["layers"] == {D1: {"total": 4_683_073_184, "completed": 4_683_073_184},
                                 D2: {"total": 1_065, "completed": 1_065}}
    text = out.getvalue()
    assert f"pulling {D1[7:19]}" in text and f"pulling {D2[7:19]}" in text
    assert "4.68G/4.68G" in text and "1.06k/1.06k" in text  # both bars reached their totals
    for status in ("pulling manifest", "verifying sha256 digest", "writing manifest"):
        assert status in text


def test_pull_progress_cannot_steer_the_terminal(httpserver: HTTPServer, roomy: None) -> None:
    # A server's status lines and digests reach the terminal: no escape, C1 or bidi control.
    hostile = [{"status": "pulling manifest\x1b]0;owned\x07\x1b[2J\x9b31m"},
               {"status": "x", "digest": "sha256:\u202eabc\x1b[31mdef", "total": 10,
                "completed": 10},
               {"status": "verifying \u202egnp.exe\x85"}, {"status": "success"}]
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*hostile), content_type=NDJSON)
    out = io.StringIO()
    manage.pull("deepseek-r1:8b", client, progress=out)
    text = out.getvalue()
    assert "pulling manifest]0;owned[2J31m" in text and "verifying gnp.exe" in text
    assert "pulling abc[31mdef" in text
    for control in ("\x1b]", "\x07", "\x1b[2J", "\x1b[31m", "\x9b", "\x85", "\u202e"):
        assert control not in text, repr(control)


def test_pull_without_progress_prints_nothing(httpserver: HTTPServer, roomy: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*PULL_LINES), content_type=NDJSON)
    summary = manage.pull("deepseek-r1:8b", client.backend, progress=False)
    assert summary["status"] == "success"
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_pull_of_an_unknown_model_is_model_not_found(httpserver: HTTPServer,
                                                     roomy: None) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson({"status": "pulling manifest"},
               {"error": "pull model manifest: file does not exist"}), content_type=NDJSON)
    with pytest.raises(ModelNotFound) as info:
        manage.pull("deepseek-r1:9b", client, progress=io.StringIO())
    message = str(info.value)
    assert "deepseek-r1:9b" in message and "ollama.com/library" in message
    assert "file does not exist" in message


def test_pull_404_is_model_not_found(httpserver: HTTPServer, roomy: None) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_json(
        {"error": "model 'nope:1b' not found"}, status=404)
    with pytest.raises(ModelNotFound):
        manage.pull("nope:1b", client, progress=False)


def test_pull_that_stops_before_success_says_to_rerun(httpserver: HTTPServer,
                                                      roomy: None) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*PULL_LINES[:4]), content_type=NDJSON)
    with pytest.raises(Exception, match="again to resume"):
        manage.pull("deepseek-r1:8b", client, progress=False)


def test_pull_failing_midway_says_to_rerun(httpserver: HTTPServer, roomy: None) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*PULL_LINES[:3], {"error": "max retries exceeded: connection reset by peer"}),
        content_type=NDJSON)
    with pytest.raises(BackendError) as info:
        manage.pull("deepseek-r1:8b", client, progress=False)
    assert "max retries exceeded" in str(info.value)
    assert "run `ds.models.pull('deepseek-r1:8b')` again" in str(info.value)


def test_interrupted_pull_closes_bars_and_says_it_resumes(httpserver: HTTPServer, roomy: None,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    client = serve(httpserver)
    bars: list[Any] = []
    real = manage._Bars.update

    def update(self: Any, *args: Any) -> None:
        real(self, *args)
        bars.extend(b for b in self.bars.values() if b not in bars)
        raise KeyboardInterrupt  # the user presses Ctrl-C (Kernel > Interrupt) mid-download

    monkeypatch.setattr(manage._Bars, "update", update)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*PULL_LINES), content_type=NDJSON)
    with pytest.raises(KeyboardInterrupt, match="again to resume"):
        manage.pull("deepseek-r1:8b", client, progress=io.StringIO())
    assert bars and all(b.disable for b in bars)  # tqdm marks closed bars disabled


# --- Ollama: disk and memory checks -------------------------------------------------------------

def test_too_big_model_is_refused_with_what_is_short(httpserver: HTTPServer,
                                                      small_machine: None) -> None:
    client = serve(httpserver)
    spec = spec_for("deepseek-r1:70b")
    assert spec is not None and spec.download_gb > 10 and spec.memory_gb > 8
    with pytest.raises(InsufficientResources) as info:
        manage.pull("deepseek-r1:70b", client, progress=False)
    message = str(info.value)
    assert "disk" in message and "/small/models" in message and "memory" in message
    assert f"{spec.download_gb - 10:.1f} GB short" in message
    assert "smaller tag" in message and "force=True" in message
    assert {s["resource"] for s in info.value.shortages} == {"disk", "memory"}
    assert not bodies(httpserver, "/api/pull")  # refused before anything was downloaded


def test_force_pulls_anyway(httpserver: HTTPServer, small_machine: None) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*PULL_LINES), content_type=NDJSON)
    summary = manage.pull("deepseek-r1:70b", client, progress=False, force=True)
    assert summary["status"] == "success"
    assert bodies(httpserver, "/api/pull")[0]["model"] == "deepseek-r1:70b"


def test_memory_only_shortage_when_disk_is_enough(httpserver: HTTPServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    client = serve(httpserver)
    monkeypatch.setattr(sysinfo, "disk_free", lambda path=None: ("/big", 10**13))
    monkeypatch.setattr(sysinfo, "ram", lambda: (4 * 10**9, 3 * 10**9))
    monkeypatch.setattr(sysinfo, "gpus", lambda timeout=5.0: [])
    with pytest.raises(InsufficientResources) as info:
        manage.pull("deepseek-r1:70b", client, progress=False)
    assert [s["resource"] for s in info.value.shortages] == ["memory"]
    assert "no GPU" in str(info.value)


def test_gpu_memory_counts(httpserver: HTTPServer,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    client = serve(httpserver)
    need = spec_for("deepseek-r1:14b").memory_gb * 1e9
    monkeypatch.setattr(sysinfo, "disk_free", lambda path=None: ("/big", 10**13))
    monkeypatch.setattr(sysinfo, "ram", lambda: (int(need / 2), int(need / 4)))
    gpu = sysinfo.GPU("NVIDIA A10", int(need / 2**20), 0, "550.54")
    monkeypatch.setattr(sysinfo, "gpus", lambda timeout=5.0: [gpu])
    assert manage.check_resources("deepseek-r1:14b", client) == [
        f"{R1_14B} is already pulled: disk check skipped"]


def test_checks_are_skipped_for_a_tag_the_catalog_does_not_know(
        httpserver: HTTPServer, small_machine: None) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*PULL_LINES), content_type=NDJSON)
    summary = manage.pull("llama3.3:70b", client, progress=False)
    assert summary["status"] == "success"
    assert any("not in the catalog" in n for n in summary["notes"])


def test_a_cloud_tag_is_not_weighed_against_this_machine(
        httpserver: HTTPServer, small_machine: None) -> None:
    """deepseek-v4-pro:cloud runs on ollama.com: a small machine does not refuse its pull."""
    client = serve(httpserver)
    httpserver.expect_request("/api/pull", method="POST").respond_with_data(
        ndjson(*PULL_LINES), content_type=NDJSON)
    summary = manage.pull("deepseek-v4-pro:cloud", client, progress=False)
    assert summary["status"] == "success"
    assert any("does not run on this machine (ollama-cloud" in n for n in summary["notes"])
    # a local tag whose size the catalog lacks is pulled too, with the reason checks were skipped
    notes = manage.check_resources("deepseek-v3.1:671b", client)
    assert notes == ["the catalog has no download size for deepseek-v3.1:671b: disk and memory "
                     "checks skipped"]


def test_remote_ollama_is_not_measured_with_this_machine(small_machine: None) -> None:
    from dskit.backends.ollama import OllamaBackend

    notes = manage.check_resources("deepseek-r1:70b", OllamaBackend(host="gpu-box:11434"))
    assert "not on this machine" in notes[0]


# --- Ollama: ps / loaded / switch ---------------------------------------------------------------

def test_loaded_lists_ps_with_placement(httpserver: HTTPServer) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/ps").respond_with_json(PS)
    table = manage.loaded(client)
    assert list(table.columns) == manage.LOADED_COLUMNS
    assert list(table["model"]) == [R1_7B, LLAMA, "deepseek-r1:32b"]
    assert list(table["on"]) == ["GPU", "CPU", "split"]
    assert list(table["memory_GB"]) == [6.0, 3.0, 22.0]
    assert list(table["vram_GB"]) == [6.0, 0.0, 11.0]
    assert table["expires"][0].isoformat().startswith("2025-06-04T14:38:31")
    assert table["context"][0] == 8192

    rows = client.backend.ps()
    assert rows[0]["size"] == 6_000_000_000 and rows[0]["context_length"] == 8192
    assert "context_length" not in rows[1]


def test_loaded_when_nothing_is_loaded(httpserver: HTTPServer) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    table = manage.loaded(client)
    assert table.empty and list(table.columns) == manage.LOADED_COLUMNS


def generate_handler(load_ns: int | None = 2_500_000_000):
    """/api/generate for empty requests: unload (keep_alive=0) or load, as docs/api.md shows."""
    def handle(request: Request) -> Response:
        body = request.get_json()
        reply: dict[str, Any] = {"model": body["model"], "created_at": "2024-09-12T03:54:03Z",
                                 "response": "", "done": True}
        if body.get("keep_alive") == 0:
            reply["done_reason"] = "unload"
        else:
            reply["done_reason"] = "load"
            if load_ns is not None:
                reply["load_duration"] = load_ns
        return Response(json.dumps(reply), content_type="application/json")
    return handle


def test_switch_unloads_the_others_then_preloads(httpserver: HTTPServer,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/ps").respond_with_json(PS)
    httpserver.expect_request("/api/generate", method="POST").respond_with_handler(
        generate_handler())
    seconds = manage.switch(R1_7B, client)

    assert seconds == 2.5
    sent = bodies(httpserver, "/api/generate")
    # 7b is already loaded: only the other two are unloaded, then 7b is (re)loaded.
    assert sent[:2] == [{"model": LLAMA, "keep_alive": 0, "stream": False},
                        {"model": "deepseek-r1:32b", "keep_alive": 0, "stream": False}]
    assert sent[2] == {"model": R1_7B, "stream": False}
    assert len(sent) == 3 and all("prompt" not in b for b in sent)
    assert "deepseek-r1:7b loaded in 2.50 s" in capsys.readouterr().out


def test_switch_without_load_duration_measures_wall_time(httpserver: HTTPServer) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    httpserver.expect_request("/api/generate", method="POST").respond_with_handler(
        generate_handler(load_ns=None))
    seconds = manage.switch(R1_14B, client, quiet=True)
    assert 0 < seconds < 5


def test_switch_keeps_its_keep_alive(httpserver: HTTPServer) -> None:
    serve(httpserver)
    client = connect("ollama", host=httpserver.url_for(""), keep_alive="1h", set_default=False)
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    httpserver.expect_request("/api/generate", method="POST").respond_with_handler(
        generate_handler())
    manage.switch(R1_14B, client, quiet=True)
    assert bodies(httpserver, "/api/generate") == [
        {"model": R1_14B, "keep_alive": "1h", "stream": False}]


def test_switch_to_a_model_not_pulled_unloads_nothing(httpserver: HTTPServer) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/ps").respond_with_json(PS)
    with pytest.raises(ModelNotFound) as info:
        manage.switch("deepseek-r1:70b", client)
    assert "ds.models.pull('deepseek-r1:70b')" in str(info.value)
    assert not bodies(httpserver, "/api/generate")


def test_switch_to_a_model_too_big_for_memory(httpserver: HTTPServer) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    httpserver.expect_request("/api/generate", method="POST").respond_with_json(
        {"error": "model requires more system memory (9.7 GiB) than is available (5.1 GiB)"},
        status=500)
    with pytest.raises(ServerError) as info:
        manage.switch(R1_14B, client)
    assert info.value.status == 500
    message = str(info.value)
    assert f"cannot load {R1_14B}" in message and "9.7 GiB" in message
    assert "smaller model" in message


def test_unload_sends_keep_alive_zero(httpserver: HTTPServer) -> None:
    client = serve(httpserver)
    httpserver.expect_request("/api/generate", method="POST").respond_with_handler(
        generate_handler())
    client.backend.unload(R1_7B)
    assert bodies(httpserver, "/api/generate") == [
        {"model": R1_7B, "keep_alive": 0, "stream": False}]


def test_openai_backend_cannot_manage_models() -> None:
    backend = type("OpenAILike", (), {"name": "openai"})()  # chat only: no ps/pull/unload
    with pytest.raises(ConfigurationError, match="cannot manage models"):
        manage.loaded(backend)


# --- embedded (real llama.cpp models) ----------------------------------------------------------

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"


@pytest.fixture(scope="module")
def embedded() -> Any:
    from dskit.backends.embedded import EmbeddedBackend

    b = EmbeddedBackend(n_ctx=512, max_loaded=1)
    yield b
    b.unload()


def test_embedded_pull_shows_progress(embedded: Any, tmp_path: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSKIT_CACHE_DIR", str(tmp_path))  # nothing verified yet
    out = io.StringIO()
    summary = manage.pull(SMALL, embedded, progress=out)
    size = model_files.STANDINS[SMALL].size
    assert summary["status"] == "success" and summary["backend"] == "embedded"
    assert summary["layers"] == {SMALL: {"total": size, "completed": size}}
    assert f"verifying {SMALL}" in out.getvalue() and "100%" in out.getvalue()

    again = manage.pull(SMALL, embedded, progress=False)  # verified: nothing to do
    assert again["layers"][SMALL]["completed"] == size
    assert embedded.loaded() == [] or SMALL in embedded.loaded()  # pulling does not load


def test_embedded_switch_keeps_one_model_and_counts_loads(embedded: Any) -> None:
    embedded.unload()
    before = embedded.loads
    t_small = manage.switch(SMALL, embedded, quiet=True)
    assert embedded.loaded() == [SMALL] and embedded.loads == before + 1
    assert t_small > 0
    t_qwen = manage.switch(QWEN, embedded, quiet=True)
    assert embedded.loaded() == [QWEN] and embedded.loads == before + 2
    assert t_qwen > 0
    assert manage.switch(QWEN, embedded, quiet=True) == 0.0  # already loaded: no new load
    assert embedded.loads == before + 2

    table = manage.loaded(embedded)
    assert list(table["model"]) == [QWEN]
    assert list(table["on"]) == ["CPU"] and list(table["vram_GB"]) == [0.0]
    # Memory in use: the weights plus the KV cache of the 512-token window, more than the file.
    weights = model_files.STANDINS[QWEN].size / 1e9
    assert weights < table["memory_GB"][0] < weights * 1.2
    assert table["expires"].isna().all()


def test_embedded_max_loaded_evicts_the_least_recently_used(embedded: Any) -> None:
    embedded.unload()
    embedded.preload(SMALL)
    before = embedded.loads
    embedded.preload(QWEN)  # no explicit unload: the limit of 1 evicts smollm2
    assert embedded.loaded() == [QWEN] and embedded.loads == before + 1
    rows = embedded.ps()
    assert rows == [{"name": QWEN, "model": QWEN, "size": rows[0]["size"],
                     "size_vram": 0, "expires_at": None, "context_length": 512}]
    assert rows[0]["size"] > model_files.STANDINS[QWEN].size  # weights + KV cache


def test_eviction_never_waits_for_a_paused_reply(embedded: Any) -> None:
    embedded.unload()
    request = ChatRequest(SMALL, [{"role": "user", "content": "Count to ten."}],
                          Options(max_tokens=8, temperature=0))
    stream = embedded.stream(request)
    first = next(stream)  # smollm2 is now busy with a paused reply in this very thread
    assert isinstance(first, Delta)
    embedded.preload(QWEN)  # must not deadlock: the busy model is kept for now
    assert set(embedded.loaded()) == {SMALL, QWEN}
    rest = list(stream)  # the reply still finishes
    assert rest and rest[-1].done_reason in ("stop", "length")
    embedded.preload(SMALL)  # back under the limit once it is free
    assert embedded.loaded() == [SMALL]


def test_embedded_unknown_tag_is_model_not_found(embedded: Any) -> None:
    with pytest.raises(ModelNotFound) as info:
        manage.pull("deepseek-r1:7b-nope", embedded, progress=False)
    assert SMALL in info.value.available
    loaded = embedded.loaded()
    with pytest.raises(ModelNotFound):
        manage.switch("deepseek-r1:7b-nope", embedded)
    assert embedded.loaded() == loaded  # nothing was unloaded


def test_max_loaded_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from dskit.backends.embedded import EmbeddedBackend, default_max_loaded

    assert default_max_loaded() >= 1
    monkeypatch.setenv("DSKIT_MAX_LOADED", "3")
    assert EmbeddedBackend().max_loaded == 3
    assert EmbeddedBackend(max_loaded=1).max_loaded == 1
    monkeypatch.setenv("DSKIT_MAX_LOADED", "many")
    with pytest.raises(ConfigurationError, match="DSKIT_MAX_LOADED"):
        EmbeddedBackend()
    monkeypatch.delenv("DSKIT_MAX_LOADED")
    with pytest.raises(ConfigurationError):
        EmbeddedBackend(max_loaded=0)


def test_a_pull_that_would_leave_no_headroom_is_tight(httpserver: HTTPServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The fit rule of recommend(): 23.1 GB needed of 23.9 GB is tight, said before the pull."""
    client = serve(httpserver)
    monkeypatch.setattr(sysinfo, "disk_free", lambda path=None: ("/big", 10**13))
    monkeypatch.setattr(sysinfo, "ram", lambda: (int(23.9e9), int(20e9)))
    monkeypatch.setattr(sysinfo, "gpus", lambda timeout=5.0: [])
    notes = manage.check_resources("deepseek-r1:32b", client)
    assert any("23.1 GB of the 23.9 GB" in n and "tight, less than 2.4 GB" in n for n in notes)
    roomy = manage.check_resources("deepseek-r1:14b", client)
    assert not any("tight" in n for n in roomy)
