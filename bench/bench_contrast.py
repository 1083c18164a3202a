"""Which maths prompts tell the two embedded stand-ins apart (notebook 04's small-vs-large set).

What it measures
    smollm2:135m (small) and qwen2.5-coder:0.5b (larger) answer each of the 20 built-in maths
    prompts ``--k`` times, with the settings notebook 04 uses (``max_tokens`` 512, no
    ``think``), graded by value. For each prompt it prints both models' right answers out of k
    with 95% Wilson intervals, and marks the prompts whose intervals do not overlap ("separates").
    Then pass@1 of both models on the prompts that separate, with bootstrap intervals over those
    prompts, and ``ds.compare.paired``.

    The seeds start at ``--seed`` (default 100), so this selection run does not share a seed with
    notebook 04 (``seed=1``): the notebook measures its subset again on fresh samples, and what it
    prints is its own measurement, not this one's.

    ``--plan ROWS.csv`` (the rows a run kept with ``--out``) runs no model: it sizes notebook 04's
    maths section. For the first n prompts (the notebook takes ``head(n)``) and k samples, it
    draws k of each prompt's recorded answers per model, many times, and prints how often the two
    pass@1 intervals come out apart and how often ``ds.compare.paired`` calls the difference
    distinguishable. Drawing from a few recorded answers understates the spread of fresh samples,
    so read it as a plan, and take k at most half of the recorded samples.

How to run
    cd bench && ../.venv/bin/python bench_contrast.py [--k 6] [--seed 100] [--max-tokens 512]
    cd bench && ../.venv/bin/python bench_contrast.py --plan rows.csv [--draws 200]

    About 30 minutes on 2 idle cores with the defaults (the plan: a few minutes, no model). Run it
    alone on an idle machine.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from machine import machine_facts  # bench/machine.py: scripts run from bench/

import dskit as ds
from dskit.evals import statistics

SMALL, LARGE = "smollm2:135m", "qwen2.5-coder:0.5b"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=6, help="samples per prompt and model")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--out", default=None, help="keep the rows (CSV) to resume or re-read")
    parser.add_argument("--plan", default=None, metavar="ROWS.csv",
                        help="size notebook 04's maths section from a run's rows (no model)")
    parser.add_argument("--draws", type=int, default=200, help="draws per setting with --plan")
    args = parser.parse_args()
    if args.plan:
        return plan(pd.read_csv(args.plan), args.draws)
    print(machine_facts())
    client = ds.connect("embedded", set_default=False)
    prompts = ds.prompts.load("maths")
    rows = ds.compare([SMALL, LARGE], prompts, samples=args.k, client=client,
                      max_tokens=args.max_tokens, seed=args.seed, progress=False, out=args.out)
    print(f"{len(prompts)} prompts x {args.k} samples x 2 models, max_tokens {args.max_tokens}, "
          f"seeds {args.seed}..{args.seed + args.k - 1}")
    separating = []
    for pid, group in rows.groupby("prompt_id", sort=True):
        cells = []
        right = {}
        for model in (SMALL, LARGE):
            got = group[group["model"] == model]
            n, c = len(got), int(got["correct"].fillna(False).astype(bool).sum())
            low, high = statistics.wilson(c, n)
            cut = int((got["done_reason"] == "length").sum())
            right[model] = (c, n, low, high)
            cells.append(f"{model} {c}/{n} [{low:.2f}-{high:.2f}] cut {cut}")
        (_, _, ls, hs), (_, _, ll, hl) = right[SMALL], right[LARGE]
        mark = ""
        if ll > hs:
            mark = "separates (larger better)"
            separating.append(pid)
        elif ls > hl:
            mark = "separates (SMALLER better)"
        print(f"{pid}  {'  '.join(cells)}  {mark}")
    print(f"prompts whose intervals separate, the larger model better: {separating}")
    if separating:
        subset = rows[rows["prompt_id"].isin(separating)]
        print(ds.compare.describe(ds.compare.summary(subset)))
        print(ds.compare.paired(subset, LARGE, SMALL))
    whole = ds.compare.summary(rows)
    print("all 20 prompts:")
    print(ds.compare.describe(whole))
    return 0


def plan(rows: pd.DataFrame, draws: int) -> int:
    """How often n prompts x k samples separate the two models, drawn from recorded answers."""
    prompts = sorted(rows["prompt_id"].unique())
    right = {(m, p): got["correct"].fillna(False).astype(bool).to_numpy(dtype=float)
             for (m, p), got in rows.groupby(["model", "prompt_id"])}
    recorded = min(len(v) for v in right.values())
    rng = np.random.default_rng(0)
    print(f"{len(prompts)} prompts with {recorded} recorded answers per model; {draws} draws each")
    for n in (4, 6, 8, 10, 12, 16, 20):
        if n > len(prompts):
            break
        for k in range(1, recorded // 2 + 1):
            apart = distinguishable = 0
            for _ in range(draws):
                groups = {m: [rng.choice(right[(m, p)], k, replace=False) for p in prompts[:n]]
                          for m in (SMALL, LARGE)}
                _, high_small = statistics.pass1_interval(groups[SMALL], n_boot=1000)
                low_large, _ = statistics.pass1_interval(groups[LARGE], n_boot=1000)
                apart += low_large > high_small
                distinguishable += statistics.paired(LARGE, SMALL, groups[LARGE], groups[SMALL],
                                                     n_boot=1000).distinguishable
            print(f"first {n:2d} prompts x {k} samples: intervals apart in {apart / draws:.2f} "
                  f"of draws, paired distinguishable in {distinguishable / draws:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
