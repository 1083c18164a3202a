"""BM25 (Lucene's formula) and the tokenizer for Chinese and English."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dskit.kb import lexical
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


def test_a_question_is_searched_without_its_question_words() -> None:
    assert lexical.query_terms("团队聚餐是什么时候？") == tokenize("团队聚餐是")
    assert "时候" not in lexical.query_terms("团队聚餐是什么时候？")
    assert lexical.query_terms("谁负责中文检索测试？") == tokenize("负责中文检索测试")
    assert lexical.query_terms("Where is the museum?") == tokenize("Where is the museum?")


NOTICE = ("下周一开始新的考勤制度，请大家按时打卡。项目评审会改到周三上午十点，在三楼会议室。"
          "本周五晚上六点团队聚餐，地点在公司附近的湘菜馆，请在周四前回复是否参加。年底的绩效"
          "考核表格已经发到邮箱，请在月底前填写完毕并交给部门经理。")


@pytest.mark.parametrize("question", ["团队聚餐是什么时候？", "团队聚餐在哪里？",
                                      "考勤制度什么时候开始？", "湘菜馆在哪里？"])
def test_a_chinese_term_the_passage_holds_is_most_of_the_match(question: str) -> None:
    """Question words (什么时候) and pairs where two words of the question meet ("餐是") no
    longer count as words the knowledge base lacks. They held these shares at 0.10–0.12, under
    the 0.16 that `ask`'s threshold (0.08) needs when the embedding adds nothing (MiniLM on
    Chinese); now 0.26–0.28."""
    docs = [tokenize(t) for t in (NOTICE, "西湖龙井是绿茶，冲泡的水温以八十度左右为宜。",
                                  "乌龙茶是半发酵茶，冲泡用九十五度以上的水。")]
    _raw, share = BM25Index(docs).scores(lexical.query_terms(question))
    assert share[0] > 0.2 and share[0] > 10 * max(share[1], share[2]), share


@pytest.mark.parametrize("question", ["火星有几颗卫星？", "明天天气怎么样？", "股票怎么买？"])
def test_a_chinese_question_about_something_else_still_matches_little(question: str) -> None:
    docs = [tokenize(t) for t in (NOTICE, "西湖龙井是绿茶，冲泡的水温以八十度左右为宜。")]
    _raw, share = BM25Index(docs).scores(lexical.query_terms(question))
    assert share.max() < 0.1, share


def test_only_unknown_pairs_with_a_function_character_leave_the_mass() -> None:
    assert lexical.is_junction("餐是") and lexical.is_junction("的水")
    assert not lexical.is_junction("聚餐") and not lexical.is_junction("是")
    index = BM25Index([tokenize("卫星很多")])
    # 火星 is a word the knowledge base lacks (it counts); 星有 is where two words meet.
    _raw, share = index.scores(["卫星", "火星", "星有"])
    _raw, without = index.scores(["卫星", "火星"])
    assert np.allclose(share, without) and share[0] < 0.5
