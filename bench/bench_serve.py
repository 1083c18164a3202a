"""Streaming through `dskit serve` + the official ollama client vs the embedded backend in process.

What it measures
    For one GGUF model, the same prompt, seed, temperature (0, greedy), token budget and thread
    count, it alternates

    * serve:  ``ollama.Client(host=server.url).chat(model, messages, stream=True, options=...)``
      against ``dskit serve`` started with ``ds.serve.start(port=0, backend=backend)`` in this
      process (as a notebook starts it), i.e. HTTP on 127.0.0.1, NDJSON, the server's worker
      thread and event loop, the client's parsing, and
    * direct: ``backend.stream(ChatRequest(...))`` on the very same ``EmbeddedBackend`` (so both
      sides share one ``Llama`` instance: weights, threads, context size),

    swapping the order every other pair, after one warm-up of each. ``llm.reset()`` comes before
    every run so each run evaluates the whole prompt (otherwise llama-cpp-python reuses the cached
    prompt prefix and time to first token means nothing).

    Per run: time to first token (TTFT: from the call to the first non-empty text) and decode
    speed = (tokens - 1) / (time of the last text piece - time of the first). Both sides count
    tokens the same way: the generated text re-tokenized with ``llm.tokenize``.

    Reported: every pair, the medians, the paired serve/direct tokens/s ratio (target >= 0.95)
    and TTFT overhead serve - direct (target <= 20 ms), each with the standard error of the
    median of the pairs, and each run's process CPU time / wall time (llama.cpp keeps its threads
    busy: a run with much less than `threads` CPU per wall second was disturbed by another
    process; such pairs are marked `*`).

    Then throughput with N concurrent clients (default 4): N official clients start together
    (one thread each) on N different prompts; the server runs one generation per model at a time
    and queues the rest. Reported: total tokens / wall time against the same N prompts run one
    after another in process, each client's TTFT (which includes its wait in the queue) and
    whether every client got its whole answer.

How to run
    .venv/bin/python bench/bench_serve.py [--model qwen2.5-coder:0.5b] [--pairs 7]
                                          [--max-tokens 128] [--clients 4] [--json out.json]

    The exit code is always 0: this is a measurement, not a test; missed targets are printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median as _median
from typing import Any

from machine import machine_facts, se_median  # bench/machine.py: scripts run from bench/

import dskit
from dskit.backends.base import ChatRequest, Delta, Options
from dskit.backends.embedded import EmbeddedBackend

PROMPT = "Write a long story about a lighthouse keeper."
SEED = 1234
TPS_RATIO_TARGET = 0.95  # tokens/s through the server must be at least this fraction of direct
TTFT_OVERHEAD_TARGET_MS = 20.0  # the server may add at most this much to time to first token
CONTENDED_SHARE = 0.9


@dataclass
class Run:
    """One streamed generation."""

    side: str  # "serve" or "direct"
    ttft_s: float
    decode_tps: float
    tokens: int
    total_s: float
    cpu_util: float  # process CPU seconds / wall seconds
    text: str


class _Recorder:
    """Arrival times of the text pieces of one run."""

    def __init__(self, side: str, llm: Any, reset: bool = True) -> None:
        if reset:
            llm.reset()  # forget the cached prompt: every run evaluates the whole prompt
        self.side, self.llm = side, llm
        self.times: list[float] = []
        self.pieces: list[str] = []
        self.c0, self.t0 = time.process_time(), time.perf_counter()

    def add(self, text: str) -> None:
        self.times.append(time.perf_counter())
        self.pieces.append(text)

    def finish(self) -> Run:
        wall = time.perf_counter() - self.t0
        if not self.times:
            raise RuntimeError(f"{self.side}: the model produced no text")
        text = "".join(self.pieces)
        n = _count_tokens(self.llm, text)
        span = self.times[-1] - self.times[0]
        return Run(side=self.side, ttft_s=self.times[0] - self.t0,
                   decode_tps=(n - 1) / span if n > 1 and span > 0 else float("nan"),
                   tokens=n, total_s=wall, cpu_util=(time.process_time() - self.c0) / wall,
                   text=text)


def _count_tokens(llm: Any, text: str) -> int:
    return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def run_direct(backend: EmbeddedBackend, llm: Any, model: str, max_tokens: int,
               prompt: str = PROMPT, reset: bool = True, runner: Any = None) -> Run:
    """One streamed generation straight from the embedded backend.

    With `runner` (the server's thread for this model) it runs on that very thread: llama.cpp's
    speed here depends on which thread drives it (a second driving thread was up to 15 % slower
    or faster from run to run), so both sides use the same one and differ only by the server.
    """
    if runner is not None:
        return runner.submit(run_direct, backend, llm, model, max_tokens, prompt, reset).result()
    rec = _Recorder("direct", llm, reset)
    request = ChatRequest(model=model, messages=_messages(prompt),
                          options=Options(temperature=0, seed=SEED, max_tokens=max_tokens))
    for ev in backend.stream(request):
        if isinstance(ev, Delta) and ev.text:
            rec.add(ev.text)
    return rec.finish()


def run_serve(client: Any, llm: Any, model: str, max_tokens: int, prompt: str = PROMPT,
              reset: bool = True) -> Run:
    """One streamed chat through dskit serve with the official client."""
    rec = _Recorder("serve", llm, reset)
    for part in client.chat(model, _messages(prompt), stream=True,
                            options={"temperature": 0, "seed": SEED, "num_predict": max_tokens}):
        if part.message.content:
            rec.add(part.message.content)
    return rec.finish()


def _contended(a: Run, b: Run, threads: int) -> bool:
    return min(a.cpu_util, b.cpu_util) < CONTENDED_SHARE * threads


def concurrent(url: str, backend: EmbeddedBackend, llm: Any, model: str, max_tokens: int,
               clients: int) -> dict[str, Any]:
    """N official clients at once through the server vs the same N prompts one by one."""
    import ollama

    prompts = [f"{PROMPT} Chapter {i + 1}." for i in range(clients)]
    t0 = time.perf_counter()
    sequential = [run_direct(backend, llm, model, max_tokens, p, reset=False) for p in prompts]
    seq_wall = time.perf_counter() - t0
    seq_tokens = sum(r.tokens for r in sequential)

    results: list[dict[str, Any]] = [{} for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def one(i: int) -> None:
        client = ollama.Client(host=url, timeout=None)
        barrier.wait()
        start = time.perf_counter()
        first = None
        pieces: list[str] = []
        try:
            for part in client.chat(model, _messages(prompts[i]), stream=True, options={
                    "temperature": 0, "seed": SEED, "num_predict": max_tokens}):
                if part.message.content:
                    if first is None:
                        first = time.perf_counter()
                    pieces.append(part.message.content)
                if part.done:
                    results[i]["done_reason"] = part.done_reason
        except Exception as exc:  # reported, not raised: one failure must not hide the others
            results[i]["error"] = f"{type(exc).__name__}: {exc}"
        results[i].update(ttft_s=(first - start) if first else None,
                          end=time.perf_counter(), text="".join(pieces))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    c_start = time.perf_counter()
    for t in threads:
        t.join()
    c_wall = max(r["end"] for r in results) - c_start
    c_tokens = sum(_count_tokens(llm, r["text"]) for r in results)
    same = sum(r["text"] == s.text for r, s in zip(results, sequential, strict=True))
    return {
        "clients": clients,
        "sequential_direct_wall_s": seq_wall,
        "sequential_direct_tokens": seq_tokens,
        "sequential_direct_tps": seq_tokens / seq_wall,
        "concurrent_serve_wall_s": c_wall,
        "concurrent_serve_tokens": c_tokens,
        "concurrent_serve_tps": c_tokens / c_wall,
        "throughput_ratio": (c_tokens / c_wall) / (seq_tokens / seq_wall),
        "ttft_s": [r["ttft_s"] for r in results],
        "errors": [r["error"] for r in results if "error" in r],
        "same_text_as_sequential": same,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--model", default="qwen2.5-coder:0.5b")
    ap.add_argument("--pairs", type=int, default=7, help="alternating serve/direct pairs")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients (0: skip)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.pairs < 1:
        ap.error("--pairs must be at least 1 (7 or more for a meaningful median)")

    import ollama

    backend = EmbeddedBackend()
    llm = backend.load(args.model).llm
    server = dskit.serve.start(port=0, backend=backend, max_queue=max(8, args.clients))
    client = ollama.Client(host=server.url, timeout=None)
    threads = int(llm.context_params.n_threads)
    model_bytes = os.path.getsize(llm.model_path)
    machine = machine_facts()
    try:
        print(f"model {args.model} ({model_bytes / 1e6:.1f} MB), n_ctx {llm.n_ctx()}, "
              f"threads {threads}; dskit serve at {server.url} in this process")
        print(f"machine: {machine['nproc']} CPUs, {machine['cpu']}; "
              f"llama-cpp-python {machine['llama_cpp_python']}, Python {machine['python']}")
        print(f"prompt {PROMPT!r}, max_tokens {args.max_tokens}, temperature 0, seed {SEED}, "
              f"{args.pairs} pairs after one warm-up of each\n", flush=True)
        load_before = os.getloadavg()
        run_serve(client, llm, args.model, args.max_tokens)  # warm-up (also model facts)
        runner = server.engine.runner(args.model)
        run_direct(backend, llm, args.model, args.max_tokens, runner=runner)

        head = (f"{'pair':>4} {'order':<12} {'TTFT serve':>10} {'TTFT direct':>11} {'Δ ms':>7} "
                f"{'tok/s serve':>11} {'tok/s direct':>12} {'ratio':>6} {'tokens s/d':>10} "
                f"{'cpu s/d':>9}")
        print(head)
        print("-" * len(head), flush=True)
        pairs: list[tuple[Run, Run, str]] = []
        for i in range(1, args.pairs + 1):
            if i % 2:
                s = run_serve(client, llm, args.model, args.max_tokens)
                d = run_direct(backend, llm, args.model, args.max_tokens, runner=runner)
                order = "serve>direct"
            else:
                d = run_direct(backend, llm, args.model, args.max_tokens, runner=runner)
                s = run_serve(client, llm, args.model, args.max_tokens)
                order = "direct>serve"
            pairs.append((s, d, order))
            print(f"{i:>4} {order:<12} {s.ttft_s * 1e3:>8.1f}ms {d.ttft_s * 1e3:>9.1f}ms "
                  f"{(s.ttft_s - d.ttft_s) * 1e3:>+7.1f} {s.decode_tps:>11.2f} "
                  f"{d.decode_tps:>12.2f} {s.decode_tps / d.decode_tps:>6.3f} "
                  f"{f'{s.tokens}/{d.tokens}':>10} {s.cpu_util:>4.2f}/{d.cpu_util:<4.2f}"
                  f"{' *' if _contended(s, d, threads) else ''}", flush=True)

        ratios = [s.decode_tps / d.decode_tps for s, d, _ in pairs]
        overheads = [(s.ttft_s - d.ttft_s) * 1e3 for s, d, _ in pairs]
        tps_ratio, ttft_overhead_ms = _median(ratios), _median(overheads)
        tps_se = se_median(ratios) if len(pairs) > 1 else float("nan")
        ttft_se = se_median(overheads) if len(pairs) > 1 else float("nan")
        tps_ok = tps_ratio >= TPS_RATIO_TARGET
        ttft_ok = ttft_overhead_ms <= TTFT_OVERHEAD_TARGET_MS
        same = sum(s.text == d.text for s, d, _ in pairs)
        print("-" * len(head))
        print(f"identical text in {same}/{len(pairs)} pairs (greedy decoding, same seed)")
        print(f"tokens/s ratio serve/direct (median of pairs): {tps_ratio:.3f} ± {tps_se:.3f}; "
              f"target >= {TPS_RATIO_TARGET}: {'PASS' if tps_ok else 'FAIL'}")
        print(f"TTFT overhead serve - direct (median of pairs): {ttft_overhead_ms:+.1f} "
              f"± {ttft_se:.1f} ms; target <= {TTFT_OVERHEAD_TARGET_MS:.0f} ms: "
              f"{'PASS' if ttft_ok else 'FAIL'}")
        print("(± = standard error of the median of the paired values; a target closer than "
              "about twice it is not resolved by this run)")
        contended = sum(_contended(s, d, threads) for s, d, _ in pairs)
        print(f"pairs marked * (a run got < {CONTENDED_SHARE:.0%} of {threads} cores): "
              f"{contended}/{len(pairs)}")

        # The prompt's evaluation varies by ±100 ms from run to run, which hides a 20 ms
        # target. With the prompt cached (no reset: llama.cpp reuses the evaluated prompt, as
        # both sides send the same one), TTFT is one token's decode plus whatever the path
        # adds, so the difference between the sides is the server's own cost.
        cached = []
        for i in range(args.pairs):
            if i % 2:
                d = run_direct(backend, llm, args.model, 8, reset=False, runner=runner)
                s = run_serve(client, llm, args.model, 8, reset=False)
            else:
                s = run_serve(client, llm, args.model, 8, reset=False)
                d = run_direct(backend, llm, args.model, 8, reset=False, runner=runner)
            cached.append((s.ttft_s * 1e3, d.ttft_s * 1e3))
        cached_overhead = _median([a - b for a, b in cached])
        cached_se = se_median([a - b for a, b in cached]) if len(cached) > 1 else float("nan")
        cached_ok = cached_overhead <= TTFT_OVERHEAD_TARGET_MS
        serve_ms, direct_ms = _median([a for a, _ in cached]), _median([b for _, b in cached])
        print(f"TTFT with the prompt cached, {len(cached)} pairs: serve {serve_ms:.1f} ms, "
              f"direct {direct_ms:.1f} ms; overhead {cached_overhead:+.1f} ± {cached_se:.1f} ms; "
              f"target <= {TTFT_OVERHEAD_TARGET_MS:.0f} ms: {'PASS' if cached_ok else 'FAIL'}",
              flush=True)

        conc: dict[str, Any] | None = None
        if args.clients > 0:
            print(f"\n{args.clients} concurrent clients through dskit serve vs the same "
                  f"{args.clients} prompts one after another in process:", flush=True)
            conc = concurrent(server.url, backend, llm, args.model, args.max_tokens,
                              args.clients)
            ttfts = ", ".join(f"{t:.2f}" if t is not None else "none" for t in conc["ttft_s"])
            print(f"  sequential direct: {conc['sequential_direct_tokens']} tokens in "
                  f"{conc['sequential_direct_wall_s']:.2f} s = "
                  f"{conc['sequential_direct_tps']:.2f} tokens/s")
            print(f"  concurrent serve:  {conc['concurrent_serve_tokens']} tokens in "
                  f"{conc['concurrent_serve_wall_s']:.2f} s = "
                  f"{conc['concurrent_serve_tps']:.2f} tokens/s "
                  f"(ratio {conc['throughput_ratio']:.3f})")
            print(f"  per-client TTFT including the queue wait (s): {ttfts}")
            print(f"  errors: {conc['errors'] or 'none'}; identical text to the sequential runs: "
                  f"{conc['same_text_as_sequential']}/{args.clients}")
        load_after = os.getloadavg()
        print(f"\nmachine noise: 1-min load average {load_before[0]:.2f} before, "
              f"{load_after[0]:.2f} after")
        # The TTFT target is judged on the cached measurement, which resolves it; the end-to-end
        # one is printed above for completeness.
        if not (tps_ok and cached_ok):
            missed = [n for n, ok in (("tokens/s ratio", tps_ok), ("TTFT overhead", cached_ok))
                      if not ok]
            print(f"\n*** TARGET MISSED: {', '.join(missed)} ***")

        if args.json:
            result = {
                "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "model": args.model, "model_bytes": model_bytes, "threads": threads,
                "prompt": PROMPT, "seed": SEED, "max_tokens": args.max_tokens,
                "pairs": args.pairs, "machine": machine, "loadavg_before": load_before,
                "loadavg_after": load_after, "tps_ratio": tps_ratio, "tps_ratio_se": tps_se,
                "ttft_overhead_ms": ttft_overhead_ms, "ttft_overhead_se_ms": ttft_se,
                "tps_target": TPS_RATIO_TARGET, "ttft_target_ms": TTFT_OVERHEAD_TARGET_MS,
                "tps_pass": tps_ok, "ttft_pass": ttft_ok,
                "cached_ttft_overhead_ms": cached_overhead, "cached_ttft_pass": cached_ok,
                "identical_text_pairs": same,
                "contended_pairs": contended, "concurrency": conc,
                "runs": [{"pair": i, "order": order, **{f"{x.side}_{k}": v for x in (s, d)
                                                        for k, v in asdict(x).items()
                                                        if k not in ("side", "text")}}
                         for i, (s, d, order) in enumerate(pairs, 1)],
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
            print(f"\nwrote {args.json}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
