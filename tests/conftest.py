"""Shared fixtures: the real embedded model, a raw HTTP server, a scripted backend, the CLI."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes import ScriptedBackend
from tests.rawhttp import Handler, RawServer

#: The embedded stand-ins (both ship in PyPI packages installed by the project's set-up).
SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"


#: Markers applied from what a test uses (`make test-fast` deselects them all): a fixture that
#: loads a real model, starts a process or a browser, or a notebook run by nbmake.
FIXTURE_MARKS = {
    "embedded": "model", "embedded_client": "model", "llama_server": "model",
    "run_dskit": "subprocess",
}
HEAVY = ("model", "subprocess", "browser", "notebook")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fast", action="store_true",
                     help="run only the tests that load no model and start no process, browser "
                          "or notebook (make test-fast); a test that does fails, to be marked")


def pytest_configure(config: pytest.Config) -> None:
    for name, what in [("model", "loads a real model (llama.cpp)"),
                       ("subprocess", "starts a dskit or Python process"),
                       ("browser", "drives headless Chromium"),
                       ("notebook", "runs a notebook top to bottom")]:
        config.addinivalue_line("markers", f"{name}: {what}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by the fixtures it uses (transitively), its folder or its kind."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, mark in FIXTURE_MARKS.items():
            if fixture in names:
                item.add_marker(mark)
        if "browser" in item.path.parts:
            item.add_marker("browser")
        if item.path.suffix == ".ipynb":
            item.add_marker("notebook")
        if item.get_closest_marker("slow") is not None:
            item.add_marker("model")
    _one_run_per_notebook(config, items)
    if config.getoption("--fast"):
        heavy = [i for i in items if any(i.get_closest_marker(m) for m in HEAVY)]
        if heavy:
            config.hook.pytest_deselected(items=heavy)
            items[:] = [i for i in items if not any(i.get_closest_marker(m) for m in HEAVY)]


#: Notebooks a browser test runs whole in JupyterLab (Run All Cells, failing on any error
#: output) before it drives their widgets: nbmake running them again proves nothing more.
RUN_BY_BROWSER_TESTS = {"00_setup.ipynb": "test_setup_notebook",
                        "01_chat.ipynb": "test_chat_notebook_and_widget",
                        "02_model_sizes.ipynb": "test_model_sizes_notebook",
                        "03_knowledge_base.ipynb": "test_knowledge_base_notebook_and_widget",
                        "04_compare.ipynb": "test_compare_notebook_and_widget",
                        "05_api_and_clients.ipynb": "test_api_and_clients_notebook",
                        "06_reasoning_budget.ipynb": "test_reasoning_budget_notebook",
                        "07_structured_output_and_tools.ipynb":
                            "test_structured_output_and_tools_notebook",
                        "08_inside_the_trace.ipynb": "test_inside_the_trace_notebook",
                        "09_confidence.ipynb": "test_confidence_notebook"}


def _one_run_per_notebook(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out nbmake's run of a notebook that a selected browser test runs whole, where the
    browser tests can run (Chromium and Playwright are there; CI requires them)."""
    from tests.browser.conftest import _missing_browser

    if _missing_browser() is not None:
        return  # the browser tests skip here: nbmake's run is the notebook's only run
    browser_tests = {i.name for i in items if "browser" in i.path.parts}
    twice = [i for i in items if i.path.suffix == ".ipynb"
             and RUN_BY_BROWSER_TESTS.get(i.path.name) in browser_tests]
    if twice:
        config.hook.pytest_deselected(items=twice)
        items[:] = [i for i in items if i not in twice]


@pytest.fixture(autouse=True)
def _fast_loop_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under --fast, loading a model or starting a process fails the test, which must then be
    marked: the fast loop stays fast because nothing slips into it unmarked."""
    if not request.config.getoption("--fast"):
        return

    def refuse(what: str, mark: str) -> Callable[..., None]:
        def fail(*args: Any, **kwargs: Any) -> None:
            pytest.fail(f"this test {what} under --fast: mark it @pytest.mark.{mark}",
                        pytrace=False)
        return fail

    # Where dskit loads a chat or embedding model, and where any process is started (patched
    # there, not in constructors, so that no half-made object is left behind).
    monkeypatch.setattr(subprocess.Popen, "_execute_child",
                        refuse("starts a process", "subprocess"))
    try:
        from dskit import embeddings
        from dskit.backends.embedded import EmbeddedBackend
    except ImportError:
        return
    monkeypatch.setattr(EmbeddedBackend, "load", refuse("loads a model", "model"))
    monkeypatch.setattr(embeddings, "_local_encoder", refuse("loads a model", "model"))


@pytest.fixture
def unused_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def embedded() -> Iterator[Any]:
    """One real llama.cpp backend for the whole run: each stand-in is loaded once."""
    from dskit.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(n_ctx=4096)
    yield backend
    backend.unload()


@pytest.fixture(scope="session")
def embedded_client(embedded: Any) -> Any:
    """A `Client` on the shared embedded backend (not made the default client)."""
    import dskit as ds

    return ds.connect(embedded, set_default=False)


@pytest.fixture
def scripted() -> Callable[..., Any]:
    """Make a `Client` on a `ScriptedBackend`: `scripted(["<think>a", "</think>b"])`."""
    import dskit as ds

    def make(*scripts: Any, **kwargs: Any) -> Any:
        return ds.connect(ScriptedBackend(*scripts, **kwargs), set_default=False)

    return make


@pytest.fixture
def raw_server() -> Iterator[Callable[[dict[str, Handler]], RawServer]]:
    """Start raw HTTP servers on 127.0.0.1 (`raw_server({path: handler})`); closed afterwards."""
    servers: list[RawServer] = []

    def make(routes: dict[str, Handler]) -> RawServer:
        server = RawServer(routes)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def run_dskit() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the `dskit` command in a subprocess, as a user would, and capture its output."""

    def run(*args: str, stdin: str = "", env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        # OLLAMA_HOST points at a port nobody listens on: an Ollama that happens to run on this
        # machine must not change what the command does (a test sets it to say otherwise).
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            nowhere = f"127.0.0.1:{s.getsockname()[1]}"
        full_env = {**os.environ, "OLLAMA_HOST": nowhere, **(env or {})}
        return subprocess.run([sys.executable, "-m", "dskit", *args], input=stdin,
                              capture_output=True, text=True, timeout=timeout, env=full_env)

    return run


@dataclass
class CliResult:
    """What `dskit_cli` returns: the shape of `subprocess.CompletedProcess`."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def dskit_cli(embedded: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run the `dskit` command in this process (`dskit.cli.main(argv)`), as `run_dskit` does in
    a subprocess: the same arguments, stdin and environment, output captured, and the session's
    embedded backend, so that no interpreter starts and no model loads again."""
    import dskit.client
    from dskit.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    # Any backend the command makes for "embedded" is the session's (same models, loaded once).
    monkeypatch.setattr(dskit.client, "EmbeddedBackend", lambda **kwargs: embedded)
    monkeypatch.setattr(dskit.client, "_default", None)  # what the command sets is undone

    def run(*args: str, stdin: str = "", env: dict[str, str] | None = None,
            timeout: float = 600) -> CliResult:
        del timeout  # a subprocess's limit; pytest-timeout covers the test
        with monkeypatch.context() as m:
            m.setenv("OLLAMA_HOST", nowhere)
            for name, value in (env or {}).items():
                m.setenv(name, value)
            out, err = io.StringIO(), io.StringIO()
            m.setattr(sys, "stdin", io.StringIO(stdin))
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exc:  # argparse: --help, a usage error
                    code = exc.code if isinstance(exc.code, int) else 1
        return CliResult(list(args), code, out.getvalue(), err.getvalue())

    return run
