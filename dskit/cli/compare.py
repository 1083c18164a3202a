"""`dskit compare`: the same prompts on several models, rows written as they finish."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..evals.benchmarks import SUFFIXES
from ..evals.comparison import compare
from ..evals.prompts import load
from ..evals.prose import findings, prose
from ..evals.summary import busy_warning, describe, summary
from ..evals.tables import answers, readable
from ..evals.voting import describe_votes, votes
from .output import budget_arg, client_for, extensions_arg, mins_arg, safe


def read_prompts(spec: str) -> Any:
    """A built-in set name, a benchmark file (.jsonl/.json/.csv/.parquet: dskit's own layout,
    GSM8K, MATH, AIME), or a text file with one prompt per line."""
    path = Path(spec)
    if not path.exists() or path.suffix.lower() in SUFFIXES:
        return spec  # load() reads it, or says what is wrong with it
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cmd_compare(args: argparse.Namespace) -> int:
    """Run the same prompts on several models; write rows as they finish; print each answer
    with its verdict, the summary and what it says."""
    prompts = load(read_prompts(args.prompts), n=args.n, seed=args.seed or 0)
    budgets = args.think_budget if args.think_budget else None
    exits = [n for group in args.exit_at for n in group] if args.exit_at else None
    minimums = [m for given in args.think_min for m in given] if args.think_min else None
    extra = {k: v for k in ("max_extensions", "extension") if (v := getattr(args, k)) is not None}
    df = compare(args.models, prompts, samples=args.samples,
                 client=client_for(args), max_tokens=args.max_tokens or 512, think=args.think,
                 think_budget=budgets, exit_at=exits, think_min=minimums,
                 loop_guard=args.loop_guard, out=args.out, seed=args.seed,
                 logprobs=args.logprobs, top_logprobs=args.top_logprobs,
                 early_stop=args.early_stop, confidence_window=args.confidence_window,
                 warmup=args.warmup, keep=args.keep, **extra)
    # Answers, the table, then what it says: model output and errors may not steer the terminal.
    print(safe("\n".join(answers(df))))
    print()
    table = summary(df)
    print(safe(str(readable(table))))
    print()
    print(safe(prose("\n".join(f"- {line}" for line in findings(describe(table))))))
    if df["conf_lowest"].notna().any():
        print()
        print(safe(prose("\n".join(f"- {line}" for line in findings(describe_votes(votes(df)))))))
    truncated = int((df["done_reason"] == "length").sum())
    if truncated:
        print(f"{truncated} of {len(df)} replies hit the token limit before they finished "
              "(pass@1 counts them as graded): raise --max-tokens")
    looped = int((df["done_reason"] == "repetition").sum())
    if looped:
        print(f"{looped} of {len(df)} replies fell into a loop and were stopped by the loop "
              "guard (pass@1 counts them as graded)")
    if warning := busy_warning(df.attrs.get("cpu_load")):
        print(warning)
    failed = df[df["error"].notna()]
    for error, group in failed.groupby("error", sort=False):
        # errors quote servers: nothing in them may steer the terminal
        print(safe(f"{len(group)} call(s) failed ({', '.join(group['model'].unique())}): "
                   f"{error}"), file=sys.stderr)
    if df.attrs.get("interrupted"):
        print(f"interrupted: {len(df)} rows kept" + (f" in {args.out}; rerun to resume"
                                                     if args.out else ""))
        return 130
    if args.out:
        print(f"rows written to {args.out}")
    return 1 if len(failed) else 0


def checkpoints_arg(text: str) -> list[int]:
    """An `--exit-at` value: checkpoints in tokens, separated by commas."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers of tokens >= 0 "
                                         "separated by commas, e.g. 0,64,128,256")
    return [int(p) for p in parts]


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `compare`."""
    p = sub.add_parser("compare", parents=[common],
                       help="compare models on the same prompts, averaged over samples")
    p.add_argument("models", nargs="+", help="model tags, e.g. deepseek-r1:1.5b deepseek-r1:7b")
    p.add_argument("--prompts", default="maths",
                   help="built-in set (cup, cup-en, maths), a GSM8K/MATH/AIME or dskit "
                   ".jsonl/.json/.csv/.parquet file, or a .txt file (one prompt per line)")
    p.add_argument("--n", type=int, help="a random sample of this many prompts (with --seed)")
    p.add_argument("--think-budget", type=budget_arg, nargs="+", metavar="N",
                   help="cap the reasoning at N tokens; several values sweep budgets "
                   "('none': no budget), e.g. --think-budget 0 64 256 none")
    p.add_argument("--exit-at", type=checkpoints_arg, nargs="+", metavar="N,N",
                   help="the budget curve from one trace per sample: its reasoning is generated "
                   "once and closed at each checkpoint, e.g. --exit-at 0,64,128,256 (rows "
                   "carry the checkpoint as think_budget; not with --think-budget)")
    p.add_argument("--think-min", type=mins_arg, nargs="+", metavar="N",
                   help="extend reasoning that closes before N tokens with 'Wait' (s1); several "
                   "values sweep minimums (0: none), e.g. --think-min 0,128,256")
    p.add_argument("--max-extensions", type=extensions_arg, metavar="K",
                   help="extend at most K times per reply (default 3)")
    p.add_argument("--extension", metavar="WORD",
                   help="the extension word (default: 'Wait', '等等' for Chinese prompts)")
    p.add_argument("--loop-guard", action=argparse.BooleanOptionalAction, default=True,
                   help="stop replies that fall into degenerate repetition (on by default)")
    p.add_argument("--logprobs", action="store_true",
                   help="token log-probabilities: rows carry DeepConf's confidence measures and "
                   "the confidence-weighted votes are printed")
    p.add_argument("--top-logprobs", type=int, metavar="N",
                   help="alternatives per token (0-20, default 5); implies --logprobs")
    p.add_argument("--early-stop", choices=["confidence"],
                   help="DeepConf online: warm-up samples set a threshold, later samples stop "
                   "when their confidence falls below it")
    p.add_argument("--confidence-window", type=int, default=2048, metavar="N",
                   help="tokens per confidence group (DeepConf: 2048; short traces want ~32)")
    p.add_argument("--warmup", type=int, metavar="N",
                   help="warm-up samples per prompt for --early-stop (default: a quarter)")
    p.add_argument("--keep", type=float, default=0.9,
                   help="share of warm-up traces the threshold keeps (0.9 DeepConf-high, "
                   "0.1 DeepConf-low)")
    p.add_argument("--samples", type=int, default=1, help="samples per prompt (pass@1 = mean)")
    p.add_argument("--out", help="CSV file: rows are appended as they finish; reruns resume")
    p.add_argument("--seed", type=int)
    p.set_defaults(fn=cmd_compare)
