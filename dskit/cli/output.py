"""What the commands share: safe terminal output, the streamed-reply printer, options → kwargs."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from ..client import Client, connect
from ..conversation.stream import ChatStream
from ..errors import StreamInterrupted
from ..evals.grading import parse_number
from ..evals.prompts import is_maths_problem
from ..evals.prose import findings
from ..models import reported
from ..reasoning.think import Chunk
from ..reply import Reply
from ..weights.files import STANDINS

if TYPE_CHECKING:
    import pandas as pd

# Model output and file names are untrusted: drop terminal control sequences so they cannot
# move the cursor, retitle the window, recolour or hide text, and bidi controls so they cannot
# reorder what is shown. 7-bit (ESC [ …) and 8-bit (CSI U+009B, OSC U+009D) sequences go whole;
# other C0/C1 controls, the bidi embeddings, overrides and isolates (U+202A–E, U+2066–9) and
# marks (U+200E/F, U+061C) go alone. Chinese, emoji (with their U+200D joiners) stay.
_CONTROL = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
                      r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                      r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                      r"\u2066-\u2069]")


def safe(text: str) -> str:
    """Text with terminal control characters removed."""
    return _CONTROL.sub("", text)


def table(df: pd.DataFrame, columns: list[str]) -> str:
    """A plain-text table of `columns`, safe for the terminal; `(nothing)` when empty."""
    if df.empty:
        return "(nothing)"
    return safe(df[columns].to_string(index=False, max_colwidth=60))


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
            self.out.write(self._style("\x1b[2m") + safe(footer) + self._style("\x1b[0m") + "\n")
        self.out.flush()
        self.section = None


#: Exit statuses of a streamed reply: complete, broken off by the server, stopped with Ctrl-C.
REPLY_OK, REPLY_INTERRUPTED, REPLY_STOPPED = 0, 1, 130


def stream_to(out: TextIO, stream: Iterable[Chunk], hide_thinking: bool = False) -> int:
    """Print a `ChatStream` and its final status and stats; the command's exit status."""
    p = Printer(out, hide_thinking)
    try:
        for c in stream:
            p.chunk(c)
    except KeyboardInterrupt:
        if isinstance(stream, ChatStream):
            stream.stop()
        p.end("[stopped]")
        return REPLY_STOPPED
    except StreamInterrupted as exc:
        p.end(f"[interrupted: {exc}] (partial reply kept above)")
        return REPLY_INTERRUPTED
    if isinstance(stream, ChatStream):
        r = stream.reply
        footer = r.footer(with_status=True)
        for note in r.notes:
            footer += f"\n[note] {note}"
        p.end(footer)
    else:
        p.end()
    return REPLY_OK


def print_verdict(out: TextIO, reply: Reply, expected: Any, question: str = "") -> None:
    """Grade `reply` against `expected` (an answer or a `Prompt`) and print the verdict, with a
    word on what one answer of a stand-in proves (and, for a maths problem, what DeepSeek
    reports on MATH-500)."""
    reply.grade(expected)
    print(f"\n{reply.verdict}", file=out)
    if reply.model in STANDINS:  # right or wrong, one sample of a small model proves little
        print(f"{reply.model} is a small stand-in, not DeepSeek-R1: it answers questions like "
              "this right some of the time and wrong some of the time (ask again to see)."
              # one line in the terminal, which wraps it at its own width
              + (f" {' '.join(findings(reported('math500')))}"
                 if scores_apply(reply, expected, question) else ""),
              file=out)


def scores_apply(reply: Reply, expected: Any, question: str) -> bool:
    """Whether DeepSeek's published maths scores say something about this reply: a maths
    problem (a maths `Prompt`, or a question that computes with a number expected), never an
    answer from a knowledge base's passages (a number there is a fact looked up)."""
    if reply.sources or reply.done_reason == "no sources":
        return False
    if getattr(expected, "kind", None) is not None:
        return bool(expected.kind == "math")
    return parse_number(expected) is not None and is_maths_problem(question)


def expected_arg(text: str) -> str:
    """`--expect`: the known answer a reply is graded against (a number or words)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give the answer you expect, e.g. --expect 84")
    return text.strip()


def client_for(args: argparse.Namespace) -> Client:
    """The client the command line asks for (`--backend`, else automatic)."""
    return connect(args.backend or None)


def chat_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The chat options given on the command line (only those given)."""
    kwargs: dict[str, Any] = {"max_tokens": args.max_tokens} if args.max_tokens else {}
    if getattr(args, "temperature", None) is not None:
        kwargs["temperature"] = args.temperature
    if args.think is not None:
        kwargs["think"] = args.think
    if getattr(args, "think_budget", None) is not None:
        kwargs["think_budget"] = args.think_budget
    for name in ("think_min", "max_extensions", "extension", "effort"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    if getattr(args, "loop_guard", None) is not None:
        kwargs["loop_guard"] = args.loop_guard
    return kwargs


def budget_arg(text: str) -> int | None:
    """A `--think-budget` value: tokens >= 0, or `none` (no budget, in a compare sweep)."""
    if text.strip().lower() == "none":
        return None
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of tokens >= 0")
    return int(text)


def min_arg(text: str) -> int:
    """A `--think-min` value: tokens >= 0 (0: no minimum)."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of tokens >= 0")
    return int(text)


def mins_arg(text: str) -> list[int]:
    """`--think-min` values of a compare sweep: one or more, comma-separated (0: none)."""
    return [min_arg(part) for part in text.split(",")]


def extensions_arg(text: str) -> int:
    """A `--max-extensions` value: a whole number >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 0")
    return int(text)
