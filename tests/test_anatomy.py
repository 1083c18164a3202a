"""Trace anatomy on written traces, English and Chinese: candidates as the reasoning grows,
where the right one first appears and where it settles, found-then-lost, reflection markers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest

import dskit as ds
from dskit.errors import ConfigurationError
from dskit.evals import plots
from dskit.evals.anatomy import (
    REFLECTION_MARKERS,
    anatomy,
    estimate_tokens,
    reflections,
    token_index,
)
from dskit.evals.results import grader_name
from dskit.evals.statistics import median_interval
from dskit.evals.summary import ANATOMY_COLUMNS, TRACE_COLUMNS, for_display

matplotlib.use("Agg")


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


# --- hand labels ---------------------------------------------------------------------------

LABELLED = json.loads((Path(__file__).parent / "data" / "anatomy_traces.json").read_text(
    encoding="utf-8"))["traces"]


def labelled_token(trace: dict[str, Any]) -> int | None:
    """The labelled first-correct text, as a token index where it first ends."""
    snippet = trace["first_correct"]
    if snippet is None:
        return None
    return token_index(trace["thinking"], trace["thinking"].index(snippet) + len(snippet))


@pytest.mark.parametrize("trace", LABELLED, ids=[t["id"] for t in LABELLED])
def test_anatomy_agrees_with_hand_labels(trace: dict[str, Any]) -> None:
    """docs/graders.md reports this agreement: first-correct within ±16 tokens, reflections
    exact, found-then-lost as labelled."""
    result = anatomy(trace["thinking"], trace["answer"], trace["expected"], kind=trace["kind"],
                     grader=trace["grader"])
    want = labelled_token(trace)
    if want is None:
        assert result.first_correct is None
    else:
        assert result.first_correct is not None and abs(result.first_correct - want) <= 16
    assert result.reflections == trace["reflections"], [m for _, m in result.markers]
    assert result.found_then_lost == ("found then lost" in trace["note"])


def test_the_labelled_set_is_varied() -> None:
    assert len(LABELLED) >= 30
    chinese = [t for t in LABELLED if any("\u4e00" <= ch <= "\u9fff" for ch in t["thinking"])]
    assert 10 <= len(chinese) <= len(LABELLED) - 10
    assert sum(t["grader"] == "cup" for t in LABELLED) >= 8
    assert sum(t["first_correct"] is None for t in LABELLED) >= 5
    assert sum("found then lost" in t["note"] for t in LABELLED) >= 4


# --- reading candidates ----------------------------------------------------------------------

def test_a_box_early_does_not_hide_a_later_answer_and_words_are_not_numbers() -> None:
    thinking = "我先算一下。\\boxed{3} 不对，等等，应该是 3 + 4 = 7，所以答案是 7。"
    result = anatomy(thinking, "7", "7")
    assert [c for _, c in result.candidates] == ["3", "7"]  # not "1" from 一下
    assert result.first_correct is not None and result.found_then_lost is False


def test_numbers_only_mentioned_are_not_candidates() -> None:
    thinking = ("Okay, so a shop sells pens at 3 yuan each and he wants 14 pens. 10 pens cost "
                "30. So 30 + 12 = 42.")
    result = anatomy(thinking, "42", "42")
    assert [c for _, c in result.candidates] == ["42"]


def test_a_prompt_of_another_grader_is_read_at_the_ends_of_steps() -> None:
    result = anatomy("The capital? I think Lyon. No: Paris. Done.", "Paris", "Paris",
                     kind="text", grader="contains")
    assert result.candidates == [] and result.first_correct is not None
    assert result.correct is True and result.settled is None
    assert math.isnan(result.overthinking_share)


def test_reply_anatomy_takes_an_answer_or_a_prompt() -> None:
    reply = ds.Reply(thinking="球在杯子里。等等，杯子倒扣在床上，所以球在床上。", answer="在床上。",
                     stats=ds.Stats(thinking_tokens=40))
    result = reply.anatomy(ds.prompts.cup_puzzle("zh"))
    assert result.tokens == 40 and result.correct is True
    assert [c for _, c in result.candidates] == ["cup", "bed"]
    assert [m for _, m in result.markers] == ["等等"]
    maths = ds.Reply(thinking="5 - 2 = 3, so 3 + 4 = 7.", answer="7").anatomy(7)
    assert maths.correct is True and maths.first_correct is not None  # 7: graded by value


# --- per reply and per model -----------------------------------------------------------------

def _rows() -> pd.DataFrame:
    """Hand-made comparison rows: two models, English and Chinese, maths and the cup puzzle."""
    apples = "小明有 5 个苹果，吃了 2 个，剩 3 个。又买了 4 个，所以一共 7 个。等等，再检查一下。"
    wrong = "5 + 4 = 9. Wait, he ate 2, so 9 - 2 = 7. Hmm, no, so 9."
    cup = "球在杯子里。杯子倒扣在床上，所以球在床上。"
    rows = []
    for model, thinking, answer, correct in [
            ("big", apples, "7", True), ("big", apples, "7", True), ("big", wrong, "9", False),
            ("small", wrong, "9", False), ("small", "", "7", True), ("small", wrong, "9", False)]:
        rows.append({"model": model, "prompt_id": "apples-zh", "sample": len(rows),
                     "kind": "math", "expected": "7", "answer": answer, "thinking": thinking,
                     "correct": correct, "thinking_tokens": None, "error": None, "grader": None})
    rows.append({"model": "big", "prompt_id": "cup-zh", "sample": 0, "kind": "text",
                 "expected": "在床上", "answer": "在床上", "thinking": cup, "correct": True,
                 "thinking_tokens": 30, "error": None, "grader": "cup"})
    rows.append({"model": "big", "prompt_id": "x", "sample": 0, "kind": "math",
                 "expected": "1", "answer": "", "thinking": "", "correct": None,
                 "thinking_tokens": None, "error": "ServerError: down", "grader": None})
    return pd.DataFrame(rows)


def test_anatomy_traces_one_row_per_answered_reply() -> None:
    traces = ds.compare.anatomy_traces(_rows())
    assert list(traces.columns) == TRACE_COLUMNS and len(traces) == 7  # the error left out
    wrong = traces.iloc[2]
    assert wrong["candidates"] == "7 → 9" and wrong["found_then_lost"]
    assert wrong["reflections"] == 2  # Wait, Hmm
    cup = traces[traces["prompt_id"] == "cup-zh"].iloc[0]
    assert cup["thinking_tokens"] == 30 and cup["candidates"] == "cup → bed"
    assert traces.iloc[4]["thinking_tokens"] == 0 and pd.isna(traces.iloc[4]["first_correct"])


def test_anatomy_per_model() -> None:
    table = ds.compare.anatomy(_rows()).set_index("model")
    assert list(table.reset_index().columns) == ANATOMY_COLUMNS
    big, small = table.loc["big"], table.loc["small"]
    assert (big["n"], big["right"], big["wrong"]) == (4, 3, 1)
    assert (small["n"], small["right"], small["wrong"]) == (3, 1, 2)
    assert big["found_then_lost"] == 1 and small["found_then_lost"] == 2
    assert small["thinking_tokens_right"] == 0  # an answer without reasoning thinks 0 tokens
    # fewer than 6 answers give no distribution-free 95% interval for a median
    assert pd.isna(big["thinking_tokens_right_low"])
    assert small["reflections_per_1k_wrong"] > 0 and pd.isna(small["reflections_per_1k_right"])
    assert big["changes"] == pytest.approx((0 + 0 + 1 + 1) / 4)
    shown = for_display(ds.compare.anatomy(_rows()))
    assert "think_budget" not in shown.columns  # not a sweep


def test_anatomy_of_a_budget_sweep_has_a_row_per_budget() -> None:
    rows = pd.concat([_rows().assign(think_budget=64), _rows().assign(think_budget=None)])
    table = ds.compare.anatomy(rows)
    assert len(table) == 4 and table["think_budget"].isna().sum() == 2
    assert "think_budget" in for_display(table).columns


def test_median_interval_is_distribution_free() -> None:
    assert all(math.isnan(v) for v in median_interval([1, 2, 3, 4, 5]))
    assert median_interval(range(6)) == (0.0, 5.0)
    assert median_interval(range(10)) == (1.0, 8.0)  # ranks 2 and 9 of 10, 97.9% coverage
    assert median_interval(range(100)) == (39.0, 60.0)  # ranks 40 and 61 of 100
    low, high = median_interval(range(5000))
    assert low < 2499.5 < high and high - low < 200  # the normal approximation of the ranks
    assert median_interval([float("nan")] * 3 + list(range(6))) == (0.0, 5.0)
    assert all(math.isnan(v) for v in median_interval([]))


def test_empty_rows_give_empty_tables() -> None:
    empty = _rows().iloc[:0]
    assert ds.compare.anatomy(empty).empty and ds.compare.anatomy_traces(empty).empty
    assert list(ds.compare.anatomy(empty).columns) == ANATOMY_COLUMNS


def test_rows_read_back_from_a_results_file(scripted: Any, tmp_path: Path) -> None:
    """A comparison records each prompt's grader, so its file is measured as it was graded;
    a file written before that column falls back on the built-in prompts by id."""
    client = scripted(
        ["<think>小明有 5 个苹果，吃了 2 个，剩 3 个。又买了 4 个，所以一共 7 个。</think>7个"],
        ["<think>The ball is in the cup. Wait, the cup is upside down on the bed, so the ball "
         "is on the bed.</think>On the bed."])
    out = tmp_path / "rows.csv"
    df = ds.compare("fake:1b", [ds.prompts.EXAMPLES[2], ds.prompts.cup_puzzle("en")],
                    client=client, progress=False, out=out)
    assert df["grader"].tolist() == [None, "cup"]
    again = pd.read_csv(out)
    assert ds.compare.anatomy_traces(again)["candidates"].tolist() == ["7", "cup → bed"]
    assert ds.compare.anatomy_traces(again).equals(ds.compare.anatomy_traces(df))
    older = again.drop(columns=["grader"])
    assert ds.compare.anatomy_traces(older)["candidates"].tolist() == ["7", "cup → bed"]


def test_a_grader_of_your_own_is_asked_for_again() -> None:
    def said_paris(answer: str, expected: Any) -> bool:
        return "paris" in answer.lower()

    rows = pd.DataFrame([{"model": "m", "prompt_id": "capital", "sample": 0, "kind": "text",
                          "expected": "Paris", "answer": "Paris", "correct": True,
                          "thinking": "Lyon? No. Paris.", "thinking_tokens": None,
                          "error": None, "grader": grader_name(said_paris)}])
    with pytest.raises(ConfigurationError, match=r"graders=.*capital"):
        ds.compare.anatomy(rows)
    table = ds.compare.anatomy_traces(rows, graders={"capital": said_paris})
    assert table["first_correct"].notna().all()


# --- plots -------------------------------------------------------------------------------------

def test_trace_timeline_of_a_reply_and_of_a_row() -> None:
    import matplotlib.pyplot as plt

    reply = ds.Reply(thinking="5 - 2 = 3. So 3 is left. Wait, he buys 4: so 3 + 4 = 7. 验证：对。",
                     answer="\\boxed{7}", stats=ds.Stats(thinking_tokens=60))
    ax = plots.trace_timeline(reply, ds.prompts.EXAMPLES[2])
    title = ax.get_title()
    assert title.startswith("✓ right, expected 7") and "changes 1" in title
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["3", "7"]
    assert "right answer first appears" in " ".join(t.get_text() for t in ax.get_legend().texts)
    assert ax.get_xlim()[1] >= 60
    row = _rows().iloc[6]  # the Chinese cup puzzle: the title names the place in English
    assert plots.trace_timeline(row).get_title().startswith("✓ right, expected bed")
    plt.close("all")


def test_plots_of_nothing_are_small_and_say_so() -> None:
    import matplotlib.pyplot as plt

    ax = plots.trace_timeline(ds.Reply(answer="7"), "7")
    assert "no reasoning" in ax.texts[0].get_text()
    assert tuple(ax.figure.get_size_inches()) == (4, 1)
    ax = plots.thinking_length(_rows().iloc[:0])
    assert "no graded traces" in ax.texts[0].get_text()
    plt.close("all")


def test_thinking_length_right_vs_wrong_per_model() -> None:
    import matplotlib.pyplot as plt

    ax = plots.thinking_length(_rows())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["big", "small"]
    points = [line for line in ax.lines if line.get_marker() == "o" and len(line.get_xdata())]
    assert sum(len(line.get_xdata()) for line in points) == 7
    plt.close("all")


@pytest.mark.slow
def test_anatomy_of_a_real_comparison(embedded_client: Any) -> None:
    """The smallest embedded stand-in reasons (think=True) on two maths prompts; the anatomy of
    its traces is measured with their grader and the reply's own token counts."""
    prompts = pd.DataFrame({"prompt": ["What is 2+3?", "小明有5个苹果，吃了2个，还剩几个？"],
                            "expected": ["5", "3"]})  # short: the prompt is read on a CPU too
    df = ds.compare("smollm2:135m", prompts, client=embedded_client, think=True, max_tokens=48,
                    seed=0, progress=False)
    assert df["error"].isna().all() and (df["thinking"].str.len() > 0).all()
    traces = ds.compare.anatomy_traces(df)
    assert len(traces) == 2
    assert traces["thinking_tokens"].tolist() == df["thinking_tokens"].astype(int).tolist()
    table = ds.compare.anatomy(df)
    assert table["n"].tolist() == [2] and table["right"].iloc[0] + table["wrong"].iloc[0] == 2
    assert (traces["settled"].isna() | (traces["settled"] <= traces["thinking_tokens"])).all()
