"""Thinking budgets on the embedded backend: what a budget costs when it is and is not reached.

What it measures
    qwen2.5-coder:0.5b asked to reason first (``think=True``: two phases, reasoning then the
    answer), temperature 0, the same prompt and seed for every run. There a reply without a
    budget takes the same two phases as one with a budget. ``--r1`` serves the same file under
    an R1 name (``ds.register_gguf``), as a DeepSeek-R1 GGUF would be: without a budget the
    reply is then one pass from the forced ``<think>``; with a budget it is the same pass with a
    stopping criterion counting the reasoning's tokens, cut and continued only when the budget
    is reached. Each pair also checks that both runs wrote the same reply (same thinking, same
    answer, same token count): a ratio over different replies would measure nothing.

    * never reached: the same call without a budget and with ``think_budget=10_000`` (far
      above ``max_tokens``), in pairs whose order alternates. Decode speed of each run is
      what its `Reply` reports (``stats.tokens_per_s``); the ratio budget/none per pair,
      median over the pairs. Target: >= 0.97.
    * reached: ``think_budget=B`` (default 32) cuts the reasoning; the reply then evaluates
      the closing text (a wrap-up line, ``</think>``, a blank line, the answer cue) and
      starts the answer. Measured per run from the chunks' arrival times: the gap between
      the last reasoning chunk (the wrap-up line, emitted at the cut) and the first answer
      chunk, against one prompt evaluation of the same run (its time to first token, the
      prompt evaluated from an empty cache: ``llm.reset()`` before each run). Target: the
      gap <= 1.1x one prompt evaluation (median of the runs).

How to run
    .venv/bin/python bench/bench_budget.py [--pairs 5] [--budget 32] [--max-tokens 256] [--r1]

    Takes about two minutes on 2 idle cores. Run it alone on an idle machine (llama.cpp slows
    down many times over when another process competes for the cores). Exit code 0 always;
    a missed target is printed as FAIL.
"""

from __future__ import annotations

import argparse
import statistics
import time

from machine import machine_facts  # bench/machine.py: scripts run from bench/

import dskit as ds
from dskit.backends.embedded import EmbeddedBackend
from dskit.weights import files as model_files

STANDIN = "qwen2.5-coder:0.5b"
#: The stand-in's file under an R1 name (`--r1`): the path a DeepSeek-R1 GGUF takes.
R1_NAME = "deepseek-r1-standin:0.5b"
PROMPT = ("A shop sells pens at 3 yuan each and notebooks at 5 yuan each. Li buys 4 pens and "
          "2 notebooks. How much does he pay? Think it through step by step.")


def timed(client: ds.Client, backend: EmbeddedBackend, model: str, **kwargs: object
          ) -> dict[str, float]:
    """One reply from an empty cache, with its speed and the arrival of each part."""
    backend.load(model).llm.reset()  # the prompt is evaluated in full, as in the first call
    t0 = time.perf_counter()
    last_thinking = first_answer = None
    stream = client.chat(PROMPT, model, stream=True, think=True, temperature=0, seed=11,
                         **kwargs)
    for chunk in stream:
        now = time.perf_counter() - t0
        if chunk.kind == "thinking":
            last_thinking = now
        elif first_answer is None:
            first_answer = now
    reply = stream.reply
    return {"tokens_per_s": reply.stats.tokens_per_s or 0.0, "ttft": reply.stats.ttft or 0.0,
            "text": hash((reply.thinking, reply.answer, reply.stats.eval_tokens)),
            "tokens": float(reply.stats.eval_tokens or 0),
            "gap": (first_answer - last_thinking) if first_answer and last_thinking else 0.0,
            "hit": float(reply.budget_hit), "thinking": float(reply.stats.thinking_tokens or 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--budget", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--r1", action="store_true",
                        help="serve the stand-in under an R1 name (one pass without a budget)")
    args = parser.parse_args()
    print(machine_facts())
    model = STANDIN
    if args.r1:
        ds.register_gguf(R1_NAME, model_files.model_path(STANDIN))
        model = R1_NAME
    print(f"model: {model}")
    backend = EmbeddedBackend(n_ctx=4096)
    client = ds.connect(backend, set_default=False)
    timed(client, backend, model, max_tokens=args.max_tokens)  # warm-up: loads the model
    ratios, same = [], 0
    for i in range(args.pairs):
        runs = {}
        for which in (("none", "budget") if i % 2 == 0 else ("budget", "none")):
            extra = {"think_budget": 10_000} if which == "budget" else {}
            runs[which] = timed(client, backend, model, max_tokens=args.max_tokens, **extra)
        ratio = runs["budget"]["tokens_per_s"] / runs["none"]["tokens_per_s"]
        ratios.append(ratio)
        same += runs["budget"]["text"] == runs["none"]["text"]
        print(f"never reached, pair {i + 1}: none {runs['none']['tokens_per_s']:.1f} tok/s, "
              f"budget {runs['budget']['tokens_per_s']:.1f} tok/s, ratio {ratio:.3f}, "
              f"{runs['none']['tokens']:.0f}/{runs['budget']['tokens']:.0f} tokens, same reply: "
              f"{'yes' if runs['budget']['text'] == runs['none']['text'] else 'NO'}")
    median = statistics.median(ratios)
    print(f"never reached: median tokens/s ratio {median:.3f} (target >= 0.97: "
          f"{'PASS' if median >= 0.97 else 'FAIL'}); the same reply in {same}/{args.pairs} "
          "pairs")
    gaps = []
    for i in range(args.pairs):
        run = timed(client, backend, model, max_tokens=args.max_tokens, think_budget=args.budget)
        assert run["hit"], "the budget was not reached: lower --budget"
        gaps.append(run["gap"] / run["ttft"])
        print(f"reached, run {i + 1}: {run['thinking']:.0f} thinking tokens, gap cut->answer "
              f"{run['gap'] * 1000:.0f} ms, one prompt evaluation {run['ttft'] * 1000:.0f} ms, "
              f"ratio {gaps[-1]:.2f}")
    median = statistics.median(gaps)
    print(f"reached: median gap / prompt evaluation {median:.2f} (target <= 1.1: "
          f"{'PASS' if median <= 1.1 else 'FAIL'})")


if __name__ == "__main__":
    main()
