"""Trace anatomy on written traces, English and Chinese: candidates as the reasoning grows,
where the right one first appears and where it settles, found-then-lost, reflection markers."""

from __future__ import annotations

import math

import pytest

from dskit.evals.anatomy import (
    REFLECTION_MARKERS,
    anatomy,
    estimate_tokens,
    reflections,
    token_index,
)


def test_reflection_markers_in_english_and_chinese_as_words_only() -> None:
    text = ("Wait, 5 - 2 is 3. Hmm, let me double-check: actually 3 + 4 = 7. I await nothing. "
            "等等，不对，再检查一下：其实是 7。")
    found = [m for _, m in reflections(text)]
    # "await" is not "wait"; overlapping markers count once, the longest at a place first
    assert found == ["Wait", "Hmm", "let me double-check", "actually", "等等", "不对", "再检查",
                     "其实"]
    assert reflections(text, markers=["nothing", "检查一下"]) == [
        (text.index("nothing"), "nothing"), (text.index("检查一下"), "检查一下")]
    assert "^wait" in REFLECTION_MARKERS and "^等等" in REFLECTION_MARKERS


def test_a_right_answer_found_early_then_overthought() -> None:
    thinking = ("小明有 5 个苹果，吃了 2 个，剩 3 个。又买了 4 个，所以一共 7 个。"
                "等等，再检查一下：5 - 2 = 3，3 + 4 = 7。没错，答案是 7。"
                "Let me also think about whether he gave any away. He did not. So 7.")
    result = anatomy(thinking, "7个", "7", thinking_tokens=100)
    assert result.correct is True and not result.found_then_lost
    assert [c for _, c in result.candidates][-1] == "7"
    # where "一共 7" ends, on the 100 tokens the backend counted (the Chinese, weighted 1 per
    # character, is most of them: a plain share of the characters would say 28, not 34)
    first_seven = thinking.index("一共 7") + len("一共 7")
    assert result.first_correct == token_index(thinking, first_seven, 100) == 34
    assert result.settled is not None and result.settled >= result.first_correct
    assert result.overthinking == 100 - result.settled
    assert 0 < result.overthinking_share < 1
    assert [m for _, m in result.markers] == ["等等", "再检查"]
    assert result.reflections_per_1k == pytest.approx(20.0)


def test_found_then_lost_and_candidate_changes() -> None:
    thinking = ("The cups: 3 + 4 = 7. So the answer is 7. Wait, maybe I misread. "
                "Actually the answer is 8.")
    result = anatomy(thinking, "The answer is 8.", "7", thinking_tokens=40)
    assert result.correct is False and result.found_then_lost
    assert [c for _, c in result.candidates] == ["7", "8"]  # read at each step's end
    assert result.changes == 1
    assert result.first_correct is not None and result.first_correct < result.settled


def test_never_right_never_found_and_empty_traces() -> None:
    result = anatomy("我想答案是 6。", "6", "7", thinking_tokens=10)
    assert result.first_correct is None and not result.found_then_lost
    assert result.correct is False
    empty = anatomy("", "7", "7")
    assert empty.tokens == 0 and empty.candidates == [] and empty.settled is None
    assert math.isnan(empty.overthinking_share) and math.isnan(empty.reflections_per_1k)
    assert empty.correct is True


def test_without_a_token_count_tokens_are_estimated() -> None:
    assert estimate_tokens("长城很长") == 4
    assert estimate_tokens("the wall is long") == round(1.3 * 4)
    result = anatomy("So the answer is 7.", "7", "7")
    assert result.tokens == estimate_tokens("So the answer is 7.")
