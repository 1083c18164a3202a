"""Early exits from one trace against the budget sweep they replace (issue 23, item 2).

What it measures
    The embedded stand-in (qwen2.5-coder:0.5b, asked to reason: ``think=True``) on dskit's maths
    set at temperature 0. For every question, two ways of getting the same five replies:

    * exits: ``ds.early_exits(q, exit_at=[0, 64, 128, 256])``: the whole reply once, then each
      checkpoint closed from that one trace, only its answer generated;
    * sweep: ``ds.chat(q, think=True, think_budget=b)`` for b in 0, 64, 128, 256 and None.

    Both start from an empty llama.cpp cache (``llm.reset()`` before the trace and before every
    budget run), so each pair of replies comes from the same cached prompt and the answers can be
    compared token for token: llama.cpp's sums differ by batch split, which can tip a greedy
    near-tie between runs whose caches differ. The resets cost the sweep four prompt evaluations
    that a sweep reusing its cache would not pay; that cost is measured per question (one prompt
    evaluated from an empty cache) and taken off again for the adjusted ratio.

    Reported: answers equal per checkpoint (target: all of them), wall time exits / sweep (raw
    and adjusted; target <= 0.4), and tokens decoded by llama.cpp (its single-id evaluations,
    counted at ``llm.eval``) for each method, with the check that the exits decode the reasoning
    once: decoded = the trace's tokens + each checkpoint's answer.

How to run
    cd bench && ../.venv/bin/python bench_early_exit.py [--n 20] [--max-tokens 512]
        [--checkpoints 0,64,128,256] [--json out.json]

    About 25 minutes on 2 idle cores for the 20 questions. Run it alone: llama.cpp slows down many
    times over when another process competes for the cores. Exit code 0 always.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from machine import machine_facts  # bench/machine.py: scripts run from bench/

import dskit as ds
from dskit.backends.embedded import EmbeddedBackend

MODEL = "qwen2.5-coder:0.5b"


class Decodes:
    """Counts llama.cpp's single-id evaluations (one per generated token) on a model."""

    def __init__(self, llm: Any) -> None:
        self.llm, self.count = llm, 0
        real = llm.eval

        def counted(tokens: Any) -> Any:
            self.count += len(tokens) == 1
            return real(tokens)

        llm.eval = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--checkpoints", default="0,64,128,256")
    parser.add_argument("--json")
    args = parser.parse_args()
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    backend = EmbeddedBackend(n_ctx=4096)
    client = ds.connect(backend, set_default=False)
    client.chat("Hi", MODEL, max_tokens=2)  # loaded before anything is timed
    llm = backend.load(MODEL).llm
    decodes = Decodes(llm)
    questions = ds.prompts.load("maths").head(args.n)
    kw: dict[str, Any] = {"temperature": 0, "max_tokens": args.max_tokens}
    print(machine_facts())
    rows: list[dict[str, Any]] = []
    for i, q in enumerate(questions.itertuples()):
        text = ds.math_prompt(q.prompt)

        def run_exits(text: str = text) -> tuple[float, int, dict[Any, ds.Reply]]:
            llm.reset()
            before, t0 = decodes.count, time.perf_counter()
            replies = ds.early_exits(text, MODEL, exit_at=checkpoints, client=client, **kw)
            return time.perf_counter() - t0, decodes.count - before, replies

        def run_sweep(text: str = text) -> tuple[float, int, dict[Any, ds.Reply]]:
            seconds, before, replies = 0.0, decodes.count, {}
            for budget in [*checkpoints, None]:
                llm.reset()
                t0 = time.perf_counter()
                replies[budget] = client.chat(text, MODEL, think=True, think_budget=budget, **kw)
                seconds += time.perf_counter() - t0
            return seconds, decodes.count - before, replies

        # Alternating order cancels drift on a noisy machine.
        if i % 2:
            sweep_s, sweep_n, sweep = run_sweep()
            exit_s, exit_n, exits = run_exits()
        else:
            exit_s, exit_n, exits = run_exits()
            sweep_s, sweep_n, sweep = run_sweep()
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(llm.tokenize(text.encode("utf-8")))  # one prompt from an empty cache
        prefill_s = time.perf_counter() - t0
        whole = exits[None]
        answers = sum(exits[c].stats.answer_tokens or 0 for c in checkpoints
                      if exits[c] is not whole)
        row = {
            "prompt_id": q.prompt_id, "reasoning_tokens": whole.stats.thinking_tokens,
            "same": {str(c): exits[c].answer == sweep[c].answer for c in [*checkpoints, None]},
            "exit_s": exit_s, "sweep_s": sweep_s, "prefill_s": prefill_s,
            "exit_decoded": exit_n, "sweep_decoded": sweep_n,
            # The trace's own tokens and each checkpoint's answer: the reasoning decoded once.
            "exit_expected": (whole.stats.eval_tokens or 0) + answers,
        }
        rows.append(row)
        print(f"{q.prompt_id}: reasoning {row['reasoning_tokens']} tokens, same answers "
              f"{sum(row['same'].values())}/{len(row['same'])}, exits {exit_s:.1f} s vs sweep "
              f"{sweep_s:.1f} s ({exit_s / sweep_s:.2f}), decoded {exit_n} vs {sweep_n} "
              f"(trace + answers: {row['exit_expected']})", flush=True)
    equal = sum(sum(r["same"].values()) for r in rows)
    total = sum(len(r["same"]) for r in rows)
    exit_total = sum(r["exit_s"] for r in rows)
    sweep_total = sum(r["sweep_s"] for r in rows)
    adjusted = sweep_total - sum(4 * r["prefill_s"] for r in rows)
    per_question = [r["exit_s"] / r["sweep_s"] for r in rows]
    print(f"\nanswers equal at every checkpoint: {equal}/{total} "
          f"({'PASS' if equal == total else 'FAIL'})")
    print(f"wall time exits / sweep: {exit_total / sweep_total:.2f} raw, "
          f"{exit_total / adjusted:.2f} without the sweep's extra prompt evaluations "
          f"({'PASS' if exit_total / adjusted <= 0.4 else 'FAIL'} at <= 0.4); median per question "
          f"{statistics.median(per_question):.2f}")
    decoded = sum(r["exit_decoded"] for r in rows)
    print(f"tokens decoded: exits {decoded}, sweep {sum(r['sweep_decoded'] for r in rows)} "
          f"({decoded / sum(r['sweep_decoded'] for r in rows):.2f}); exits against the trace's "
          f"tokens + the checkpoints' answers: {decoded} vs "
          f"{sum(r['exit_expected'] for r in rows)} (the reasoning decoded once per question)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
