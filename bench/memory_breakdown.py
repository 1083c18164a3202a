"""Where a kernel's memory goes: resident memory after each step of a chat and a KB search.

What it measures
    In one process, the steps `binder_memory.py --kb` runs in a Jupyter kernel, one at a time:
    import dskit, connect, one chat, then each dependency a knowledge base loads (imported
    here first, so its own cost shows), the embedder, `kb.add` of dskit/data/sample_kb and
    one `kb.search`. After each step it prints the process's RSS, how much of it is anonymous
    memory (heap, KV cache, buffers) and how much file-backed (mmapped model weights, shared
    libraries), and the change. The same numbers without the Jupyter kernel's own ~50 MiB.

    Run it under binder/start's environment:
    `binder/start .venv/bin/python bench/memory_breakdown.py`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import tempfile
from collections.abc import Callable
from importlib.resources import files

_last = 0.0


def _status() -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of this process in MiB (Linux)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


def step(label: str, action: Callable[[], object] | None = None) -> object:
    """Run `action`, then print RSS, its parts and the change since the previous step."""
    global _last
    result = action() if action is not None else None
    s = _status()
    print(f"{label:<44} rss {s['VmRSS']:6.0f}  anon {s['RssAnon']:6.0f}  "
          f"file {s['RssFile']:5.0f}  {s['VmRSS'] - _last:+6.0f} MiB", flush=True)
    _last = s["VmRSS"]
    return result


def main() -> int:
    """Print the breakdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-chat", action="store_true", help="skip the chat")
    parser.add_argument("--no-preimport", action="store_true",
                        help="let kb.add import what it needs (the kernel's order)")
    args = parser.parse_args()
    step("python")
    ds = step("import dskit", lambda: importlib.import_module("dskit"))
    if not args.no_chat:
        client = step("connect", ds.connect)  # type: ignore[attr-defined]
        reply = step("one chat", lambda: client.chat(
            "熊猫吃什么？请简短回答。", max_tokens=64, think=True))
        print(f"  model {client.default_model}, answer {reply.answer[:30]!r}")
        for entry in client.backend._loaded.values():
            print(f"  n_ctx {entry.llm.n_ctx()}, "
                  f"estimated weights+KV {entry.memory / 2**20:.0f} MiB")
    step("import dskit.kb", lambda: importlib.import_module("dskit.kb"))
    if not args.no_preimport:
        # pandas 3 imports pyarrow itself when it is installed: its cost shows under pandas.
        for name in ("numpy", "pandas", "pyarrow", "tqdm.auto", "filelock", "pypdf",
                     "lxml.etree"):
            step(f"import {name}", lambda name=name: importlib.import_module(name))
        from dskit.kb import lexical

        step("tokenize Chinese (BM25)",
             lambda: lexical.tokenize("冲泡龙井用多少度的水"))
        from dskit.embeddings import get_embedder

        step("MiniLM embedder (one sentence)", lambda: get_embedder().embed(["a sentence"]))
    kb = step("KnowledgeBase()", lambda: ds.KnowledgeBase(  # type: ignore[attr-defined]
        "memory", data_dir=tempfile.mkdtemp()))
    step("kb.add(sample_kb)", lambda: kb.add(str(files("dskit") / "data" / "sample_kb"),
                                             progress=False))
    step("gc.collect()", gc.collect)
    hits = step("kb.search", lambda: kb.search("冲泡龙井用多少度的水？"))
    print(f"  top hit {hits.iloc[0]['source']}")
    print(f"peak (VmHWM) {_status()['VmHWM']:.0f} MiB")
    heavy = [m for m in ("pyarrow", "llama_index", "jieba", "tiktoken", "nltk", "bm25s",
                         "scipy", "sklearn", "torch") if m in sys.modules]
    print("loaded:", ", ".join(heavy) or "none of the heavy ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
