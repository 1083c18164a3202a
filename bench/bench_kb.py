"""Knowledge bases: indexing throughput, re-adding an unchanged corpus, search latency, hit@k.

What it measures
    1. Indexing throughput on the local embedder (all-MiniLM-L6-v2 on llama.cpp, the CPU), in
       chunks/s, for a generated mixed Chinese/English corpus of about --chunks chunks (Markdown):
       * kb:     ``KnowledgeBase.add(folder)`` into a fresh knowledge base: reading, chunking
                 (dskit's splitter), BM25 tokens (Chinese bigrams), batched embedding, SQLite;
       * direct: ``LocalEmbedder.embed(texts)`` on exactly the chunk texts kb made, in one call:
                 the embedding model alone, the upper bound (target kb/direct >= 0.8);
       * llama-index: ``VectorStoreIndex.from_documents`` with the same splitter settings and the
                 same model wrapped as a llama-index embedding (its default batch of 10);
       * sentence-transformers (when the hf extra is installed): the same two measures with the
                 same weights run by sentence-transformers/torch (``embed_model="hf:all-minilm"``,
                 the same chunk size), so llama.cpp / sentence-transformers is a same-run ratio
                 (target >= 1.0).
       Runs alternate (then again in reverse order), each llama.cpp run beside its
       sentence-transformers twin; medians reported, and the engine ratio also per round (the
       twin's time / llama.cpp's), whose median is held to the target.
    2. Re-adding the unchanged corpus: ``kb.add(folder)`` a second time, as a share of the first
       indexing time (target <= 5%).
    3. Search latency at 10,000 chunks: the corpus copied into 10 folders, each copy with its
       own file titles, so the index holds ~10x the chunk rows (a chunk text seen before reuses
       its vector, so only the title chunks are embedded again; scoring still runs over every
       row); median and p95 of ``kb.search`` over the labelled queries, after one warm-up
       search that builds the in-memory index (reported separately).
    4. Quality on the sample corpus shipped with dskit (dskit/data/sample_kb) and the labelled
       queries in bench/kb_queries.json (16 Chinese, 12 English): hit@1 and hit@3 for hybrid
       (the default), vector only and BM25 only, against the expected hit@k of a random ranking;
       with the hf extra, hybrid and vector only again with sentence-transformers' vectors.
       hit@k counts a top-k passage from the right file; "passage hit@k" one that contains the
       label's answer text (the queries missed at 1 are listed); then passage hit@1 on the
       file's second set of queries ("more", written later, reported apart).

How to run
    cd bench && ../.venv/bin/python bench_kb.py [--chunks 1000] [--big 10000] [--rounds 2]

    The engine ratio needs sentence-transformers: `pip install -e '.[hf]'` (torch) first.

    Takes about 5–10 minutes on 2 idle cores. Exit code 0 always: a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from machine import machine_facts  # bench/machine.py: scripts run from bench/

from dskit.embeddings import HFEmbedder, LocalEmbedder
from dskit.kb import KnowledgeBase

try:
    import sentence_transformers  # noqa: F401  (only to know whether the baseline can run)

    HAVE_ST = True
except ImportError:
    HAVE_ST = False
ST = "hf:all-minilm"  # the same packaged MiniLM weights through sentence-transformers

HERE = Path(__file__).resolve().parent
ZH = ["龙井是绿茶，产自杭州西湖一带，冲泡水温以八十度左右为宜。",
      "普洱茶越陈越香，应该放在通风干燥的地方。",
      "西溪湿地适合骑自行车，建议预留半天时间。",
      "会议决定下周三发布新版本，负责人是张伟。",
      "显存不够时，Ollama 会把一部分层放到 CPU 上运行，速度会明显变慢。",
      "长城东起山海关，西至嘉峪关。"]
EN = ["Tomatoes need at least six hours of direct sun a day.",
      "Feed the starter once a day with equal weights of flour and water.",
      "The full DeepSeek-R1 model is a mixture of experts with 671 billion parameters.",
      "Mount Etna is an active volcano on the east coast of Sicily.",
      "Irregular watering causes blossom end rot, a black patch on the fruit.",
      "Bake the loaf in a covered Dutch oven at 250 degrees for twenty minutes."]


def set_threads(n: int) -> None:
    """Give llama.cpp (DSKIT_THREADS) and torch the same number of threads; 0 keeps defaults."""
    if n <= 0:
        return
    os.environ["DSKIT_THREADS"] = str(n)
    if HAVE_ST:
        import torch

        torch.set_num_threads(n)


def make_corpus(root: Path, n_files: int, seed: int, tag: str = "") -> None:
    """Markdown files of mixed-language paragraphs (numbers make every chunk unique); `tag`
    changes only each file's title, i.e. its first chunk."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        paras = []
        for j in range(12):
            pool = ZH if (i + j) % 2 else EN
            paras.append(" ".join(f"{rng.choice(pool)} ({i}.{j}.{k})" for k in range(4)))
        (root / f"doc{i:04d}.md").write_text(f"# Document {tag}{i}\n\n" + "\n\n".join(paras),
                                             encoding="utf-8")


def time_kb(folder: Path, home: Path, name: str, embed_model: str | None = None
            ) -> tuple[float, int, KnowledgeBase, list[str]]:
    # The same chunking for both engines (MiniLM's default: 200 tokens, overlap 25).
    kb = KnowledgeBase(name, data_dir=home, embed_model=embed_model, chunk_size=200,
                       chunk_overlap=25)
    t0 = time.perf_counter()
    report = kb.add(folder, progress=False)
    dt = time.perf_counter() - t0
    texts = [r[0] for r in kb._store.all_chunks("text")]
    assert (report.status == "added").all()
    return dt, len(texts), kb, texts


def time_direct(texts: list[str], emb: Any) -> float:
    t0 = time.perf_counter()
    emb.embed(texts)
    return time.perf_counter() - t0


def time_llama_index(folder: Path, chunk_size: int, overlap: int) -> tuple[float, int]:
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    from dskit.kb.llamaindex import LlamaEmbedding

    t0 = time.perf_counter()
    docs = SimpleDirectoryReader(str(folder)).load_data()
    index = VectorStoreIndex.from_documents(
        docs, embed_model=LlamaEmbedding(LocalEmbedder()),
        transformations=[SentenceSplitter(chunk_size=chunk_size, chunk_overlap=overlap)])
    dt = time.perf_counter() - t0
    return dt, len(index.index_struct.nodes_dict)


def quality(home: Path, embed_model: str | None = None) -> dict[str, object]:
    """hit@1 / hit@3 on the labelled queries, three retrieval modes, and a random baseline."""
    kb = KnowledgeBase("quality", data_dir=home, embed_model=embed_model, chunk_size=200,
                       chunk_overlap=25)
    kb.add(str(files("dskit") / "data" / "sample_kb"), progress=False)
    labelled = json.loads((HERE / "kb_queries.json").read_text(encoding="utf-8"))
    queries, more = labelled["queries"], labelled["more"]
    chunks_per_file = kb.files().set_index("source").chunks.to_dict()
    total = sum(chunks_per_file.values())
    out: dict[str, object] = {"queries": len(queries), "chunks": total}
    texts = [r[0] for r in kb._store.all_chunks("text")]
    for q in queries + more:  # a label no chunk contains would count as a miss for every mode
        if not any(q["answer"] in t for t in texts):
            raise SystemExit(f"kb_queries.json: no chunk contains {q['answer']!r} ({q['q']})")
    for mode, kwargs in (("hybrid", {}), ("vector", {"hybrid": False}),
                         ("bm25", {"alpha": 0.0})):
        h1 = h3 = p1 = p3 = 0
        misses = []
        for q in queries:
            hits = kb.search(q["q"], k=3, **kwargs)
            names = [s.split("/", 1)[1] for s in hits.source]
            h1 += names[:1] == [q["source"]]
            h3 += q["source"] in names
            passage = hits.verdict(q["answer"])
            p1 += passage.correct
            p3 += passage.rank is not None
            if not passage.correct:
                misses.append(q["q"])
        n = len(queries)
        extra = [kb.search(q["q"], k=3, **kwargs).verdict(q["answer"]).correct for q in more]
        out[mode] = {"hit@1": round(h1 / n, 3), "hit@3": round(h3 / n, 3),
                     "passage hit@1": round(p1 / n, 3), "passage hit@3": round(p3 / n, 3),
                     "passage misses at 1": misses,
                     f"more queries ({len(more)}): passage hit@1": round(sum(extra) / len(more), 3)}
    # Random ranking: a random top-k of chunks contains one of the target file's chunks.
    rng = random.Random(0)
    labels = [s.split("/", 1)[1] for s, n in chunks_per_file.items() for _ in range(n)]
    r1 = r3 = 0
    trials = 2000
    for t in range(trials):
        target = queries[t % len(queries)]["source"]
        order = rng.sample(labels, 3)
        r1 += order[0] == target
        r3 += target in order
    out["random"] = {"hit@1": round(r1 / trials, 3), "hit@3": round(r3 / trials, 3)}
    kb.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=1000, help="size of the indexing corpus")
    ap.add_argument("--big", type=int, default=10000, help="chunks for the latency test")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quality-only", action="store_true",
                    help="only part 4 (hit@k on the labelled queries), for each engine installed")
    ap.add_argument("--threads", type=int, default=0,
                    help="threads for both engines (default: llama.cpp's physical cores, "
                    "torch's own default); 1 compares them fairly on a busy machine")
    args = ap.parse_args()
    set_threads(args.threads)
    print(json.dumps(machine_facts(), indent=1))
    if args.quality_only:
        with tempfile.TemporaryDirectory(prefix="bench-kb-q-") as tmp:
            print("\n== quality, MiniLM on llama.cpp ==")
            print(json.dumps(quality(Path(tmp) / "q"), indent=1, ensure_ascii=False))
            if HAVE_ST:
                print("\n== quality, the same MiniLM on sentence-transformers ==")
                print(json.dumps(quality(Path(tmp) / "q-st", ST), indent=1, ensure_ascii=False))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-kb-"))
    try:
        # ~12 chunks per file at the default MiniLM chunk size (200 tokens)
        per_file = 12
        corpus = work / "corpus"
        make_corpus(corpus, max(1, args.chunks // per_file), seed=1)
        local = LocalEmbedder()
        local.embed(["warm up"])
        st = HFEmbedder("all-minilm") if HAVE_ST else None
        if st is not None:
            st.embed(["warm up"])

        kb_t, direct_t, li_t, st_kb_t, st_direct_t = [], [], [], [], []
        n_chunks = n_li = 0
        kb = None
        first_add = 0.0
        _, _, probe, texts = time_kb(corpus, work / "probe", "probe")
        probe.close()
        # Each llama.cpp run next to its sentence-transformers twin: a round's pair shares the
        # machine's state (other tenants, clock), so its ratio is steadier than two medians'.
        steps = (["direct", "st-direct", "kb", "st-kb"] if st is not None
                 else ["direct", "kb"]) + ["li"]
        for r in range(args.rounds):
            for what in steps if r % 2 == 0 else steps[::-1]:
                if what == "kb":
                    if kb is not None:
                        kb.close()
                    dt, n_chunks, kb, texts = time_kb(corpus, work / f"home{r}", "idx")
                    kb_t.append(dt)
                    first_add = dt
                elif what == "direct":
                    direct_t.append(time_direct(texts, local))
                elif what == "st-direct":
                    st_direct_t.append(time_direct(texts, st))
                elif what == "st-kb":
                    dt, n_st, st_kb, _ = time_kb(corpus, work / f"st-home{r}", "idx", ST)
                    st_kb.close()
                    assert n_st == len(texts)  # the same chunks as the llama.cpp run
                    st_kb_t.append(dt)
                else:
                    dt, n_li = time_llama_index(corpus, 200, 25)
                    li_t.append(dt)
        assert kb is not None
        t0 = time.perf_counter()
        again = kb.add(corpus, progress=False)
        readd = time.perf_counter() - t0
        assert (again.status == "unchanged").all()
        kb_rate = n_chunks / statistics.median(kb_t)
        direct_rate = n_chunks / statistics.median(direct_t)
        li_rate = n_li / statistics.median(li_t)
        rnd = [round(t, 2) for t in kb_t], [round(t, 2) for t in direct_t]
        print("\n== indexing ==")
        print(f"chunks: kb {n_chunks}, llama-index {n_li}; runs kb {rnd[0]}, direct {rnd[1]}, "
              f"llama-index {[round(t, 2) for t in li_t]}")
        print(f"kb.add        {kb_rate:8.1f} chunks/s   (MiniLM on llama.cpp)")
        print(f"direct embed  {direct_rate:8.1f} chunks/s   kb/direct = {kb_rate / direct_rate:.3f}"
              f"  (target >= 0.8: {'PASS' if kb_rate / direct_rate >= 0.8 else 'FAIL'})")
        print(f"llama-index   {li_rate:8.1f} chunks/s   kb/llama-index = {kb_rate / li_rate:.2f}x")
        if st is not None:
            st_kb_rate = n_chunks / statistics.median(st_kb_t)
            st_direct_rate = n_chunks / statistics.median(st_direct_t)
            print(f"sentence-transformers: kb.add {st_kb_rate:.1f} chunks/s (runs "
                  f"{[round(t, 2) for t in st_kb_t]}), direct {st_direct_rate:.1f} chunks/s "
                  f"(runs {[round(t, 2) for t in st_direct_t]})")
            print(f"llama.cpp / sentence-transformers, ratio of the median rates: direct "
                  f"{direct_rate / st_direct_rate:.2f}x, kb.add {kb_rate / st_kb_rate:.2f}x")
            paired = {"direct": [s / t for t, s in zip(direct_t, st_direct_t, strict=True)],
                      "kb.add": [s / t for t, s in zip(kb_t, st_kb_t, strict=True)]}
            for what, ratios in paired.items():
                print(f"  {what:6s} per round (each run beside its twin): median "
                      f"{statistics.median(ratios):.2f}x, range {min(ratios):.2f}–"
                      f"{max(ratios):.2f}x, {sum(r >= 1.0 for r in ratios)}/{len(ratios)} "
                      f"rounds >= 1.0")
            worst = min(statistics.median(r) for r in paired.values())
            print(f"  target: median per-round ratio >= 1.0: {'PASS' if worst >= 1.0 else 'FAIL'}")
        else:
            print("sentence-transformers not installed: no engine ratio (pip install -e '.[hf]')")
        # What padding costs sentence-transformers on these chunks: it sorts a call's texts by
        # characters, then pads each batch to its longest text in word pieces.
        pieces = local.count_tokens(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        size = st.batch_size if st is not None else 64
        batches = [[pieces[i] for i in order[b:b + size]] for b in range(0, len(order), size)]
        padded = sum(len(b) * max(b) for b in batches) / sum(pieces)
        squared = sum(len(b) * max(b) ** 2 for b in batches) / sum(n * n for n in pieces)
        print(f"sentence-transformers pads (batches of {size}): +{padded - 1:.0%} word pieces, "
              f"+{squared - 1:.0%} attention work; chunk lengths: median "
              f"{statistics.median(pieces):.0f} word pieces, {min(pieces)}–{max(pieces)}")
        print(f"re-add unchanged: {readd * 1000:.1f} ms = {readd / first_add:.2%} of the first "
              f"indexing ({first_add:.1f} s) (target <= 5%: "
              f"{'PASS' if readd / first_add <= 0.05 else 'FAIL'})")
        kb.close()

        print("\n== search latency ==")
        big_home = work / "big"
        copies = max(1, round(args.big / n_chunks))
        big = KnowledgeBase("big", data_dir=big_home)
        t0 = time.perf_counter()
        for c in range(copies):
            folder = work / "big_corpus" / f"copy{c}"
            make_corpus(folder, max(1, args.chunks // per_file), seed=1, tag=f"c{c}-")
            big.add(folder, progress=False)
        build = time.perf_counter() - t0
        queries = [q["q"] for q in json.loads(
            (HERE / "kb_queries.json").read_text(encoding="utf-8"))["queries"]]
        t0 = time.perf_counter()
        big.search(queries[0])
        warm = time.perf_counter() - t0
        lat = []
        for _ in range(3):
            for q in queries:
                t0 = time.perf_counter()
                big.search(q, k=6)
                lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        print(f"{len(big)} chunks ({copies} copies, built in {build:.0f} s); first search "
              f"(builds the in-memory index) {warm * 1000:.0f} ms")
        print(f"search latency over {len(lat)} searches: median {statistics.median(lat):.1f} ms, "
              f"p95 {lat[int(0.95 * (len(lat) - 1))]:.1f} ms")
        big.close()

        print("\n== quality (sample corpus, labelled queries) ==")
        print(json.dumps(quality(work / "q"), indent=1, ensure_ascii=False))
        if HAVE_ST:
            print("\n== quality with sentence-transformers' vectors (same weights) ==")
            print(json.dumps(quality(work / "q-st", ST), indent=1, ensure_ascii=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
