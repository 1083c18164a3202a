"""Prompt sets and graders."""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd
import pytest

from dskit import prompts as P
from dskit.errors import ConfigurationError


@pytest.mark.parametrize("answer", [
    "The ball is on the bed.",
    "It's still on the bed, because the cup was upside down.",
    "The ball fell onto the bed when the cup was turned over, so it stays there while the cup "
    "is moved to another room.",
    "The ball is on the bed. The cup is in the other room.",
    "On the bed.",
])
def test_cup_grader_accepts_english(answer: str):
    assert P.grade_cup(answer) is True


@pytest.mark.parametrize("answer", [
    "球在床上。",
    "在床上",
    "球留在床上了，因为杯子是倒扣的。",
    "它掉在床上，杯子被拿走后球还在原地（床上）。",
])
def test_cup_grader_accepts_chinese(answer: str):
    assert P.grade_cup(answer) is True


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
    assert P.grade_cup(answer) is False


def test_cup_puzzle_in_both_languages():
    zh, en = P.cup_puzzle("zh"), P.cup_puzzle(lang="en")
    assert "杯" in zh.prompt and "床" in zh.prompt and zh.expected == "在床上"
    assert "cup" in en.prompt and "bed" in en.prompt and en.expected == "on the bed"
    assert zh.kind == en.kind == "text" and zh.id == "cup-zh" and en.id == "cup-en"
    assert zh.grade("球在床上") is True and en.grade("Inside the cup, in the other room") is False
    with pytest.raises(ConfigurationError):
        P.cup_puzzle("fr")


def test_boxed_nested_is_the_final_answer():
    assert P.math_answer(r"so \boxed{1} ... finally \boxed{\frac{5}{6}}") == r"\frac{5}{6}"
    assert P.grade_math(r"The answer is \boxed{\dfrac{5}{6}}.", "5/6") is True
    assert P.grade_math(r"\boxed{0.8333333}", "5/6") is True
    assert P.grade_math(r"\boxed{\sqrt{4}}", "2") is True  # symbolic, through math-verify
    assert P.grade_math(r"\boxed{26 \text{ pencils}}", "26") is True
    assert P.grade_math(r"\boxed{x = 5}", "5") is True
    assert P.grade_math(r"\boxed{27}", "26") is False


def test_last_number_when_nothing_is_boxed():
    assert P.last_number("1/2 + 1/3 = 5/6") == "5/6"
    assert P.last_number("5-3=2") == "2"
    assert P.last_number("It is −4 degrees") == "-4"
    assert P.last_number("The total is 1,234.") == "1,234"
    assert P.last_number("no digits") is None
    assert P.grade_math("So he has 20 marbles.", "20") is True
    assert P.grade_math("The sale price is $30.00", "30") is True
    assert P.grade_math("60% of the class", "60") is True
    assert P.grade_math("3 + 4 = 7, so 8", "7") is False
    assert P.grade_math("", "7") is False
    assert P.grade_math("anything", None) is None


def test_a_box_in_the_reasoning_counts_only_without_an_answer():
    assert P.grade_math("", "7", thinking=r"... \boxed{7}") is True
    assert P.grade_math("", "7", thinking="3 + 4 = 7") is False


def test_chinese_numerals():
    numerals = ("十", "十二", "二十六", "八百零一", "两千", "一万二千")
    assert [P.chinese_number(s) for s in numerals] == [10, 12, 26, 801, 2000, 12000]
    assert P.chinese_number("苹果") is None
    assert P.grade_math("兔有四只。", "4") is True
    assert P.grade_math("答案是八百零一", "801") is True
    assert P.grade_math("还剩 26 支铅笔。", "26") is True


def test_grade_dispatch():
    assert P.grade("anything", None) is None
    assert P.grade("The sky is Blue!", "blue") is True
    assert P.grade("red", "blue") is False
    assert P.grade("球在床上", "在床上", grader="cup") is True
    assert P.grade("yes", "YES", grader=lambda a, e: a.upper() == e) is True
    with pytest.raises(ConfigurationError, match="unknown grader"):
        P.grade("x", "y", grader="nope")


def test_maths_set_ships_as_package_data():
    df = P.maths()
    assert 16 <= len(df) <= 20 and list(df.columns) == P.COLUMNS
    assert (df["kind"] == "math").all() and df["prompt_id"].is_unique
    assert all(P.parse_number(e) is not None for e in df["expected"])
    assert df["prompt"].str.contains(r"[\u4e00-\u9fff]").sum() >= 5  # Chinese problems too
    raw = json.loads(resources.files("dskit").joinpath("data/maths.json").read_text("utf-8"))
    assert "original" in raw["source"].lower() and "MIT" in raw["licence"]
    assert "gsm8k" not in raw["source"].lower().replace("not taken from gsm8k", "")


def test_load_builtin_names():
    assert P.load("cup")["prompt_id"].tolist() == ["cup-zh"]
    assert P.load("cup-en")["expected"].tolist() == ["on the bed"]
    assert len(P.load("maths")) == len(P.maths())
    with pytest.raises(ConfigurationError, match="unknown prompt set"):
        P.load("mathz")


def test_load_list_of_strings_has_stable_ids():
    a = P.load(["Why is the sky blue?", "Name a colour."])
    b = P.load(["Name a colour.", "Why is the sky blue?"])
    assert list(a.columns) == P.COLUMNS
    assert a["kind"].tolist() == ["text", "text"] and a["expected"].isna().all()
    assert set(a["prompt_id"]) == set(b["prompt_id"])
    with pytest.raises(ConfigurationError, match="empty"):
        P.load(["  "])
    with pytest.raises(ConfigurationError, match="duplicate"):
        P.load(["a", "a"])


def test_load_dataframe_infers_kind():
    df = P.load(pd.DataFrame({"prompt": ["2+2?", "Sky colour?", "Say hi"],
                              "expected": [4, "blue", None]}))
    assert df["kind"].tolist() == ["math", "text", "text"]
    assert df["expected"].tolist()[:2] == ["4", "blue"] and df["expected"].tolist()[2] is None
    given = P.load(pd.DataFrame({"prompt": ["x"], "expected": ["7"], "kind": ["text"],
                                 "prompt_id": ["mine"]}))
    assert given.loc[0, "kind"] == "text" and given.loc[0, "prompt_id"] == "mine"
    with pytest.raises(ConfigurationError, match="`prompt` column"):
        P.load(pd.DataFrame({"question": ["x"]}))
    with pytest.raises(ConfigurationError):
        P.load(42)
