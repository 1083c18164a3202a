"""Prompt evaluation: dskit's cancellable batches vs llama-cpp-python's one call, in one process.

What it measures
    dskit evaluates a prompt in batches of `PREFILL_BATCH` tokens and checks between two
    batches whether the reply was cancelled (a client that left `dskit serve`, Stop in a
    widget); llama-cpp-python evaluates it in one `Llama.eval` call (batches of `n_batch`, 512)
    that nothing can interrupt. On the same `Llama` instance and the same tokens (a long
    knowledge-base question, Chinese and English), it alternates

    * dskit: ``_Run._prefill(tokens)`` (what every embedded reply runs before sampling), and
    * raw:   ``Llama.eval(tokens)``,

    after ``llm.reset()`` each time (so the whole prompt is evaluated), swapping the order every
    other pair, after one warm-up of each. Reported: prompt tokens/s per pair, the paired
    dskit/raw ratio (target >= 0.97), and how long one batch takes: the longest a Stop waits.

How to run
    .venv/bin/python bench/bench_prefill.py [--model qwen2.5-coder:0.5b] [--pairs 5]
                                            [--tokens 2000]

    The exit code is always 0: this is a measurement, not a test; a missed target is printed.
"""

from __future__ import annotations

import argparse
import time
from statistics import median

from machine import machine_facts, se_median  # bench/machine.py: scripts run from bench/

from dskit.backends.base import ChatRequest
from dskit.backends.embedded import PREFILL_BATCH, EmbeddedBackend, _Run

RATIO_TARGET = 0.97
TEXT = ("龙井是绿茶，产自杭州西湖一带。冲泡龙井的水温以八十度左右为宜，水太烫会把茶叶烫熟。"
        "Sourdough needs a lively starter: feed it twice a day and bake when it doubles. ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder:0.5b")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()

    backend = EmbeddedBackend(n_ctx=4096)
    entry = backend.load(args.model)
    llm = entry.llm
    tokens = llm.tokenize((TEXT * 200).encode())[: args.tokens]
    run = _Run(entry, ChatRequest(args.model, [{"role": "user", "content": "x"}]))

    def timed(side: str) -> float:
        llm.reset()
        t0 = time.perf_counter()
        if side == "dskit":
            assert run._prefill(tokens)
        else:
            llm.eval(tokens)
        return len(tokens) / (time.perf_counter() - t0)

    print(machine_facts())
    print(f"model {args.model}, {len(tokens)} prompt tokens, threads {backend.n_threads}, "
          f"dskit batches of {PREFILL_BATCH}, llama-cpp-python n_batch {llm.n_batch}")
    timed("dskit"), timed("raw")  # warm-up
    ratios: list[float] = []
    speeds: dict[str, list[float]] = {"dskit": [], "raw": []}
    for i in range(args.pairs):
        order = ("dskit", "raw") if i % 2 == 0 else ("raw", "dskit")
        got = {side: timed(side) for side in order}
        for side, tps in got.items():
            speeds[side].append(tps)
        ratios.append(got["dskit"] / got["raw"])
        print(f"pair {i + 1}: dskit {got['dskit']:.1f} tok/s, raw {got['raw']:.1f} tok/s, "
              f"ratio {ratios[-1]:.3f}")
    ratio = median(ratios)
    batch_s = PREFILL_BATCH / median(speeds["dskit"])
    print(f"median prompt tokens/s: dskit {median(speeds['dskit']):.1f}, raw "
          f"{median(speeds['raw']):.1f}")
    print(f"dskit/raw ratio {ratio:.3f} ± {se_median(ratios):.3f} (target >= {RATIO_TARGET}) "
          f"{'PASS' if ratio >= RATIO_TARGET else 'TARGET MISSED'}")
    print(f"one batch of {PREFILL_BATCH} tokens: {batch_s:.2f} s, the longest a Stop waits "
          f"during prompt evaluation (llama-cpp-python alone: the whole prompt, "
          f"{len(tokens) / median(speeds['raw']):.1f} s)")
    backend.unload()


if __name__ == "__main__":
    main()
