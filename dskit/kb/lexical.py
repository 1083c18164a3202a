"""BM25 over chunks, tokenised for Chinese (jieba) and English alike."""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..language import CJK

_WORD = re.compile(r"\w", re.UNICODE)
# Function words that match everywhere and only blur the ranking.
_STOP_WORDS = """
a an and are as at be by for from has have how i in is it its of on or that the this to was
what when where which who why will with do does did can you your we our they their he she
的 了 是 在 和 与 及 或 也 就 都 而 把 被 对 从 向 着 过 吗 呢 吧 啊 呀 么 什么 怎么 如何 哪 哪些
这 那 这个 那个 一个 有 没有 我 你 他 她 它 我们 你们 他们 请 为什么 多少 几
"""
_STOP = frozenset(_STOP_WORDS.split())
_JIEBA_LOCK = threading.Lock()
_jieba: Any = None


def _cutter() -> Any:
    """jieba, imported and quietened once (its first use builds a dictionary cache)."""
    global _jieba
    with _JIEBA_LOCK:
        if _jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def tokenize(text: str) -> list[str]:
    """Lower-cased words; Chinese is segmented by jieba's search mode (words and sub-words)."""
    lowered = text.lower()
    if CJK.search(lowered):
        words = _cutter().lcut_for_search(lowered)
    else:
        words = re.findall(r"\w+", lowered)
    return [w for w in (w.strip() for w in words)
            if w and _WORD.search(w) and w not in _STOP and not (len(w) == 1 and w.isascii())]


class BM25Index:
    """bm25s over pre-tokenised chunks, plus a query-relative score in [0, 1]."""

    def __init__(self, docs: Sequence[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        self.n = len(docs)
        self.df: Counter[str] = Counter()
        for toks in docs:
            self.df.update(set(toks))
        self._bm25: Any = None
        if self.n and self.df:
            self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
            # bm25s needs a non-empty token list per document to keep indices aligned.
            self._bm25.index([t or ["\u0000"] for t in docs], show_progress=False)

    def idf(self, token: str) -> float:
        """Lucene's idf: what bm25s uses for the same token."""
        df = self.df.get(token, 0)
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def scores(self, query: list[str]) -> tuple[Any, Any]:
        """(raw BM25 scores, scores divided by the query's idf mass) for every chunk.

        The second is close to 1 when a chunk contains every query word once (at average
        length) and 0 when it shares none: an absolute scale a threshold can use, unlike raw
        BM25, and it drops when the query asks for words the knowledge base lacks.
        """
        import numpy as np

        if not self.n:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        terms = list(dict.fromkeys(query))
        known = [t for t in terms if t in self.df]
        if not known or self._bm25 is None:
            zero = np.zeros(self.n, np.float32)
            return zero, zero
        raw = np.asarray(self._bm25.get_scores(known), dtype=np.float32)
        mass = sum(self.idf(t) for t in terms)
        return raw, np.clip(raw / mass, 0.0, 1.0) if mass > 0 else raw * 0
