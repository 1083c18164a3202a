"""DeepConf's early stop on the embedded stand-in: tokens generated and votes, against plain
sampling of the same prompts.

What it measures
    qwen2.5-coder:0.5b, asked to reason first (``think=True``), answers the built-in maths
    prompts (English and Chinese, graded by value) ``--k`` times each, twice: plain sampling
    with log-probabilities, and ``early_stop="confidence"`` (the first ``--warmup`` samples of
    each prompt set a threshold keeping ``--keep`` of them; later samples stop when a
    ``--window``-token group falls below it). The same seeds in both runs, so the warm-up
    samples are the same replies. Prints the tokens each run generated and their ratio
    (target, issue 24: at most 0.7), and per run the votes of ``ds.compare.votes`` (majority =
    cons@k, confidence-weighted, the most confident 90 % and 10 %) with 95% intervals, and
    ``ds.compare.paired`` between the two runs' majority votes. Whatever the votes show is
    printed as it is: the stand-in is not a reasoning model.

How to run
    cd bench && ../.venv/bin/python bench_confidence_stop.py [--n 10] [--k 8] [--max-tokens 256]
                                                              [--window 32] [--keep 0.9]

    About 25 minutes on 2 idle cores with the defaults. Run it alone on an idle machine.
    Exit code 0 when the token ratio is within the target, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
from machine import machine_facts  # bench/machine.py: scripts run from bench/

import dskit as ds

STANDIN = "qwen2.5-coder:0.5b"
TARGET = 0.7


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10, help="maths prompts (of 20)")
    parser.add_argument("--k", type=int, default=8, help="samples per prompt")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--window", type=int, default=32, help="tokens per confidence group")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--keep", type=float, default=0.9)
    args = parser.parse_args()
    print(machine_facts())
    client = ds.connect("embedded", set_default=False)
    prompts = ds.prompts.load("maths", n=args.n, seed=0)
    common = dict(samples=args.k, client=client, think=True, max_tokens=args.max_tokens,
                  seed=1, progress=False, confidence_window=args.window)
    plain = ds.compare(STANDIN, prompts, logprobs=True, **common)
    early = ds.compare(STANDIN, prompts, early_stop="confidence", warmup=args.warmup,
                       keep=args.keep, **common)
    spent = {}
    for name, rows in (("plain", plain), ("early stop", early)):
        spent[name] = int(rows["thinking_tokens"].fillna(0).sum()
                          + rows["answer_tokens"].fillna(0).sum())
    ratio = spent["early stop"] / spent["plain"]
    print(f"{len(prompts)} prompts × {args.k} samples, max_tokens {args.max_tokens}, window "
          f"{args.window}, warm-up {early.attrs['settings']['warmup']}, keep {args.keep}")
    print(f"tokens generated: plain {spent['plain']:,}, early stop {spent['early stop']:,}, "
          f"ratio {ratio:.2f} (target <= {TARGET}: {'PASS' if ratio <= TARGET else 'FAIL'}); "
          f"{int((early['done_reason'] == 'low-confidence').sum())} of {len(early)} samples "
          "stopped early")
    both = pd.concat([plain.assign(model="plain"), early.assign(model="early stop")])
    table = ds.compare.votes(both)
    for row in table.to_dict("records"):
        cells = "  ".join(f"{v} {row[v]:.2f} [{row[v + '_low']:.2f}–{row[v + '_high']:.2f}]"
                          for v in ("majority", "weighted", "top90%", "top10%"))
        print(f"{row['model']:>10}: {row['voters']} votes  {cells}")
    print(ds.compare.paired(both, ("plain", "majority"), ("early stop", "majority")))
    print(ds.compare.paired(both, ("plain", "majority"), ("plain", "top10%")))
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
