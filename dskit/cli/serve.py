"""`dskit serve` (Ollama's REST API over the embedded models) and `dskit app` (the chat page)."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import signal
import subprocess
import sys
from typing import Any

import psutil

from .. import config
from ..errors import ConfigurationError
from ..serve import DEFAULT_MAX_QUEUE, run
from ..sysinfo import is_loopback


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve Ollama's REST API over the embedded models until Ctrl-C."""
    run(args.host, args.port, models=args.model or None, token=args.token, expose=args.expose,
        max_queue=args.max_queue, keep_alive=args.keep_alive, max_body=args.max_body,
        max_prompt_chars=args.max_prompt_chars, origins=args.origin or (),
        log_level=args.log_level)
    return 0


def app_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The Voilà command line and environment that serve the chat app."""
    from importlib.resources import files

    notebook = files("dskit") / "data" / "chat_app.ipynb"
    cmd = [sys.executable, "-m", "voila", str(notebook), f"--port={args.port}",
           f"--Voila.ip={args.ip}", "--theme=light"]
    if args.no_browser:
        cmd.append("--no-browser")
    # The kernel inherits these: the app notebook reads them instead of taking arguments.
    overrides: dict[str, str] = {}
    if args.model:
        overrides["DSKIT_MODEL"] = args.model
    if args.backend and args.backend != "auto":
        overrides["DSKIT_BACKEND"] = args.backend
    if args.max_tokens:
        overrides["DSKIT_APP_MAX_TOKENS"] = str(args.max_tokens)
    return cmd, config.child_environment(**overrides)


def cmd_app(args: argparse.Namespace) -> int:
    """Serve the chat widget as a web page with Voilà (no notebook cells)."""
    if importlib.util.find_spec("voila") is None:
        raise ConfigurationError("`dskit app` needs Voilà: `pip install 'dskit[app]'`")
    cmd, env = app_command(args)
    if not is_loopback(args.ip):
        print(f"dskit app: WARNING: listening on {args.ip} makes the chat page (and the model "
              "behind it) reachable by anyone who can reach this machine, without a password; "
              "prefer an SSH tunnel to 127.0.0.1", file=sys.stderr, flush=True)
    print(f"dskit app: http://{args.ip}:{args.port}/ (Ctrl-C stops it)", flush=True)
    proc = subprocess.Popen(cmd, env=env)
    # A `kill` (SIGTERM) or a closed terminal (SIGHUP) ends the app like Ctrl-C does: its
    # Voilà server and the kernels it started must not outlive it.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        end_process_tree(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def end_process_tree(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop `proc` and everything it started (Voilà's kernels run in sessions of their own, so
    they are found by walking the process tree first, then ended if Voilà did not end them)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.terminate()  # Voilà shuts its kernels down on SIGTERM
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `serve` and `app`."""
    p = sub.add_parser("serve", help="serve Ollama's REST API (and /v1) over the embedded models")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; others need --expose)")
    p.add_argument("--port", type=int, default=11434, help="port (default 11434, Ollama's)")
    p.add_argument("--model", "-m", action="append",
                   help="serve only this model (repeatable); the first is loaded at start")
    p.add_argument("--expose", action="store_true",
                   help="allow a non-loopback --host: the API has no authentication of its own")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (prefer the "
                   "DSKIT_SERVE_TOKEN variable: command lines are visible to other users)")
    p.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE,
                   help="requests that may wait for a busy model before 503 (default "
                        f"{DEFAULT_MAX_QUEUE}, as Ollama's OLLAMA_MAX_QUEUE)")
    p.add_argument("--keep-alive", default="5m",
                   help="how long an idle model stays loaded (default 5m; -1 forever)")
    p.add_argument("--max-body", type=int, default=4 << 20, help="request body limit in bytes")
    p.add_argument("--max-prompt-chars", type=int, default=200_000,
                   help="prompt length limit in characters")
    p.add_argument("--origin", action="append",
                   help="extra browser origin allowed to use the server (repeatable; '*' allows "
                        "any web page); other pages get 403")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("app", parents=[common],
                       help="the chat widget as a web page (Voilà), on 127.0.0.1 by default")
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(fn=cmd_app)
