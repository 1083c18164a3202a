"""`dskit compare`: the same prompts on several models, rows written as they finish."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..comparison import compare, summary
from .output import client_for


def read_prompts(spec: str) -> Any:
    """A built-in set name, or a file: .csv/.jsonl with prompt (and expected), or one per line."""
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

    df = compare(args.models, read_prompts(args.prompts), samples=args.samples,
                 client=client_for(args), max_tokens=args.max_tokens or 512, think=args.think,
                 out=args.out, seed=args.seed)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary(df).to_string(index=False))
    truncated = int((df["done_reason"] == "length").sum())
    if truncated:
        print(f"{truncated} of {len(df)} replies hit the token limit before they finished "
              "(pass@1 counts them as graded): raise --max-tokens")
    failed = df[df["error"].notna()]
    for error, group in failed.groupby("error", sort=False):
        print(f"{len(group)} call(s) failed ({', '.join(group['model'].unique())}): {error}",
              file=sys.stderr)
    if df.attrs.get("interrupted"):
        print(f"interrupted: {len(df)} rows kept" + (f" in {args.out}; rerun to resume"
                                                     if args.out else ""))
        return 130
    if args.out:
        print(f"rows written to {args.out}")
    return 1 if len(failed) else 0


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `compare`."""
    p = sub.add_parser("compare", parents=[common],
                       help="compare models on the same prompts, averaged over samples")
    p.add_argument("models", nargs="+", help="model tags, e.g. deepseek-r1:1.5b deepseek-r1:7b")
    p.add_argument("--prompts", default="maths",
                   help="built-in set (cup, cup-en, maths) or a .txt/.csv/.jsonl file")
    p.add_argument("--samples", type=int, default=1, help="samples per prompt (pass@1 = mean)")
    p.add_argument("--out", help="CSV file: rows are appended as they finish; reruns resume")
    p.add_argument("--seed", type=int)
    p.set_defaults(fn=cmd_compare)
