"""`dskit doctor`, `dskit chat` and `dskit demo`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..checkup import doctor
from ..evals.prompts import known_question
from ..reasoning.plan import EFFORTS
from .output import (
    REPLY_OK,
    budget_arg,
    chat_kwargs,
    client_for,
    expected_arg,
    extensions_arg,
    min_arg,
    print_verdict,
    safe,
    stream_to,
)

DEMO_PROMPT = "小明有 5 个苹果，吃了 2 个，又买了 4 个。他现在有几个苹果？"
DEMO_EXPECTED = 7


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print the health report."""
    print(safe(str(doctor())))  # model names and errors come from servers
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """One-shot chat with a prompt, interactive chat without one."""
    client = client_for(args)
    kwargs = chat_kwargs(args)
    if args.prompt:
        prompt = " ".join(args.prompt)
        if prompt == "-":
            prompt = sys.stdin.read()
        stream = client.chat(prompt, args.model, stream=True, system=args.system, **kwargs)
        status = stream_to(sys.stdout, stream, args.hide_thinking)
        # A question with a known answer gets its verdict: given with --expect, or one of
        # dskit's example questions (the README's).
        expected = args.expect if args.expect is not None else known_question(prompt)
        if status == REPLY_OK and expected is not None:
            print_verdict(sys.stdout, stream.reply, expected, prompt)
        return status
    conv = client.conversation(args.model, system=args.system, **kwargs)
    # the model's name may come from the server's list
    print(safe(f"dskit chat · {client.name}:{conv.model} · /reset clears the history, /quit or "
               "Ctrl-D leaves, Ctrl-C stops a reply"))
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
        stream = conv.send(line, stream=True)
        if stream_to(sys.stdout, stream, args.hide_thinking) == REPLY_OK \
                and (example := known_question(line)) is not None:
            print_verdict(sys.stdout, stream.reply, example, line)


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: health report, then a streamed chat answer."""
    print("== dskit doctor ==")
    print(safe(str(doctor())))
    client = client_for(args)
    prompt = " ".join(args.prompt) if args.prompt else DEMO_PROMPT
    print(safe(f"\n== chat ({client.name}:{args.model or client.default_model}) ==\n> {prompt}\n"))
    # think=True: R1 reasons anyway; a stand-in is asked to reason first, so the demo shows both.
    think = True if args.think is None else args.think
    stream = client.chat(prompt, args.model, stream=True, think=think,
                         max_tokens=args.max_tokens or 512)
    status = stream_to(sys.stdout, stream, args.hide_thinking)
    if status == REPLY_OK and not args.prompt:  # the built-in question has a known answer
        print_verdict(sys.stdout, stream.reply, DEMO_EXPECTED, prompt)
    return status


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `doctor`, `chat` and `demo`."""
    sub.add_parser("doctor", help="check backends and machine").set_defaults(fn=cmd_doctor)
    p = sub.add_parser("chat", parents=[common], help="chat once (with a prompt) or interactively")
    p.add_argument("prompt", nargs="*", help="the prompt ('-' reads stdin); none: interactive")
    p.add_argument("--system", help="system prompt (folded into the user turn for R1)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--think-budget", type=budget_arg, metavar="N",
                   help="cap the reasoning at N tokens, then answer (0: answer without reasoning)")
    p.add_argument("--think-min", type=min_arg, metavar="N",
                   help="extend reasoning that closes before N tokens with 'Wait' (s1)")
    p.add_argument("--max-extensions", type=extensions_arg, metavar="K",
                   help="extend at most K times (default 3)")
    p.add_argument("--extension", metavar="WORD",
                   help="the extension word (default: 'Wait', '等等' for Chinese)")
    p.add_argument("--effort", choices=EFFORTS,
                   help="how hard the model reasons, where the server documents effort levels "
                   "(DeepSeek's platform: low, high, max; docs/thinking.md)")
    p.add_argument("--loop-guard", action=argparse.BooleanOptionalAction, default=None,
                   help="stop a reply that falls into degenerate repetition (off by default)")
    p.add_argument("--expect", type=expected_arg, metavar="ANSWER",
                   help="the known answer: print whether the reply got it (✓/✗); dskit's "
                        "example questions are graded without it")
    p.set_defaults(fn=cmd_chat)
    p = sub.add_parser("demo", parents=[common], help="doctor, then a streamed chat answer")
    p.add_argument("prompt", nargs="*", help="prompt (default: a short Chinese maths question)")
    p.set_defaults(fn=cmd_demo)
