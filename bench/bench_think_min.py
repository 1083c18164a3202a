"""Thinking extended on demand (`think_min`, s1's budget forcing) on the embedded stand-in: the
extension curve, accuracy and thinking tokens against the minimum.

What it measures
    qwen2.5-coder:0.5b asked to reason first (``think=True``: two phases) on the built-in maths
    set (``ds.prompts``, 20 short problems in English and Chinese, graded by value), with a
    sweep ``think_min=[0, 128, 256]`` (0: no minimum) through ``ds.compare``, one sample per
    prompt and minimum, the same seed everywhere. Per minimum: pass@1 with its 95% interval,
    mean thinking tokens, how many replies were extended and how many hit the token limit.
    There is no target: the stand-in is not a reasoning model, and the curve shows what an
    extension word buys it (more thinking, not necessarily more right answers).

How to run
    cd bench && ../.venv/bin/python bench_think_min.py [--n 20] [--max-tokens 512]
                                                        [--mins 0,128,256]

    Takes about ten minutes on 2 idle cores for the whole set. Run it alone on an idle
    machine. Exit code 0 always.
"""

from __future__ import annotations

import argparse

from machine import machine_facts  # bench/machine.py: scripts run from bench/

import dskit as ds
from dskit.evals.summary import summary

STANDIN = "qwen2.5-coder:0.5b"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="maths problems (of 20)")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--mins", default="0,128,256", help="the think_min values, comma-separated")
    parser.add_argument("--max-extensions", type=int, default=3)
    args = parser.parse_args()
    print(machine_facts())
    client = ds.connect("embedded", set_default=False)
    prompts = ds.prompts.load("maths", n=args.n, seed=0) if args.n < 20 else "maths"
    mins = [int(m) for m in args.mins.split(",")]
    rows = ds.compare(STANDIN, prompts, client=client, think=True, think_min=mins,
                      max_extensions=args.max_extensions, max_tokens=args.max_tokens, seed=1,
                      progress=False)
    table = summary(rows)
    print(f"model: {STANDIN}, max_tokens {args.max_tokens}, max_extensions "
          f"{args.max_extensions}, {rows['prompt_id'].nunique()} prompts")
    print(f"{'think_min':>9}  {'pass@1':>6}  {'95% interval':>13}  {'thinking':>8}  "
          f"{'extended':>8}  {'truncated':>9}")
    for r in table.to_dict("records"):
        print(f"{int(r['think_min']):>9}  {r['pass@1']:>6.2f}  "
              f"{r['pass@1_low']:>6.2f}–{r['pass@1_high']:<6.2f}  {r['thinking_tokens']:>8.0f}  "
              f"{int(r['extended']):>4} / {int(r['n']):<2}  {int(r['truncated']):>9}")


if __name__ == "__main__":
    main()
