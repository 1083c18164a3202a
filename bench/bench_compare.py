"""`compare()` on a backend that holds one model at a time: scheduled vs naive, and its overhead.

What it measures
    2 models (smollm2:135m, qwen2.5-coder:0.5b) x 6 prompts x 3 samples = 36 requests on the
    embedded backend limited to one resident model (``EmbeddedBackend(max_loaded=1)``, like a
    GPU that holds one size at a time). Every request uses temperature 0, the same small
    ``max_tokens`` and seed ``SEED + sample`` (what ``compare(seed=SEED)`` passes). Three ways
    of doing the same work, each on a fresh backend and client:

    * a (scheduled): ``dskit.compare(models, prompts, samples=3, client=client, ...)``, which
      groups each model's work, so each model is loaded once (2 loads);
    * b (naive):     for each prompt, for each sample, for each model: ``client.chat(...)``;
      the models alternate, so every call reloads a model (36 loads);
    * c (direct):    the same 36 requests as a, in the same model-major order, with
      ``client.chat(...)`` in a plain loop: the throughput baseline without compare()'s
      bookkeeping (task list, rows, grading, progress, DataFrame).

    Model loads are read from ``backend.loads``. Before measuring, one throwaway backend loads
    each model and answers one request, so the GGUF files are in the page cache for every run.

    Run order (cancels drift on a noisy machine): c a b a c c a, i.e. three a/c pairs whose
    order alternates (c>a, a>c, c>a; with --pairs 2: c a b a c), with the single naive run b
    between the first two scheduled runs. Reported:

    * wall time of every run; naive/scheduled wall-time ratio = b / median(a);
    * effective throughput of compare() vs the direct loop = (requests/s of a) / (requests/s
      of c) = c wall / a wall, the median over the pairs (target >= 0.95, PASS/FAIL), also
      the ratio of the medians; generated tokens/s of every run (thinking + answer tokens as
      each `Reply`/row reports them);
    * whether a and c generated the same text for all 36 requests (they should: same greedy
      requests in the same order), and the 1-minute load average before and after.

How to run
    .venv/bin/python bench/bench_compare.py [--max-tokens 16] [--pairs 3] [--json results.json]

    Takes about 2.5 minutes on 2 idle cores. Run it on an idle machine: llama.cpp slows down
    many times over when another process competes for the cores. The exit code is always 0:
    this is a measurement, not a test; a missed target is printed as FAIL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from machine import machine_facts  # bench/machine.py: scripts run from bench/

import dskit
from dskit.backends.embedded import EmbeddedBackend

MODELS = ["smollm2:135m", "qwen2.5-coder:0.5b"]
PROMPTS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "What is 12 times 7?",
    "Write a haiku about the sea.",
    "Explain what a CPU does in one sentence.",
    "Give a synonym for 'happy'.",
]
SAMPLES = 3
SEED = 1234
THROUGHPUT_TARGET = 0.95  # compare()'s requests/s must be at least this fraction of direct


@dataclass
class Run:
    """One pass over the 36 requests."""

    arm: str  # "a" scheduled compare(), "b" naive loop, "c" direct loop
    wall_s: float
    loads: int
    requests: int
    tokens: int  # generated tokens (thinking + answer), summed over the requests
    errors: int
    #: (model, prompt index, sample) -> thinking + answer text, to check a and c did the same
    texts: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def req_per_s(self) -> float:
        return self.requests / self.wall_s

    @property
    def tok_per_s(self) -> float:
        return self.tokens / self.wall_s


def _client() -> tuple[dskit.Client, EmbeddedBackend]:
    backend = EmbeddedBackend(max_loaded=1)
    return dskit.connect(backend, set_default=False), backend


def _key(model: str, i: int, k: int) -> str:
    return f"{model}|{i}|{k}"


def _tokens(thinking: Any, answer: Any) -> int:
    """Thinking + answer tokens; a missing count (a failed request: None, NaN, pd.NA) is 0."""
    import pandas as pd

    return sum(int(v) for v in (thinking, answer) if not pd.isna(v))


def run_scheduled(max_tokens: int) -> Run:
    """a: dskit.compare() on a fresh backend."""
    client, backend = _client()
    t0 = time.perf_counter()
    df = dskit.compare(MODELS, PROMPTS, samples=SAMPLES, client=client, max_tokens=max_tokens,
                       temperature=0, seed=SEED, progress=False)
    wall = time.perf_counter() - t0
    index = {pid: i for i, pid in enumerate(dict.fromkeys(df["prompt_id"]))}
    texts = {_key(r.model, index[r.prompt_id], int(r.sample)): f"{r.thinking}\x00{r.answer}"
             for r in df.itertuples(index=False)}
    tokens = sum(_tokens(t, a) for t, a in zip(df["thinking_tokens"], df["answer_tokens"],
                                               strict=True))
    run = Run("a", wall, backend.loads, len(df), tokens, int(df["error"].notna().sum()), texts)
    backend.unload()
    return run


def _loop(arm: str, order: list[tuple[str, int, int]], max_tokens: int) -> Run:
    client, backend = _client()
    texts: dict[str, str] = {}
    tokens = errors = 0
    t0 = time.perf_counter()
    for model, i, k in order:
        try:
            reply: Any = client.chat(PROMPTS[i], model, max_tokens=max_tokens, temperature=0,
                                     seed=SEED + k)
        except Exception:  # counted, like compare() records a failed call in its row
            errors += 1
            continue
        texts[_key(model, i, k)] = f"{reply.thinking}\x00{reply.answer}"
        tokens += _tokens(reply.stats.thinking_tokens, reply.stats.answer_tokens)
    wall = time.perf_counter() - t0
    run = Run(arm, wall, backend.loads, len(order), tokens, errors, texts)
    backend.unload()
    return run


def run_naive(max_tokens: int) -> Run:
    """b: prompt-major, then sample, then model: the models alternate on every call."""
    order = [(m, i, k) for i in range(len(PROMPTS)) for k in range(SAMPLES) for m in MODELS]
    return _loop("b", order, max_tokens)


def run_direct(max_tokens: int) -> Run:
    """c: compare()'s requests in compare()'s model-major order, in a plain loop."""
    order = [(m, i, k) for m in MODELS for i in range(len(PROMPTS)) for k in range(SAMPLES)]
    return _loop("c", order, max_tokens)


def warm_up(max_tokens: int) -> None:
    """Bring both model files into the page cache (and assemble them if needed)."""
    client, backend = _client()
    for model in MODELS:
        client.chat(PROMPTS[0], model, max_tokens=max_tokens, temperature=0, seed=SEED)
    backend.unload()


def _load1() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-tokens", type=int, default=16, help="per request (default 16)")
    ap.add_argument("--pairs", type=int, default=3, help="a/c pairs (default 3)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    n = args.max_tokens

    machine = machine_facts()
    started = dt.datetime.now(dt.timezone.utc)
    print(f"machine: nproc {machine['nproc']}, {machine['cpu']}; "
          f"llama-cpp-python {machine['llama_cpp_python']}, Python {machine['python']}")
    print(f"date: {started:%a %b %d %H:%M:%S UTC %Y}")
    print(f"work: {len(MODELS)} models x {len(PROMPTS)} prompts x {SAMPLES} samples = "
          f"{len(MODELS) * len(PROMPTS) * SAMPLES} requests per run; embedded backend, "
          f"max_loaded=1; temperature 0, max_tokens {n}, seed {SEED}+sample")
    print(f"models: {', '.join(MODELS)}")

    load_before = _load1()
    warm_up(n)

    # c a b a c (c a ...): a/c pairs with alternating order; the naive run after the first pair.
    plan: list[str] = []
    for p in range(args.pairs):
        plan += ["c", "a"] if p % 2 == 0 else ["a", "c"]
        if p == 0:
            plan.append("b")
    print(f"run order: {' '.join(plan)} (a/c pairs alternate their order; b once, "
          "between the first two a runs)\n")
    runners = {"a": run_scheduled, "b": run_naive, "c": run_direct}
    names = {"a": "scheduled compare()", "b": "naive loop", "c": "direct loop"}
    runs: list[Run] = []
    print(f"{'#':>2} {'arm':<22} {'wall s':>8} {'loads':>5} {'req/s':>7} {'tokens':>6} "
          f"{'tok/s':>7} {'errors':>6} {'load1':>5}")
    for j, arm in enumerate(plan, 1):
        run = runners[arm](n)
        runs.append(run)
        print(f"{j:>2} {arm + ' ' + names[arm]:<22} {run.wall_s:>8.2f} {run.loads:>5} "
              f"{run.req_per_s:>7.3f} {run.tokens:>6} {run.tok_per_s:>7.2f} {run.errors:>6} "
              f"{_load1():>5.2f}", flush=True)
    load_after = _load1()

    a_runs = [r for r in runs if r.arm == "a"]
    b_runs = [r for r in runs if r.arm == "b"]
    c_runs = [r for r in runs if r.arm == "c"]
    pairs = list(zip(c_runs, a_runs, strict=True))  # the k-th c and the k-th a are adjacent
    pair_ratios = [c.wall_s / a.wall_s for c, a in pairs]  # = (req/s of a) / (req/s of c)
    a_wall = statistics.median(r.wall_s for r in a_runs)
    b_wall = statistics.median(r.wall_s for r in b_runs)
    c_wall = statistics.median(r.wall_s for r in c_runs)
    throughput = statistics.median(pair_ratios)
    verdict = "PASS" if throughput >= THROUGHPUT_TARGET else "FAIL"
    same = [sum(a.texts.get(key) == text for key, text in c.texts.items()) for c, a in pairs]
    total = len(MODELS) * len(PROMPTS) * SAMPLES

    def tps(rs: list[Run]) -> float:
        return statistics.median(r.tok_per_s for r in rs)

    print()
    print(f"model loads (backend.loads): scheduled {sorted({r.loads for r in a_runs})}, "
          f"naive {sorted({r.loads for r in b_runs})}, direct {sorted({r.loads for r in c_runs})}"
          f" (expected 2 / 36 / 2)")
    print(f"wall time (median): scheduled {a_wall:.2f} s, naive {b_wall:.2f} s, "
          f"direct {c_wall:.2f} s")
    print(f"wall-time ratio naive/scheduled: {b_wall / a_wall:.2f}x")
    print(f"effective throughput compare()/direct (median of the {len(pairs)} adjacent pairs "
          f"{', '.join(f'{x:.3f}' for x in pair_ratios)}): {throughput:.3f}; "
          f"ratio of medians {c_wall / a_wall:.3f}; target >= {THROUGHPUT_TARGET}: {verdict}")
    print(f"generated tokens/s (median, wall clock incl. loads): scheduled {tps(a_runs):.2f}, "
          f"naive {tps(b_runs):.2f}, direct {tps(c_runs):.2f}")
    print(f"same thinking+answer text in a and c: {', '.join(f'{s}/{total}' for s in same)} "
          "per pair")
    print(f"machine noise: 1-min load average {load_before:.2f} before, {load_after:.2f} after")

    if args.json:
        result = {
            "date": started.isoformat(),
            "machine": machine,
            "argv": sys.argv[1:],
            "models": MODELS,
            "prompts": PROMPTS,
            "samples": SAMPLES,
            "max_tokens": n,
            "seed": SEED,
            "order": plan,
            "runs": [{k: v for k, v in asdict(r).items() if k != "texts"} for r in runs],
            "wall_median_s": {"scheduled": a_wall, "naive": b_wall, "direct": c_wall},
            "naive_over_scheduled": b_wall / a_wall,
            "throughput_pairs": pair_ratios,
            "throughput_ratio": throughput,
            "throughput_target": THROUGHPUT_TARGET,
            "verdict": verdict,
            "load_average": [load_before, load_after],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
