"""`dskit mcp`: knowledge bases as MCP tools for Cherry Studio, Claude Desktop and other MCP
clients, over stdio (the client starts the command) or streamable HTTP (`--http`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from ..errors import ConfigurationError
from ..serve.kb_tools import KbTools
from ..serve.mcp_server import DEFAULT_MCP_PORT, MCP_PATH, require_sdk, run_http, run_stdio

DESCRIPTION = """\
Serve knowledge bases (made with `dskit kb add`) as MCP tools: list_knowledge_bases,
search (passages with score, file, page or lines) and ask (an answer citing them as [n],
with its sources). Read-only unless --allow-add FOLDER is given; then add_files may add
the files inside FOLDER.

Without --http the server speaks MCP on stdin/stdout, for a client that starts it (logs go
to stderr). With --http it serves streamable HTTP at http://127.0.0.1:PORT/mcp; like
`dskit serve` it binds 127.0.0.1 unless --host and --expose say otherwise, and with a token
(DSKIT_SERVE_TOKEN, or --token) it answers only requests carrying
'Authorization: Bearer <token>'. Off loopback the token is required."""

EPILOG = """\
examples:
  dskit mcp                                  every knowledge base, read-only, over stdio
  dskit mcp --kb 笔记 --kb notes             only these two
  dskit mcp --allow-add ~/Documents/notes    add_files may add files from that folder
  dskit mcp --http --port 8765               http://127.0.0.1:8765/mcp

Cherry Studio: Settings → MCP Servers → Add Server: type STDIO, command dskit (its full
path), arguments mcp and --kb 笔记 one per line; or type Streamable HTTP with the URL above
and the header Authorization=Bearer <token>. docs/clients.md has the details."""


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve knowledge bases over MCP until the client leaves (stdio) or Ctrl-C (HTTP)."""
    require_sdk()
    if not args.http:
        given = [flag for flag, value in (("--host", args.host), ("--port", args.port),
                                          ("--token", args.token), ("--expose", args.expose))
                 if value not in (None, False)]
        if given:
            raise ConfigurationError(f"{', '.join(given)}: for --http only; add --http, or "
                                     f"leave {'it' if len(given) == 1 else 'them'} out for stdio")
    tools = KbTools(args.data_dir, names=args.kb, add_from=args.allow_add or (),
                    backend=args.backend, model=args.model, max_tokens=args.max_tokens,
                    think=args.think)
    if args.log_level != "warning":
        # On stderr: with stdio, stdout carries the protocol alone. (At the default level
        # Python's last-resort handler already prints warnings and errors there.)
        logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                            format="dskit mcp: %(levelname)s %(name)s: %(message)s")
    # A `kill` (SIGTERM) or a closed terminal (SIGHUP) ends it like Ctrl-C: the knowledge
    # bases are closed, so SQLite leaves no -wal/-shm files behind.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        if args.http:
            run_http(tools, args.host or "127.0.0.1",
                     DEFAULT_MCP_PORT if args.port is None else args.port, token=args.token,
                     expose=args.expose, log_level=args.log_level)
        else:
            run_stdio(tools)
    finally:
        tools.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `dskit mcp`."""
    p = sub.add_parser("mcp", help="serve knowledge bases as MCP tools (Cherry Studio, Claude "
                       "Desktop…)", description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kb", action="append", metavar="NAME",
                   help="serve only this knowledge base (repeatable; default: all)")
    p.add_argument("--data-dir", help="where knowledge bases live (default: DSKIT_KB_DIR or "
                   "the user data directory)")
    p.add_argument("--allow-add", action="append", metavar="FOLDER",
                   help="offer add_files, for files inside FOLDER only (repeatable; default: "
                        "read-only)")
    p.add_argument("--http", action="store_true",
                   help=f"serve streamable HTTP at {MCP_PATH} instead of stdio")
    p.add_argument("--host", help="with --http: address to listen on (default 127.0.0.1; "
                   "others need --expose and a token)")
    p.add_argument("--port", type=int, help=f"with --http: port (default {DEFAULT_MCP_PORT}; "
                   "0 picks a free one)")
    p.add_argument("--token", help="with --http: require 'Authorization: Bearer TOKEN' "
                   "(prefer the DSKIT_SERVE_TOKEN variable: command lines are visible to "
                   "other users)")
    p.add_argument("--expose", action="store_true",
                   help="with --http: allow a non-loopback --host (a token is then required)")
    p.add_argument("--backend", choices=["auto", "ollama", "openai", "embedded"],
                   help="who answers `ask` (default: auto, as `dskit kb ask`: Ollama when it "
                        "runs, else the embedded stand-ins)")
    p.add_argument("--model", "-m", help="model that answers `ask` (default: the backend's)")
    p.add_argument("--max-tokens", type=int, help="token budget of each answer")
    p.add_argument("--think", action=argparse.BooleanOptionalAction, default=None,
                   help="reasoning on/off for `ask`")
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(fn=cmd_mcp)
