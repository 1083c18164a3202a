"""Streaming chat: dskit (embedded backend) vs raw llama-cpp-python, in one process.

What it measures
    For one GGUF model, the same prompt, seed, temperature (0, greedy), max tokens and thread
    count, it alternates

    * dskit:  ``client.chat(prompt, model, stream=True, ...)`` iterated chunk by chunk, through
      the public API (request building, the `<think>` splitter, `Reply` accumulation), and
    * raw:    ``Llama.create_chat_completion(messages, stream=True, ...)`` on the very same
      ``Llama`` instance (taken from dskit's embedded backend, so both sides share weights,
      threads and context size),

    swapping the order every other pair to cancel order effects, after one warm-up run of each.
    ``llm.reset()`` is called before every run so each run evaluates the whole prompt (otherwise
    llama-cpp-python reuses the cached prompt prefix and time to first token means nothing).

    Per run: time to first token (TTFT, from the call to the first non-empty text chunk) and
    decode speed = (tokens generated - 1) / (time of last text chunk - time of first one).
    Tokens are counted the same way on both sides: the whole generated text re-tokenized with
    ``llm.tokenize(text.encode(), add_bos=False, special=True)``.

    Reported: every pair, the medians, the paired dskit/raw tokens/s ratio (target >= 0.97),
    the paired TTFT overhead dskit - raw (target <= 10 ms), PASS/FAIL, the thread count, the
    model file size and the "effective memory bandwidth" (median tokens/s x model file bytes).
    Because the machine may be busy, only ratios measured within the same run are meaningful.
    Each run also records its process CPU time / wall time: llama.cpp keeps its threads busy,
    so a run that got fewer than 90 % of its cores (or lost > 10 % to hypervisor steal) was
    disturbed by another process; such pairs are marked `*`, and the ratios are printed a second
    time without them. ``Llama.eval`` is wrapped with a timer on the shared instance (both
    sides, two ``perf_counter()`` calls per eval) to report how much of TTFT and of each
    token's time is spent outside llama.cpp's compute, which is where dskit's overhead lives.

How to run
    .venv/bin/python bench/bench_stream.py [--model qwen2.5-coder:0.5b] [--pairs 7]
                                           [--max-tokens 128] [--json results.json]

    The exit code is always 0: this is a measurement, not a test; missed targets are printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median as _median
from typing import Any

from machine import machine_facts, se_median  # bench/machine.py: scripts run from bench/

import dskit
from dskit.backends.embedded import EmbeddedBackend
from dskit.conversation.stream import ChatStream

PROMPT = "Write a long story about a lighthouse keeper."
SEED = 1234
TPS_RATIO_TARGET = 0.97  # dskit tokens/s must be at least this fraction of raw
TTFT_OVERHEAD_TARGET_MS = 10.0  # dskit may add at most this much to time to first token
CONTENDED_SHARE = 0.9  # a run that got less than this share of its cores was disturbed


@dataclass
class Run:
    """One streamed generation."""

    side: str  # "dskit" or "raw"
    ttft_s: float
    decode_tps: float
    tokens: int
    chunks: int
    total_s: float
    cpu_util: float  # process CPU seconds / wall seconds (about the thread count when idle)
    steal: float  # share of all CPUs' time the hypervisor gave to other guests (/proc/stat)
    #: TTFT minus the time spent in `Llama.eval` (llama.cpp's prompt evaluation).
    ttft_outside_eval_s: float
    #: Per decoded token, the time between first and last chunk not spent in `Llama.eval`
    #: (sampling, detokenizing and all Python layers above: llama-cpp-python's and dskit's).
    decode_outside_eval_s: float
    text: str
    token_ids: list[int]  # prompt + generated tokens as llama.cpp evaluated them


class EvalClock:
    """Times every `Llama.eval` call (llama.cpp's decode of a token batch) on one instance.

    The same hook serves both sides; it costs two `perf_counter()` calls per eval. It lets the
    report separate the llama.cpp compute (identical work on both sides, but noisy on a busy
    machine) from everything around it, which is where a wrapper's overhead lives.
    """

    def __init__(self, llm: Any) -> None:
        self.total = 0.0
        inner = llm.eval

        def timed_eval(tokens: Any) -> None:
            t = time.perf_counter()
            try:
                inner(tokens)
            finally:
                self.total += time.perf_counter() - t

        llm.eval = timed_eval


class _Recorder:
    """Collects the text chunks of one run with their arrival times."""

    def __init__(self, side: str, llm: Any, clock: EvalClock) -> None:
        llm.reset()  # forget the cached prompt: every run evaluates the whole prompt
        self.side, self.llm, self.clock = side, llm, clock
        self.times: list[float] = []
        self.evals: list[float] = []  # eval seconds so far, at each chunk
        self.pieces: list[str] = []
        clock.total = 0.0
        self.s0 = _steal_ticks()
        self.c0, self.t0 = time.process_time(), time.perf_counter()

    def add(self, text: str) -> None:
        self.times.append(time.perf_counter())
        self.evals.append(self.clock.total)
        self.pieces.append(text)

    def finish(self) -> Run:
        t_end, c_end = time.perf_counter(), time.process_time()
        s_end = _steal_ticks()
        wall = t_end - self.t0
        steal = (s_end - self.s0) / (_TICKS * (os.cpu_count() or 1) * wall) \
            if s_end is not None and self.s0 is not None else 0.0
        if not self.times:
            raise RuntimeError(f"{self.side}: the model produced no text")
        text = "".join(self.pieces)
        n = _count_tokens(self.llm, text)
        span = self.times[-1] - self.times[0]
        outside = span - (self.evals[-1] - self.evals[0])
        return Run(
            side=self.side,
            ttft_s=self.times[0] - self.t0,
            decode_tps=(n - 1) / span if n > 1 and span > 0 else float("nan"),
            tokens=n,
            chunks=len(self.times),
            total_s=wall,
            cpu_util=(c_end - self.c0) / wall,
            steal=steal,
            ttft_outside_eval_s=self.times[0] - self.t0 - self.evals[0],
            decode_outside_eval_s=outside / (n - 1) if n > 1 else float("nan"),
            text=text,
            token_ids=[int(t) for t in self.llm._input_ids],
        )


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _steal_ticks() -> int | None:
    """CPU time stolen by the hypervisor so far, in clock ticks (Linux guests only)."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return None


def _count_tokens(llm: Any, text: str) -> int:
    return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0


def run_dskit(client: dskit.Client, llm: Any, clock: EvalClock, model: str,
              max_tokens: int) -> Run:
    """One streamed chat through dskit's public API."""
    rec = _Recorder("dskit", llm, clock)
    stream = client.chat(PROMPT, model, stream=True, max_tokens=max_tokens, temperature=0,
                         seed=SEED)
    assert isinstance(stream, ChatStream)
    for chunk in stream:
        if chunk.text:
            rec.add(chunk.text)
    return rec.finish()


def run_raw(llm: Any, clock: EvalClock, max_tokens: int) -> Run:
    """One streamed chat straight through llama-cpp-python."""
    rec = _Recorder("raw", llm, clock)
    chunks = llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}], stream=True, max_tokens=max_tokens,
        temperature=0, seed=SEED,
    )
    for chunk in chunks:
        text = chunk["choices"][0]["delta"].get("content")
        if text:
            rec.add(text)
    return rec.finish()


def _contended(d: Run, r: Run, threads: int) -> bool:
    """Whether another process took CPU from either run (llama.cpp threads keep their cores
    busy, so an undisturbed run uses about `threads` CPU seconds per wall second; in a VM the
    hypervisor may also steal time, which /proc/stat reports)."""
    return (min(d.cpu_util, r.cpu_util) < CONTENDED_SHARE * threads
            or max(d.steal, r.steal) > 1 - CONTENDED_SHARE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--model", default="qwen2.5-coder:0.5b")
    ap.add_argument("--pairs", type=int, default=7, help="alternating dskit/raw pairs (>= 5)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.pairs < 5:
        ap.error("--pairs must be at least 5")

    backend = EmbeddedBackend()
    entry = backend.load(args.model)
    llm = entry.llm
    client = dskit.connect(backend, set_default=False)
    clock = EvalClock(llm)
    model_bytes = os.path.getsize(llm.model_path)
    threads = int(llm.context_params.n_threads)
    machine = machine_facts()

    print(f"model {args.model}: {llm.model_path} ({model_bytes / 1e6:.1f} MB), "
          f"n_ctx {llm.n_ctx()}, threads {threads} (batch {llm.context_params.n_threads_batch}),"
          f" raw chat format {llm.chat_format!r}")
    print(f"machine: {machine['nproc']} CPUs, {machine['cpu']}; "
          f"llama-cpp-python {machine['llama_cpp_python']}, Python {machine['python']}")
    print(f"llama.cpp build: {machine['llama_cpp_system_info']}")
    print(f"prompt {PROMPT!r}, max_tokens {args.max_tokens}, temperature 0, seed {SEED}, "
          f"{args.pairs} pairs after one warm-up of each\n", flush=True)

    load_before = os.getloadavg()
    run_dskit(client, llm, clock, args.model, args.max_tokens)  # warm-up
    run_raw(llm, clock, args.max_tokens)

    head = (f"{'pair':>4} {'order':<9} {'TTFT dskit':>10} {'TTFT raw':>9} {'Δ ms':>7} "
            f"{'tok/s dskit':>11} {'tok/s raw':>9} {'ratio':>6} {'tokens d/r':>10} "
            f"{'same ids':>8} {'cpu d/r':>9}")
    print(head)
    print("-" * len(head), flush=True)
    pairs: list[tuple[Run, Run, str]] = []
    for i in range(1, args.pairs + 1):
        if i % 2:
            d = run_dskit(client, llm, clock, args.model, args.max_tokens)
            r = run_raw(llm, clock, args.max_tokens)
            order = "dskit>raw"
        else:
            r = run_raw(llm, clock, args.max_tokens)
            d = run_dskit(client, llm, clock, args.model, args.max_tokens)
            order = "raw>dskit"
        pairs.append((d, r, order))
        print(f"{i:>4} {order:<9} {d.ttft_s * 1e3:>8.1f}ms {r.ttft_s * 1e3:>7.1f}ms "
              f"{(d.ttft_s - r.ttft_s) * 1e3:>+7.1f} {d.decode_tps:>11.2f} {r.decode_tps:>9.2f} "
              f"{d.decode_tps / r.decode_tps:>6.3f} {f'{d.tokens}/{r.tokens}':>10} "
              f"{'yes' if d.token_ids == r.token_ids else 'NO':>8} "
              f"{d.cpu_util:>4.2f}/{r.cpu_util:<4.2f}{' *' if _contended(d, r, threads) else ''}",
              flush=True)

    load_after = os.getloadavg()
    ds = [p[0] for p in pairs]
    rs = [p[1] for p in pairs]
    med = {
        "dskit_ttft_ms": _median([x.ttft_s for x in ds]) * 1e3,
        "raw_ttft_ms": _median([x.ttft_s for x in rs]) * 1e3,
        "dskit_tps": _median([x.decode_tps for x in ds]),
        "raw_tps": _median([x.decode_tps for x in rs]),
        "dskit_tokens": _median([float(x.tokens) for x in ds]),
        "raw_tokens": _median([float(x.tokens) for x in rs]),
    }
    # Paired statistics: each pair ran back to back, so its ratio/difference cancels drift.
    tps_ratio = _median([d.decode_tps / r.decode_tps for d, r, _ in pairs])
    ttft_overhead_ms = _median([(d.ttft_s - r.ttft_s) * 1e3 for d, r, _ in pairs])
    tps_ok = tps_ratio >= TPS_RATIO_TARGET
    ttft_ok = ttft_overhead_ms <= TTFT_OVERHEAD_TARGET_MS
    bw_dskit = med["dskit_tps"] * model_bytes / 1e9
    bw_raw = med["raw_tps"] * model_bytes / 1e9
    clean = [(d, r) for d, r, _ in pairs if not _contended(d, r, threads)]
    same_ids = sum(d.token_ids == r.token_ids for d, r, _ in pairs)
    max_diff = max(abs(d.tokens - r.tokens) for d, r, _ in pairs)

    med_tokens = f"{med['dskit_tokens']:.0f}/{med['raw_tokens']:.0f}"
    print("-" * len(head))
    print(f"{'med':>4} {'':<9} {med['dskit_ttft_ms']:>8.1f}ms {med['raw_ttft_ms']:>7.1f}ms "
          f"{ttft_overhead_ms:>+7.1f} {med['dskit_tps']:>11.2f} {med['raw_tps']:>9.2f} "
          f"{tps_ratio:>6.3f} {med_tokens:>10}")
    print()
    print(f"generated tokens: dskit {sorted({x.tokens for x in ds})}, "
          f"raw {sorted({x.tokens for x in rs})} (max per-pair difference {max_diff}); "
          f"identical prompt+output token ids in {same_ids}/{len(pairs)} pairs")
    tps_se = se_median([d.decode_tps / r.decode_tps for d, r, _ in pairs])
    ttft_se = se_median([(d.ttft_s - r.ttft_s) * 1e3 for d, r, _ in pairs])
    print(f"tokens/s ratio dskit/raw (median of pairs): {tps_ratio:.3f} ± {tps_se:.3f} "
          f"(ratio of medians {med['dskit_tps'] / med['raw_tps']:.3f}); "
          f"target >= {TPS_RATIO_TARGET}: {'PASS' if tps_ok else 'FAIL'}")
    print(f"TTFT overhead dskit - raw (median of pairs): {ttft_overhead_ms:+.1f} "
          f"± {ttft_se:.1f} ms "
          f"(difference of medians {med['dskit_ttft_ms'] - med['raw_ttft_ms']:+.1f} ms); "
          f"target <= {TTFT_OVERHEAD_TARGET_MS:.0f} ms: {'PASS' if ttft_ok else 'FAIL'}")
    print("(± = standard error of the median of the paired values; a target closer than "
          "about twice it is not resolved by this run)")
    print(f"machine noise: 1-min load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; 'cpu' = process CPU s / wall s per run (about "
          f"{threads} when the run had the cores to itself); hypervisor steal "
          f"{_median([x.steal for x in ds + rs]):.1%} median, {max(x.steal for x in ds + rs):.1%} "
          f"max per run")
    print(f"pairs marked * ran while something else took CPU (a run got < "
          f"{CONTENDED_SHARE:.0%} of {threads} cores, or > {1 - CONTENDED_SHARE:.0%} steal): "
          f"{len(pairs) - len(clean)}/{len(pairs)}")
    clean_ratio = clean_overhead = None
    if clean:
        clean_ratio = _median([d.decode_tps / r.decode_tps for d, r in clean])
        clean_overhead = _median([(d.ttft_s - r.ttft_s) * 1e3 for d, r in clean])
        print(f"unmarked pairs only ({len(clean)}): tokens/s ratio {clean_ratio:.3f} "
              f"({'PASS' if clean_ratio >= TPS_RATIO_TARGET else 'FAIL'}), TTFT overhead "
              f"{clean_overhead:+.1f} ms "
              f"({'PASS' if clean_overhead <= TTFT_OVERHEAD_TARGET_MS else 'FAIL'}); "
              f"median tok/s dskit {_median([d.decode_tps for d, _ in clean]):.2f}, "
              f"raw {_median([r.decode_tps for _, r in clean]):.2f}")
    # Where the time goes: llama.cpp's eval (same tokens on both sides) vs everything else.
    ttft_out = {side: _median([x.ttft_outside_eval_s * 1e3 for x in xs])
                for side, xs in (("dskit", ds), ("raw", rs))}
    ttft_out_overhead_ms = _median([(d.ttft_outside_eval_s - r.ttft_outside_eval_s) * 1e3
                                 for d, r, _ in pairs])
    tok_out = {side: _median([x.decode_outside_eval_s * 1e3 for x in xs])
               for side, xs in (("dskit", ds), ("raw", rs))}
    tok_out_overhead_ms = _median([(d.decode_outside_eval_s - r.decode_outside_eval_s) * 1e3
                                for d, r, _ in pairs])
    print(f"outside llama.cpp eval (hooked Llama.eval): TTFT dskit {ttft_out['dskit']:.2f} ms, "
          f"raw {ttft_out['raw']:.2f} ms, dskit overhead {ttft_out_overhead_ms:+.2f} ms "
          f"(median of pairs)")
    print(f"  per decoded token: dskit {tok_out['dskit']:.3f} ms, raw {tok_out['raw']:.3f} ms, "
          f"dskit overhead {tok_out_overhead_ms:+.3f} ms/token = "
          f"{tok_out_overhead_ms * med['raw_tps'] / 1e3:+.2%} of raw's time per token")
    print(f"threads: {threads}; model file: {model_bytes} bytes ({model_bytes / 1e6:.1f} MB)")
    print(f"effective memory bandwidth (median tok/s x file bytes): dskit {bw_dskit:.2f} GB/s, "
          f"raw {bw_raw:.2f} GB/s")
    if not (tps_ok and ttft_ok):
        missed = [name for name, ok in (("tokens/s ratio", tps_ok), ("TTFT overhead", ttft_ok))
                  if not ok]
        print(f"\n*** TARGET MISSED: {', '.join(missed)} ***")
        if not ttft_ok and ttft_out_overhead_ms <= TTFT_OVERHEAD_TARGET_MS:
            print(f"    dskit adds only {ttft_out_overhead_ms:+.2f} ms outside llama.cpp's "
                  "prompt evaluation: the rest of the end-to-end TTFT difference is llama.cpp "
                  "compute time on identical tokens, i.e. machine noise; rerun on a quieter "
                  "machine or with more --pairs.")
        if not tps_ok and tok_out_overhead_ms * med["raw_tps"] / 1e3 < 1 - TPS_RATIO_TARGET:
            print(f"    dskit adds only {tok_out_overhead_ms:+.3f} ms per token outside "
                  f"llama.cpp's eval, within the {1 - TPS_RATIO_TARGET:.0%} budget: the "
                  "tokens/s difference is machine noise; rerun.")

    if args.json:
        result = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "model": args.model,
            "model_path": llm.model_path,
            "model_bytes": model_bytes,
            "threads": threads,
            "raw_chat_format": llm.chat_format,
            "prompt": PROMPT,
            "seed": SEED,
            "max_tokens": args.max_tokens,
            "pairs": args.pairs,
            "machine": machine,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "medians": med,
            "tps_ratio": tps_ratio,
            "tps_ratio_se": tps_se,
            "ttft_overhead_se_ms": ttft_se,
            "ttft_overhead_ms": ttft_overhead_ms,
            "tps_target": TPS_RATIO_TARGET,
            "ttft_target_ms": TTFT_OVERHEAD_TARGET_MS,
            "tps_pass": tps_ok,
            "ttft_pass": ttft_ok,
            "bandwidth_gb_s": {"dskit": bw_dskit, "raw": bw_raw},
            "identical_token_ids_pairs": same_ids,
            "ttft_outside_eval_ms": ttft_out,
            "ttft_outside_eval_overhead_ms": ttft_out_overhead_ms,
            "decode_outside_eval_ms_per_token": tok_out,
            "decode_outside_eval_overhead_ms_per_token": tok_out_overhead_ms,
            "uncontended_pairs": len(clean),
            "uncontended_tps_ratio": clean_ratio,
            "uncontended_ttft_overhead_ms": clean_overhead,
            "runs": [
                {"pair": i, "order": order, "contended": _contended(d, r, threads),
                 **{f"{x.side}_{k}": v for x in (d, r) for k, v in asdict(x).items()
                    if k not in ("token_ids", "side")}}
                for i, (d, r, order) in enumerate(pairs, 1)
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
