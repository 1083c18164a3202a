"""The `dskit` command: doctor, chat, pull, models, compare, kb, serve, app, demo."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from .errors import DskitError, StreamInterrupted
from .reasoning import Chunk

if TYPE_CHECKING:
    from .client import Client

DEMO_PROMPT = "小明有 5 个苹果，吃了 2 个，又买了 4 个。他现在有几个苹果？"

# Model output is untrusted: drop terminal control sequences so it cannot move the cursor,
# retitle the window or hide text.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|"
                      r"[\x00-\x08\x0b-\x1f\x7f]")


def safe(text: str) -> str:
    """Model text with terminal control characters removed."""
    return _CONTROL.sub("", text)


class Printer:
    """Prints a chunk stream with the reasoning visibly apart from the answer."""

    def __init__(self, out: TextIO, hide_thinking: bool = False) -> None:
        self.out = out
        self.hide = hide_thinking
        self.colour = out.isatty()
        self.section: str | None = None

    def _style(self, code: str) -> str:
        return code if self.colour else ""

    def chunk(self, c: Chunk) -> None:
        """Print one chunk, opening a section header when the kind changes."""
        if c.kind == "thinking":
            if self.hide:
                if self.section != "thinking":
                    self.out.write(self._style("\x1b[2m") + "(thinking…)" + self._style("\x1b[0m"))
                    self.section = "thinking"
                self.out.flush()
                return
            if self.section != "thinking":
                self.out.write(self._style("\x1b[2;3m") + "[thinking]\n")
                self.section = "thinking"
            self.out.write(safe(c.text))
        else:
            if self.section != "answer":
                if self.section == "thinking":
                    self.out.write("\n" if self.hide else "\n[/thinking]" + self._style("\x1b[0m")
                                   + "\n\n")
                self.section = "answer"
            self.out.write(safe(c.text))
        self.out.flush()

    def end(self, footer: str = "") -> None:
        """Close the open section and print the stats footer."""
        if self.section == "thinking" and not self.hide:
            self.out.write("\n[/thinking]" + self._style("\x1b[0m"))
        self.out.write("\n")
        if footer:
            self.out.write(self._style("\x1b[2m") + footer + self._style("\x1b[0m") + "\n")
        self.out.flush()
        self.section = None


def stream_to(out: TextIO, stream: Iterable[Chunk], hide_thinking: bool = False) -> None:
    """Print a `ChatStream` and its final status and stats."""
    from .chat import ChatStream

    p = Printer(out, hide_thinking)
    try:
        for c in stream:
            p.chunk(c)
    except KeyboardInterrupt:
        if isinstance(stream, ChatStream):
            stream.stop()
        p.end("[stopped]")
        return
    except StreamInterrupted as exc:
        p.end(f"[interrupted: {exc}] (partial reply kept above)")
        return
    if isinstance(stream, ChatStream):
        r = stream.reply
        footer = " · ".join(x for x in (r.status if r.status != "ok" else "",
                                        f"{r.backend}:{r.model}", r.stats.summary()) if x)
        for note in r.notes:
            footer += f"\n[note] {note}"
        p.end(footer)
    else:
        p.end()


def _client(args: argparse.Namespace) -> Client:
    from .client import connect

    return connect(args.backend or None)


def chat_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The chat options given on the command line (only those given)."""
    kwargs: dict[str, Any] = {"max_tokens": args.max_tokens} if args.max_tokens else {}
    if getattr(args, "temperature", None) is not None:
        kwargs["temperature"] = args.temperature
    if args.think is not None:
        kwargs["think"] = args.think
    return kwargs


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print the health report."""
    from .doctor import doctor

    print(doctor())
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """One-shot chat with a prompt, interactive chat without one."""
    client = _client(args)
    kwargs = chat_kwargs(args)
    if args.prompt:
        prompt = " ".join(args.prompt)
        if prompt == "-":
            prompt = sys.stdin.read()
        stream_to(sys.stdout, client.chat(prompt, args.model, stream=True, system=args.system,
                                          **kwargs), args.hide_thinking)
        return 0
    conv = client.conversation(args.model, system=args.system, **kwargs)
    print(f"dskit chat · {client.name}:{conv.model} · /reset clears the history, /quit or "
          "Ctrl-D leaves, Ctrl-C stops a reply")
    while True:
        try:
            line = input("\n> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return 0
        if line == "/reset":
            conv.reset()
            print("(history cleared)")
            continue
        stream_to(sys.stdout, conv.send(line, stream=True), args.hide_thinking)


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: health report, then a streamed chat answer."""
    from .doctor import doctor

    print("== dskit doctor ==")
    print(doctor())
    client = _client(args)
    prompt = " ".join(args.prompt) if args.prompt else DEMO_PROMPT
    print(f"\n== chat ({client.name}:{args.model or client.default_model}) ==\n> {prompt}\n")
    # think=True: R1 reasons anyway; a stand-in is asked to reason first, so the demo shows both.
    think = True if args.think is None else args.think
    stream_to(sys.stdout, client.chat(prompt, args.model, stream=True, think=think,
                                      max_tokens=args.max_tokens or 512), args.hide_thinking)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull (Ollama) or assemble (embedded) a model with a progress bar."""
    from .models import pull

    result = pull(args.tag, _client(args), progress=sys.stderr, force=args.force)
    print(f"{result['tag']}: {result['status']} in {result['seconds']:.1f} s")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Print the catalog, what fits this machine, or what is loaded."""
    import pandas as pd

    from . import models

    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 60):
        if args.view == "catalog":
            df = models.catalog(include_standins=not args.deepseek_only)
            print(df.drop(columns=["note"], errors="ignore").to_string(index=False))
        elif args.view == "recommend":
            df = models.recommend()
            print(df[["tag", "download_GB", "memory_GB", "fit", "load_time", "speed"]]
                  .to_string(index=False))
            print("\n" + df.attrs.get("summary", ""))
        else:
            df = models.loaded(_client(args))
            print(df.to_string(index=False) if len(df) else "no model is loaded")
    return 0


def read_prompts(spec: str) -> Any:
    """A built-in set name, or a file: .csv/.jsonl with prompt (and expected), or one per line."""
    from pathlib import Path

    path = Path(spec)
    if not path.exists():
        return spec  # a built-in name ("cup", "cup-en", "maths"); load() says if it is unknown
    import pandas as pd

    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=path.suffix == ".jsonl")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cmd_compare(args: argparse.Namespace) -> int:
    """Run the same prompts on several models; write rows as they finish; print the summary."""
    import pandas as pd

    from .compare import compare, summary

    df = compare(args.models, read_prompts(args.prompts), samples=args.samples,
                 client=_client(args), max_tokens=args.max_tokens or 512, think=args.think,
                 out=args.out, seed=args.seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary(df).to_string(index=False))
    if df.attrs.get("interrupted"):
        print(f"interrupted: {len(df)} rows kept" + (f" in {args.out}; rerun to resume"
                                                     if args.out else ""))
    elif args.out:
        print(f"rows written to {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve Ollama's REST API over the embedded models until Ctrl-C."""
    from .serve import run

    run(args.host, args.port, models=args.model or None, token=args.token, expose=args.expose,
        max_queue=args.max_queue, keep_alive=args.keep_alive, max_body=args.max_body,
        max_prompt_chars=args.max_prompt_chars, origins=args.origin or (),
        log_level=args.log_level)
    return 0


def app_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The Voilà command line and environment that serve the chat app."""
    import os
    from importlib.resources import files

    notebook = files("dskit") / "data" / "chat_app.ipynb"
    cmd = [sys.executable, "-m", "voila", str(notebook), f"--port={args.port}",
           f"--Voila.ip={args.ip}", "--theme=light"]
    if args.no_browser:
        cmd.append("--no-browser")
    env = dict(os.environ)
    # The kernel inherits these: the app notebook reads them instead of taking arguments.
    if args.model:
        env["DSKIT_MODEL"] = args.model
    if args.backend and args.backend != "auto":
        env["DSKIT_BACKEND"] = args.backend
    if args.max_tokens:
        env["DSKIT_APP_MAX_TOKENS"] = str(args.max_tokens)
    return cmd, env


def cmd_app(args: argparse.Namespace) -> int:
    """Serve the chat widget as a web page with Voilà (no notebook cells)."""
    import importlib.util
    import subprocess

    from .errors import ConfigurationError

    if importlib.util.find_spec("voila") is None:
        raise ConfigurationError("`dskit app` needs Voilà: `pip install 'dskit[app]'`")
    cmd, env = app_command(args)
    from .sysinfo import is_loopback

    if not is_loopback(args.ip):
        print(f"dskit app: WARNING: listening on {args.ip} makes the chat page (and the model "
              "behind it) reachable by anyone who can reach this machine, without a password; "
              "prefer an SSH tunnel to 127.0.0.1", file=sys.stderr, flush=True)
    print(f"dskit app: http://{args.ip}:{args.port}/ (Ctrl-C stops it)", flush=True)
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="dskit", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=["auto", "ollama", "openai", "embedded"],
                        help="force a backend (default: auto, or DSKIT_BACKEND)")
    common.add_argument("--model", "-m", help="model tag, e.g. deepseek-r1:7b")
    common.add_argument("--hide-thinking", action="store_true",
                        help="do not print the reasoning, only a marker while it runs")
    common.add_argument("--max-tokens", type=int, help="token budget for each reply")
    common.add_argument("--think", action=argparse.BooleanOptionalAction, default=None,
                        help="reasoning on/off (R1 reasons by default; --think asks a model "
                        "that does not reason by itself to reason first)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check backends and machine").set_defaults(fn=cmd_doctor)
    p = sub.add_parser("chat", parents=[common], help="chat once (with a prompt) or interactively")
    p.add_argument("prompt", nargs="*", help="the prompt ('-' reads stdin); none: interactive")
    p.add_argument("--system", help="system prompt (folded into the user turn for R1)")
    p.add_argument("--temperature", type=float)
    p.set_defaults(fn=cmd_chat)
    p = sub.add_parser("pull", parents=[common], help="pull a model with a progress bar")
    p.add_argument("tag", help="e.g. deepseek-r1:7b (embedded: qwen2.5-coder:0.5b)")
    p.add_argument("--force", action="store_true", help="skip the disk and memory check")
    p.set_defaults(fn=cmd_pull)
    p = sub.add_parser("models", parents=[common], help="catalog, what fits, what is loaded")
    p.add_argument("view", nargs="?", choices=["catalog", "recommend", "loaded"],
                   default="catalog")
    p.add_argument("--deepseek-only", action="store_true", help="catalog without stand-ins")
    p.set_defaults(fn=cmd_models)
    p = sub.add_parser("compare", parents=[common],
                       help="compare models on the same prompts, averaged over samples")
    p.add_argument("models", nargs="+", help="model tags, e.g. deepseek-r1:1.5b deepseek-r1:7b")
    p.add_argument("--prompts", default="maths",
                   help="built-in set (cup, cup-en, maths) or a .txt/.csv/.jsonl file")
    p.add_argument("--samples", type=int, default=1, help="samples per prompt (pass@1 = mean)")
    p.add_argument("--out", help="CSV file: rows are appended as they finish; reruns resume")
    p.add_argument("--seed", type=int)
    p.set_defaults(fn=cmd_compare)
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
    p.add_argument("--max-queue", type=int, default=8,
                   help="requests that may wait for a busy model before 503 (default 8)")
    p.add_argument("--keep-alive", default="5m",
                   help="how long an idle model stays loaded (default 5m; -1 forever)")
    p.add_argument("--max-body", type=int, default=4 << 20, help="request body limit in bytes")
    p.add_argument("--max-prompt-chars", type=int, default=200_000,
                   help="prompt length limit in characters")
    p.add_argument("--origin", action="append",
                   help="extra browser origin allowed by CORS (repeatable)")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(fn=cmd_serve)
    from .kb.cli import add_parser as add_kb_parser

    add_kb_parser(sub, common)
    p = sub.add_parser("app", parents=[common],
                       help="the chat widget as a web page (Voilà), on 127.0.0.1 by default")
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--ip", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(fn=cmd_app)
    p = sub.add_parser("demo", parents=[common], help="doctor, then a streamed chat answer")
    p.add_argument("prompt", nargs="*", help="prompt (default: a short Chinese maths question)")
    p.set_defaults(fn=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dskit` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except DskitError as exc:
        print(f"dskit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
