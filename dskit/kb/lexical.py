"""BM25 over chunks, tokenised for Chinese (character bigrams) and English alike."""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..language import CJK

#: The tokenisation stored with each chunk; a knowledge base that stored another is tokenised
#: again from its chunk texts (see `KnowledgeBase`), never searched with mixed tokens.
VERSION = "cjk-bigrams-1"

# A run of CJK ideographs (language.CJK's ranges), or a run of other word characters.
_IDEOGRAPHS = CJK.pattern[1:-1]
_RUN = re.compile(rf"[{_IDEOGRAPHS}]+|[^\W{_IDEOGRAPHS}]+")
# Function words that match everywhere and only blur the ranking.
_STOP_WORDS = """
a an and are as at be by for from has have how i in is it its of on or that the this to was
what when where which who why will with do does did can you your we our they their he she
的 了 是 在 和 与 及 或 也 就 都 而 把 被 对 从 向 着 过 吗 呢 吧 啊 呀 么 什么 怎么 如何 哪 哪些
这 那 这个 那个 一个 有 没有 我 你 他 她 它 我们 你们 他们 请 为什么 多少 几
"""
_STOP = frozenset(_STOP_WORDS.split())
# A question's own words: a passage that answers "团队聚餐是什么时候？" states a date and never
# says 什么时候, so these are left out of what a question is searched with (longest first).
_QUESTION_WORDS = """
什么时候 什么地方 什么样 什么 怎么样 怎么办 怎么 怎样 如何 为什么 为何 哪里 哪儿 哪个 哪些 哪
多少 多久 多长时间 几 谁 吗 呢 是否 是不是 有没有 能不能 可不可以
"""
_QUESTION = re.compile("|".join(sorted(_QUESTION_WORDS.split(), key=len, reverse=True)))
#: Single characters that are function words (是, 的, 在 …): a pair holding one that no passage
#: contains ("餐是" in 团队聚餐是…) is where two words meet in the question, not a word.
FUNCTION_CHARS = frozenset(w for w in _STOP if len(w) == 1 and CJK.match(w))


def tokenize(text: str) -> list[str]:
    """Lower-cased words; Chinese as its characters and overlapping character pairs.

    Chinese has no spaces: instead of a word segmenter (jieba's dictionary held 68 MiB in
    every kernel that searched), each run of ideographs gives its single characters and every
    pair of neighbours, as Lucene's CJK analyzer does. A two-character word is then one exact
    token and a one-character query still matches; the labelled queries rank as they did with
    jieba (bench/bench_kb.py).
    """
    words: list[str] = []
    for run in _RUN.findall(text.lower()):
        if CJK.match(run):
            words += run
            words += (run[i:i + 2] for i in range(len(run) - 1))
        else:
            words.append(run)
    return [w for w in words if w not in _STOP and not (len(w) == 1 and w.isascii())]


def query_terms(text: str) -> list[str]:
    """The tokens a question is searched with: `tokenize` of the question without its question
    words (什么时候, 哪里, 多少, 谁 …), which a passage that answers it does not contain."""
    return tokenize(_QUESTION.sub(" ", text))


def key_terms(text: str) -> set[str]:
    """The words that say what a text is about: `query_terms` without single Chinese
    characters (茶 is in every tea note) and without pairs holding a function character."""
    return {t for t in query_terms(text)
            if not (len(t) == 1 and CJK.match(t)) and not is_junction(t)}


def is_junction(token: str) -> bool:
    """A Chinese pair holding a function character ("餐是", "的水"): where two words meet."""
    return len(token) == 2 and CJK.match(token) is not None and (
        token[0] in FUNCTION_CHARS or token[1] in FUNCTION_CHARS)


class BM25Index:
    """Lucene's BM25 over pre-tokenised chunks, plus a query-relative score in [0, 1].

    Written here with numpy rather than taken from bm25s, whose sparse matrices import scipy:
    26 MiB more in every kernel that searches (docs/benchmarks-journal.md, "Kernel memory with
    a knowledge base"). The formula is the one bm25s's "lucene" method computes:
    idf · tf / (tf + k1·(1 − b + b·dl/avgdl)).
    """

    def __init__(self, docs: Sequence[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        import numpy as np

        self.n = len(docs)
        self.df: Counter[str] = Counter()
        # token -> (chunk numbers, term frequencies), packed arrays: 8 bytes a posting.
        self._postings: dict[str, tuple[array[int], array[float]]] = {}
        for i, toks in enumerate(docs):
            counts = Counter(toks)
            self.df.update(counts.keys())
            for tok, tf in counts.items():
                ids, tfs = self._postings.setdefault(tok, (array("i"), array("f")))
                ids.append(i)
                tfs.append(tf)
        # An empty chunk counts as one token long, as it did when bm25s indexed it.
        lengths = np.array([max(len(t), 1) for t in docs], dtype=np.float64)
        avg = float(lengths.mean()) if self.n else 1.0
        self._norm = k1 * (1 - b + b * lengths / avg)

    def idf(self, token: str) -> float:
        """Lucene's idf, log(1 + (N − df + 0.5) / (df + 0.5))."""
        df = self.df.get(token, 0)
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def scores(self, query: list[str]) -> tuple[Any, Any]:
        """(raw BM25 scores, scores divided by the query's idf mass) for every chunk.

        The second is 0 when a chunk shares no query word and grows with every word it has
        (0.4 when it holds each once at average length: tf / (tf + k1)), up to 1: an absolute
        scale a threshold can use, unlike raw BM25, and it drops when the query asks for words
        the knowledge base lacks.
        """
        import numpy as np

        if not self.n:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        # A pair no chunk holds counts as a word the knowledge base lacks, unless it holds a
        # function character: "聚餐是什么" makes "餐是", which is no word at all.
        terms = [t for t in dict.fromkeys(query) if t in self.df or not is_junction(t)]
        known = [t for t in terms if t in self.df]
        if not known:
            zero = np.zeros(self.n, np.float32)
            return zero, zero
        total = np.zeros(self.n, np.float64)
        for t in known:
            ids, tfs = self._postings[t]
            rows = np.frombuffer(ids, dtype=np.int32)
            tf = np.frombuffer(tfs, dtype=np.float32).astype(np.float64)
            total[rows] += self.idf(t) * tf / (tf + self._norm[rows])
        raw = total.astype(np.float32)
        mass = sum(self.idf(t) for t in terms)
        return raw, np.clip(raw / mass, 0.0, 1.0) if mass > 0 else raw * 0
