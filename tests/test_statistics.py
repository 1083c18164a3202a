"""Intervals, majority votes and paired tests, on outcomes whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dskit.evals import statistics as st


def groups(*rows: list[int]) -> list[np.ndarray]:
    return [np.array(r, dtype=float) for r in rows]


def test_pass1_is_mean_of_prompt_means():
    assert st.pass1(groups([1, 0], [1, 1, 1, 1], [0])) == pytest.approx((0.5 + 1 + 0) / 3)
    assert math.isnan(st.pass1([]))


def test_wilson_matches_the_textbook_values():
    low, high = st.wilson(0, 5)
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.4345, abs=1e-3)
    low, high = st.wilson(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-3)


def test_interval_contains_the_estimate_and_narrows_with_more_prompts():
    rng = np.random.default_rng(1)
    few = groups(*[list(rng.integers(0, 2, 4)) for _ in range(5)])
    many = groups(*[list(rng.integers(0, 2, 4)) for _ in range(80)])
    for g in (few, many):
        low, high = st.pass1_interval(g)
        assert low <= st.pass1(g) <= high
    assert (np.subtract(*st.pass1_interval(many)[::-1])
            < np.subtract(*st.pass1_interval(few)[::-1]))


def test_interval_is_seeded():
    g = groups([1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0])
    assert st.pass1_interval(g) == st.pass1_interval(g)


def test_all_agreeing_answers_get_wilson_not_certainty():
    low, high = st.pass1_interval(groups([0, 0], [0, 0], [0, 0], [0, 0], [0, 0]))
    assert low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.4345, abs=1e-3)
    low, high = st.pass1_interval(groups([1], [1], [1]))
    assert high == pytest.approx(1) and low < 0.5


def test_bootstrap_covers_the_true_rate_about_95_percent_of_the_time():
    """Simulated comparisons with a known pass rate: the interval should contain it about
    95% of the time (a nested design: per-prompt rates vary around 0.6)."""
    rng = np.random.default_rng(7)
    hits = 0
    trials = 200
    for t in range(trials):
        rates = rng.beta(3, 2, size=30)  # the population's mean rate is 0.6
        g = [rng.binomial(1, r, size=4).astype(float) for r in rates]
        low, high = st.pass1_interval(g, n_boot=400, seed=t)
        hits += low <= 0.6 <= high
    assert 0.88 <= hits / trials <= 0.99


def test_majority_vote_breaks_ties_by_first_answer():
    assert st.majority(["7", "8", "7", None]) == "7"
    assert st.majority(["8", "7"]) == "8"
    assert st.majority([None, None]) is None


def test_sign_flip_is_exact_for_few_prompts():
    assert st.sign_flip_p(np.array([1.0, 1.0, 1.0])) == pytest.approx(2 / 8)
    assert st.sign_flip_p(np.array([1.0] * 6)) == pytest.approx(2 / 64)
    assert st.sign_flip_p(np.array([0.0, 0.0])) == 1.0
    many = st.sign_flip_p(np.array([1.0] * 30))
    assert many < 0.001


def test_paired_says_noise_with_few_prompts_even_when_all_favour_one_side():
    result = st.paired("big", "small", groups([1], [1], [1]), groups([0], [0], [0]))
    assert result.difference == 1 and not result.distinguishable
    assert "not distinguishable from noise at this sample size" in str(result)


def test_paired_finds_a_real_difference():
    rng = np.random.default_rng(3)
    a = [rng.binomial(1, 0.9, 4).astype(float) for _ in range(40)]
    b = [rng.binomial(1, 0.3, 4).astype(float) for _ in range(40)]
    result = st.paired("big", "small", a, b)
    assert result.distinguishable and result.low > 0 and result.p_value < 0.05
    assert str(result).endswith("distinguishable from noise at this sample size.")
    assert "40 shared prompts" in str(result)


def test_paired_with_no_shared_prompt_says_so():
    result = st.paired("a", "b", [], [])
    assert result.prompts == 0 and not result.distinguishable
    assert "share no graded prompt" in result.sentence()


def test_printed_findings_wrap_at_words_and_keep_every_word():
    """JupyterLab breaks a long output line anywhere ("[0.0" / "0–1.00]"): dskit wraps first."""
    from dskit.evals.prose import findings, prose

    finding = ("qwen2.5-coder:0.5b: pass@1 0.66 (95% interval 0.50–0.80), cons@4 0.80 over 80 "
               "answers; 15.0 s per correct answer, and a few more words to pass the width.")
    chinese = "小明有五个苹果，" * 20  # no spaces: left whole, the page wraps Chinese anywhere
    text = prose(f"{finding}\n\n{chinese}")
    lines = text.split("\n")
    assert all(len(line) <= 100 for line in lines[:-1]) and lines[-1] == chinese
    assert lines[1].startswith("  ") and "" in lines
    assert " ".join(text.split()) == " ".join(f"{finding} {chinese}".split())
    assert "0.50–0.80" in text
    pair = st.paired("大模型", "小模型", [np.array([1.0, 0.0])] * 12,
                             [np.array([0.0, 0.0])] * 12)
    assert str(pair) == prose(pair.sentence()) and "\n  " in str(pair)
    # a report's bullets and `dskit compare`'s lines are the findings, not the wrapped lines
    assert findings(text) == [finding, chinese]
