"""BM25 (Lucene's formula) and the tokenizer for Chinese and English."""

from __future__ import annotations

import math

import numpy as np

from dskit.kb.lexical import BM25Index, tokenize


def test_scores_follow_lucene_bm25() -> None:
    docs = [["tea", "green", "tea"], ["coffee"], [], ["tea", "black", "water", "boil"]]
    index = BM25Index(docs)
    raw, share = index.scores(["tea", "boil", "missing"])
    lengths = [3, 1, 1, 4]  # an empty chunk counts as one token
    avg = sum(lengths) / 4

    def idf(df: int) -> float:
        return math.log(1 + (4 - df + 0.5) / (df + 0.5))

    def part(tf: int, dl: int) -> float:
        return tf / (tf + 1.5 * (1 - 0.75 + 0.75 * dl / avg))

    want = [idf(2) * part(2, 3), 0.0, 0.0, idf(2) * part(1, 4) + idf(1) * part(1, 4)]
    assert np.allclose(raw, want, rtol=1e-6)
    mass = idf(2) + idf(1) + idf(0)
    assert np.allclose(share, np.array(want) / mass, rtol=1e-6)


def test_no_known_word_scores_zero() -> None:
    index = BM25Index([["a1"], ["b2"]])
    raw, share = index.scores(["zzz"])
    assert not raw.any() and not share.any()
    assert BM25Index([]).scores(["x"])[0].shape == (0,)


def test_tokenize_chinese_and_english() -> None:
    assert "龙井" in tokenize("冲泡龙井用多少度的水？")
    assert tokenize("The Tea of Hangzhou") == ["tea", "hangzhou"]


def test_chinese_is_indexed_as_characters_and_pairs() -> None:
    """Each run of ideographs: its characters and every neighbouring pair; stop words out."""
    assert tokenize("龙井茶") == ["龙", "井", "茶", "龙井", "井茶"]
    assert tokenize("是什么") == ["什", "是什"]  # 是, 么 and 什么 are stop words
    # Runs break at punctuation, Latin letters and digits; traditional characters alike.
    assert tokenize("長城，Great Wall 2024年") == ["長", "城", "長城", "great", "wall", "2024",
                                                 "年"]
    assert tokenize("") == [] and tokenize("！？。") == []


def test_a_one_character_query_and_a_word_query_both_match() -> None:
    docs = [tokenize(t) for t in ("龙井是绿茶，产自杭州。", "普洱茶越陈越香。", "长城西至嘉峪关。")]
    index = BM25Index(docs)
    raw, _ = index.scores(tokenize("茶"))
    assert raw[0] > 0 and raw[1] > 0 and raw[2] == 0
    raw, share = index.scores(tokenize("杭州的龙井"))
    assert int(np.argmax(raw)) == 0 and share[0] > 0.1 and raw[1] == raw[2] == 0
