"""The `dskit` command: doctor, chat, demo, pull, models, compare, kb, serve, app, mcp."""

from __future__ import annotations

import argparse
import sys

from ..errors import DskitError
from . import chat, compare, kb, mcp, models, serve
from .output import safe


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
    # The order of `dskit --help`: the learner's path first.
    chat.add_parsers(sub, common)
    models.add_parsers(sub, common)
    compare.add_parsers(sub, common)
    kb.add_parsers(sub, common)
    serve.add_parsers(sub, common)
    mcp.add_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dskit` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except DskitError as exc:
        print(f"dskit: {safe(str(exc))}", file=sys.stderr)  # messages quote servers, file names
        return 2


if __name__ == "__main__":
    sys.exit(main())
