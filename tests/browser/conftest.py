"""Browser fixtures: JupyterLab and Voilà servers, headless Debian Chromium through Playwright.

Every server runs in its own process group and is always shut down. Each test's page saves a
screenshot and the browser console log into `artifacts/browser/` (or $DSKIT_ARTIFACTS): named
`<test>.png` on success and `<test>-FAILED.png` on failure, so a failure shows what was on screen.
A missing browser skips these tests locally but fails them under CI (env CI set).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from .lab import BROWSER_ARGS, CHROMIUM, LabPage

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def _missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: `apt-get install chromium` (Debian's package)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: `pip install -e '.[dev]'`"
    return None


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    reason = _missing_browser()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env() -> dict[str, str]:
    """The environment for servers and their kernels: this checkout's dskit, embedded backend."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("DSKIT_BACKEND", "embedded")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Server:
    """A server subprocess in its own process group, its log in a file, always stopped."""

    def __init__(self, cmd: list[str], url: str, log: Path, cwd: Path,
                 shutdown: str | None = None) -> None:
        self.url, self.log, self.shutdown_url = url, log, shutdown
        self._log = log.open("wb")
        env = server_env()
        # Connection files and cookie secrets of this server stay in its own folder.
        env["JUPYTER_RUNTIME_DIR"] = str(cwd / ".runtime")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, probe: str, timeout: float = 120) -> None:
        """Poll `probe` until it answers 200, failing early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(probe, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)  # readiness polling of a starting process, not a wait on state
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.tail()}")

    def wait_listening(self, port: int, timeout: float = 120) -> None:
        """Wait until something accepts connections on `port`, failing early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.25)  # readiness polling of a starting process, not a wait on state
        raise TimeoutError(f"server not listening after {timeout} s:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        """The last lines of the server log."""
        self._log.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        """Ask politely (kernels shut down with the server), then end the whole process group.

        Kernels run in sessions of their own: any still alive afterwards are ended by pid.
        """
        try:
            kernels = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            kernels = []
        if self.proc.poll() is None and self.shutdown_url:
            try:
                httpx.post(self.shutdown_url, timeout=5)
                self.proc.wait(timeout=20)
            except (httpx.HTTPError, subprocess.TimeoutExpired):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
        _gone, alive = psutil.wait_procs(kernels, timeout=10)
        for p in alive:
            p.kill()
        self._log.close()


def _lab_settings(settings: Path) -> None:
    """JupyterLab settings for a test: every cell rendered, no news or update pop-ups."""
    overrides = {
        "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension:notification": {
            "checkForUpdates": False, "fetchNews": "false",
        },
    }
    for plugin, values in overrides.items():
        package, name = plugin.split(":")
        target = settings / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots and console logs go."""
    path = Path(os.environ.get("DSKIT_ARTIFACTS") or ROOT / "artifacts" / "browser")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Server]:
    """JupyterLab on 127.0.0.1 with a random token, serving a copy of the notebooks."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    _lab_settings(base / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1",
           "--port", str(port), f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={base / 'settings'}",
           f"--LabApp.workspaces_dir={base / 'workspaces'}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.port_retries=0", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.news_url=None"]
    if os.geteuid() == 0:  # CI runs as root; JupyterLab refuses that unless told
        cmd.append("--ServerApp.allow_root=True")
    server = Server(cmd, url, artifacts / "jupyterlab.log", root,
                    shutdown=f"{url}api/shutdown?token={token}")
    server.token = token  # type: ignore[attr-defined]
    try:
        server.wait_ready(f"{url}api/status?token={token}")
        yield server
    finally:
        server.stop()


# Module scope: the app's kernels hold a model; they are shut down before the next module runs.
@pytest.fixture(scope="module")
def voila_app(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`dskit app` (Voilà serving the chat widget) on 127.0.0.1."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "dskit", "app", "--port", str(port), "--no-browser"]
    server = Server(cmd, url, artifacts / "voila.log", tmp_path_factory.mktemp("voila"))
    try:
        server.wait_listening(port, 120)  # not GET /: each page view starts a kernel
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Debian Chromium with a fresh profile, 1280 px wide: a laptop's screen, the width
    at which learners reported controls falling off the edge (issue 27)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            args=BROWSER_ARGS, headless=True, viewport={"width": 1280, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item, so the page fixture knows about failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser_context: Any, request: pytest.FixtureRequest, artifacts: Path) -> Iterator[Any]:
    """A new tab; afterwards its screenshot and console log are saved (named FAILED if so)."""
    page = browser_context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    page.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    yield page
    report = getattr(request.node, "report_call", None)
    failed = report is None or report.failed
    stem = request.node.name + ("-FAILED" if failed else "")
    shot = artifacts / f"{stem}.png"
    try:
        page.screenshot(path=str(shot), full_page=True)
    except Exception as exc:  # a crashed page still gets its console log saved
        console.append(f"[screenshot failed] {exc}")
    (artifacts / f"{stem}.console.log").write_text("\n".join(console) + "\n", encoding="utf-8")
    page.close()
    if failed:
        print(f"\nscreenshot and console log: {shot} and {stem}.console.log in {artifacts}")


@pytest.fixture
def lab(jupyter_lab: Server, page: Any) -> LabPage:
    """A JupyterLab tab with helpers to open and run notebooks and drive dskit widgets."""
    return LabPage(page, jupyter_lab.url, jupyter_lab.token)  # type: ignore[attr-defined]
