"""Graders: the cup puzzle by its conclusion, maths by value (boxes, numerals, fractions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dskit as ds
from dskit.errors import ConfigurationError
from dskit.evals import grading as G


@pytest.mark.parametrize("answer", [
    "The ball is on the bed.",
    "It's still on the bed, because the cup was upside down.",
    "The ball fell onto the bed when the cup was turned over, so it stays there while the cup "
    "is moved to another room.",
    "The ball is on the bed. The cup is in the other room.",
    "On the bed.",
])
def test_cup_grader_accepts_english(answer: str):
    assert G.grade_cup(answer) is True


@pytest.mark.parametrize("answer", [
    "球在床上。",
    "在床上",
    "球留在床上了，因为杯子是倒扣的。",
    "它掉在床上，杯子被拿走后球还在原地（床上）。",
])
def test_cup_grader_accepts_chinese(answer: str):
    assert G.grade_cup(answer) is True


@pytest.mark.parametrize("answer", [
    "The ball is still in the cup.",
    "The ball is now in the other room, not on the bed.",
    "It is not on the bed.",
    "球还在杯子里。",
    "球不在床上，它在另一个房间。",
    "球被带到另一个房间了。",
    "I don't know.",
    "",
])
def test_cup_grader_rejects_wrong_answers(answer: str):
    assert G.grade_cup(answer) is False


def test_boxed_nested_is_the_final_answer():
    assert G.math_answer(r"so \boxed{1} ... finally \boxed{\frac{5}{6}}") == r"\frac{5}{6}"
    assert G.grade_math(r"The answer is \boxed{\dfrac{5}{6}}.", "5/6") is True
    assert G.grade_math(r"\boxed{0.8333333}", "5/6") is True
    assert G.grade_math(r"\boxed{\sqrt{4}}", "2") is True  # symbolic, through math-verify
    assert G.grade_math(r"\boxed{26 \text{ pencils}}", "26") is True
    assert G.grade_math(r"\boxed{x = 5}", "5") is True
    assert G.grade_math(r"\boxed{27}", "26") is False


def test_last_number_when_nothing_is_boxed():
    assert G.last_number("1/2 + 1/3 = 5/6") == "5/6"
    assert G.last_number("5-3=2") == "2"
    assert G.last_number("It is −4 degrees") == "-4"
    assert G.last_number("The total is 1,234.") == "1,234"
    assert G.last_number("no digits") is None
    assert G.grade_math("So he has 20 marbles.", "20") is True
    assert G.grade_math("The sale price is $30.00", "30") is True
    assert G.grade_math("60% of the class", "60") is True
    assert G.grade_math("3 + 4 = 7, so 8", "7") is False
    assert G.grade_math("", "7") is False
    assert G.grade_math("anything", None) is None


def test_a_box_in_the_reasoning_counts_only_without_an_answer():
    assert G.grade_math("", "7", thinking=r"... \boxed{7}") is True
    assert G.grade_math("", "7", thinking="3 + 4 = 7") is False


def test_chinese_numerals():
    numerals = ("十", "十二", "二十六", "八百零一", "两千", "一万二千")
    assert [G.chinese_number(s) for s in numerals] == [10, 12, 26, 801, 2000, 12000]
    assert G.chinese_number("苹果") is None
    assert G.grade_math("兔有四只。", "4") is True
    assert G.grade_math("答案是八百零一", "801") is True
    assert G.grade_math("还剩 26 支铅笔。", "26") is True


def test_grade_dispatch():
    assert G.grade("anything", None) is None
    assert G.grade("The sky is Blue!", "blue") is True
    assert G.grade("red", "blue") is False
    assert G.grade("球在床上", "在床上", grader="cup") is True
    assert G.grade("yes", "YES", grader=lambda a, e: a.upper() == e) is True
    with pytest.raises(ConfigurationError, match="unknown grader"):
        G.grade("x", "y", grader="nope")


DATA = Path(__file__).parent / "data"


def labelled(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))["answers"]


@pytest.mark.parametrize("item", [*labelled("cup_answers.json"),
                                  *labelled("cup_answers_heldout.json")],
                         ids=lambda item: item["kind"])
def test_cup_grader_agrees_with_the_labels(item: dict):
    assert G.grade_cup(item["answer"]) is item["correct"], item["answer"]


@pytest.mark.parametrize("item", labelled("math_answers.json"), ids=lambda item: item["kind"])
def test_math_grader_agrees_with_the_labels(item: dict):
    assert G.grade(item["answer"], item["expected"], "math") is item["correct"], item["answer"]


def test_a_word_anywhere_is_not_an_answer():
    # The old grader's mistake: "床上" somewhere in gibberish or in a restated premise.
    assert G.cup_place("床上床上床上床上！！") is None
    assert G.cup_place("I turned the cup upside down on the bed and carried it away.") is None
    assert not G.grade_cup("The cup was turned over on the bed, so the ball is in the kitchen.")


def test_verdicts_say_what_was_expected_and_what_was_read():
    wrong = G.verdict("5 + 2 − 4 = 3，所以他有 3 个苹果。", 7)
    assert (wrong.correct, wrong.got, wrong.symbol) == (False, "3", "✗")
    assert str(wrong) == "✗ wrong: expected 7; the answer says 3"
    right = G.verdict("球留在床上。", "在床上", grader="cup")
    assert str(right) == "✓ correct (expected 在床上)" and right.got == "在床上"
    kitchen = G.verdict("The ball is in the kitchen.", "on the bed", grader="cup")
    assert kitchen.got == "in the other room" and not kitchen.correct
    assert str(G.verdict("no idea", 7)) == "✗ wrong: expected 7; no final answer found"
    assert G.verdict("anything", None).symbol == "?"


def test_reply_grade_shows_the_verdict():
    reply = ds.Reply(answer="在厨房里。", model="qwen2.5-coder:0.5b", backend="embedded")
    assert reply.grade(ds.prompts.cup_puzzle("zh")) is reply
    assert reply.verdict is not None and reply.verdict.correct is False
    assert "✗ wrong: expected 在床上" in reply.text()
    html = reply._repr_html_()
    assert 'class="dskit-verdict" data-correct="false"' in html
    assert "(a stand-in, not DeepSeek)" in reply.footer()


@pytest.mark.parametrize("item", labelled("text_answers.json"), ids=lambda item: item["kind"])
def test_text_graders_agree_with_the_labels(item: dict):
    """How often (by value, any wording, English or Chinese) and the user's name asked back."""
    got = G.grade(item["answer"], item["expected"], "text", item.get("grader"))
    assert got is item["correct"], item["answer"]


@pytest.mark.parametrize(("answer", "expected"), [
    ("1 week", "once a week"), ("weekly", "once a week"), ("1 time per week", "once a week"),
    ("every week", "once a week"), ("每周一次", "once a week"), ("一周一次", "once a week"),
    ("once a week", "每周一次"), ("every 7 days", "weekly"), ("每两周一次", "every other week"),
    ("twice daily", "一天两次"), ("60 minutes", "1 hour"),
])
def test_equivalent_frequencies_and_durations_match(answer: str, expected: str):
    assert G.grade(answer, expected) is True


@pytest.mark.parametrize(("answer", "expected"), [
    ("2 weeks", "once a week"), ("twice a week", "once a week"), ("每周两次", "once a week"),
    ("两周一次", "每周一次"), ("once a weekend", "once a week"), ("not once a week", "once a week"),
    ("every 2 weeks", "2 weeks"), ("1-2 weeks", "2 weeks"), ("一两周", "两周"),
    ("It lasts a week and needs feeding twice a week.", "once a week"),
])
def test_other_frequencies_and_durations_do_not(answer: str, expected: str):
    assert G.grade(answer, expected) is False


def test_periods_are_values_and_dates_are_not_periods():
    week = G.Period("rate", G.Fraction(1, 7))
    assert [(p.kind, p.value) for p in G.periods("每个星期喂一次")] == [(week.kind, week.value)]
    assert G.period("once a week") == G.Period("rate", G.Fraction(1, 7), "once a week")
    assert G.period("十四天").value == 14 and G.period("半小时").value == G.Fraction(1, 48)
    # A year, a month's name, an ordinal, a date: none is a length of time.
    assert G.periods("2024年三月，第一天，12月12日") == []
    assert G.period("Paris") is None and G.period("once a week or twice a day") is None
    assert G.grade("The capital is Paris.", "Paris") is True  # other text: containment as before


def test_a_wrong_frequency_verdict_says_what_the_answer_said():
    wrong = G.verdict("Feed it twice a week.", "once a week")
    assert str(wrong) == "✗ wrong: expected once a week; the answer says twice a week"
    assert str(G.verdict("一周喂一次。", "once a week")) == "✓ correct (expected once a week)"


def test_the_name_grader_rejects_the_model_claiming_the_users_name():
    assert G.grade("你叫小明。", "小明", grader="name") is True
    assert G.grade("我是小明", "小明", grader="name") is False
    assert G.grade("我是小明的助手，你叫小明。", "小明", grader="name") is True  # a possessive
    claim = G.verdict("I'm Xiaoming, nice to meet you!", "Xiaoming", grader="name")
    assert str(claim) == "✗ wrong: expected Xiaoming; the answer says i'm xiaoming"
    assert G.grade("Your name is Xiaoming.", "Xiaoming", grader="name") is True
    assert G.grade("我不知道。", "小明", grader="name") is False
    assert G.grade("anything", None, grader="name") is None


def test_the_name_question_carries_its_grader():
    intro, question = ds.prompts.name_recall("zh")
    assert "小明" in intro and question.prompt == "我叫什么名字？" and question.grader == "name"
    reply = ds.Reply(answer="我是小明").grade(question)
    assert reply.verdict is not None and reply.verdict.correct is False
    assert ds.Reply(answer="你叫小明").grade(question).verdict.correct is True
    intro, question = ds.prompts.name_recall("en")
    assert question.expected == "Xiaoming" and "Xiaoming" in intro
    with pytest.raises(ConfigurationError):
        ds.prompts.name_recall("fr")
