"""pass@k and maj@k from n samples per prompt: the estimators against brute force over every
subset, the curves per model with intervals, the summary's pass@k and the plot."""

from __future__ import annotations

import itertools
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

import dskit as ds
from dskit.evals import plots
from dskit.evals import statistics as st
from dskit.evals.summary import for_display, pass_at_k, summary

matplotlib.use("Agg")


def brute_pass(n: int, c: int, k: int) -> float:
    """The share of k-subsets of n samples (the first c right) holding a right one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_is_the_share_of_k_subsets_with_a_right_sample(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert st.pass_at_k(n, c, k) == pytest.approx(brute_pass(n, c, k), abs=1e-12)
    assert st.pass_at_k(n, 1, 1) == pytest.approx(1 / n)  # pass@1 is the share right


def test_pass_at_k_for_many_samples_stays_finite_and_refuses_k_out_of_range() -> None:
    # C(1000, 500) overflows a float: the product form does not
    exact = 1 - math.comb(997, 500) / math.comb(1000, 500)  # Python's integers, exact
    assert st.pass_at_k(1000, 3, 500) == pytest.approx(exact)
    for k in (0, 5):
        with pytest.raises(ValueError, match="between 1 and the 4 samples"):
            st.pass_at_k(4, 1, k)


def brute_maj(finals: list[str | None], right: list[bool], k: int) -> float:
    verdict = {f: r for f, r in zip(finals, right, strict=True) if f is not None}
    subsets = list(itertools.combinations(range(len(finals)), k))
    return sum(verdict.get(st.majority([finals[i] for i in s]), False)
               for s in subsets) / len(subsets)


@pytest.mark.parametrize(("finals", "right"), [
    (["7", "7", "8", "7", None, "9"], [True, True, False, True, False, False]),
    (["八", "八", "七", "六", "七", "八"], [False, False, True, False, True, False]),
    ([None, None, "3"], [False, False, True]),
    (["1", "2", "1", "2"], [True, False, True, False]),  # ties: the answer given first
])
def test_maj_at_k_is_the_majority_over_every_k_subset(finals: list[str | None],
                                                      right: list[bool]) -> None:
    for k in range(1, len(finals) + 1):
        assert st.maj_at_k(finals, right, k) == pytest.approx(brute_maj(finals, right, k))
    # maj@n is cons@k: the majority of all n samples
    assert st.maj_at_k(finals, right, len(finals)) == float(
        dict(zip(finals, right, strict=True)).get(st.majority(finals), False))


def test_maj_at_k_over_many_subsets_is_drawn_and_close_to_exact() -> None:
    rng = np.random.default_rng(3)
    finals = [str(v) for v in rng.choice(["12", "12", "12", "15", "9"], 20)]
    right = [f == "12" for f in finals]
    assert math.comb(20, 10) > st.SUBSETS  # drawn, not enumerated
    drawn = st.maj_at_k(finals, right, 10)
    assert drawn == st.maj_at_k(finals, right, 10)  # seeded
    exact = brute_maj(finals, right, 10)
    assert abs(drawn - exact) < 0.03


def rows() -> pd.DataFrame:
    """Two models, three maths prompts with four samples each, and one text prompt."""
    out = []

    def add(model: str, pid: str, finals: list[str | None], expected: str) -> None:
        for i, final in enumerate(finals):
            out.append({"model": model, "prompt_id": pid, "sample": i, "kind": "math",
                        "final": final, "expected": expected, "correct": final == expected,
                        "error": None, "done_reason": "stop", "total_s": 1.0,
                        "tokens_per_s": 10.0, "load_s": 0.0})

    add("大", "苹果", ["7", "7", "7", "6"], "7")
    add("大", "鸡兔", ["23", "12", "23", "23"], "23")
    add("大", "cups", ["2", "3", "3", "3"], "2")  # right once, outvoted
    add("小", "苹果", ["6", "7", None, "6"], "7")
    add("小", "鸡兔", ["12", "12", "12", "12"], "23")
    add("小", "cups", ["2", "2", "3", "2"], "2")
    return pd.DataFrame(out)


def test_curves_per_model_with_intervals_and_the_summary_agrees() -> None:
    df = rows()
    curves = ds.compare.pass_at_k(df)
    assert list(curves.columns) == ["model", "think_budget", "think_min", "k", "prompts", "pass@k",
                                    "pass@k_low", "pass@k_high", "maj@k", "maj@k_low",
                                    "maj@k_high"]
    big = curves[curves.model == "大"].set_index("k")
    assert list(big.index) == [1, 2, 3, 4] and set(big.prompts) == {3}
    # every prompt had a right sample: pass@4 = 1; pass@1 is the mean share right per prompt
    assert big.loc[4, "pass@k"] == 1.0
    assert big.loc[1, "pass@k"] == pytest.approx((3 / 4 + 3 / 4 + 1 / 4) / 3)
    assert big["pass@k"].is_monotonic_increasing
    # maj@4 = cons@k: 苹果 and 鸡兔 right, cups outvoted by "3"
    assert big.loc[4, "maj@k"] == pytest.approx(2 / 3)
    for name in ("pass@k", "maj@k"):
        assert (big[f"{name}_low"] <= big[name] + 1e-12).all()
        assert (big[name] <= big[f"{name}_high"] + 1e-12).all()
    s = summary(df).set_index("model")
    assert s.loc["大", "pass@1"] == big.loc[1, "pass@k"]
    # pass@1's interval in the curve is the summary's own
    assert (s.loc["大", "pass@1_low"], s.loc["大", "pass@1_high"]) == \
        (big.loc[1, "pass@k_low"], big.loc[1, "pass@k_high"])
    assert s.loc["大", "cons@k"] == pytest.approx(big.loc[4, "maj@k"])
    assert s.loc["大", "pass@k"] == big.loc[4, "pass@k"] and s.loc["大", "k"] == 4
    small = curves[curves.model == "小"].set_index("k")
    # 鸡兔 never right: pass@k stays below 1 whatever k
    assert small.loc[4, "pass@k"] == pytest.approx(2 / 3)
    assert small.loc[4, "maj@k"] == pytest.approx(1 / 3)  # 苹果: 6 beats 7


def test_chosen_ks_leave_out_prompts_with_fewer_samples() -> None:
    df = rows()
    df = df[~((df.model == "大") & (df.prompt_id == "cups") & (df["sample"] >= 2))]
    curves = pass_at_k(df, [1, 3, 5]).set_index(["model", "k"])
    assert curves.loc[("大", 1), "prompts"] == 3 and curves.loc[("大", 3), "prompts"] == 2
    assert curves.loc[("大", 5), "prompts"] == 0 and math.isnan(curves.loc[("大", 5), "pass@k"])


def test_every_answer_alike_gets_wilson_not_certainty() -> None:
    df = rows().assign(correct=True)
    curves = pass_at_k(df).set_index(["model", "k"])
    low, high = curves.loc[("大", 3), ["pass@k_low", "pass@k_high"]]
    assert high == 1.0 and low == pytest.approx(st.wilson(3, 3)[0])  # 3 prompts, not certainty


def test_a_text_grader_has_no_majority_to_vote_on() -> None:
    df = rows().assign(final=None, kind="text")
    curves = pass_at_k(df)
    assert curves["maj@k"].isna().all() and curves["pass@k"].notna().all()


def test_one_sample_each_shows_no_pass_at_k_column() -> None:
    one = rows()
    one = one[one["sample"] == 0]
    assert "pass@k" not in for_display(summary(one)).columns
    assert "pass@k" in for_display(summary(rows())).columns


def test_the_plot_draws_both_curves_per_model_from_rows_or_curves() -> None:
    import matplotlib.pyplot as plt

    for given in (rows(), ds.compare.pass_at_k(rows())):
        ax = plots.pass_at_k(given)
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["大 pass@k", "大 maj@k", "小 pass@k", "小 maj@k"]
        assert ax.get_xlabel() == "k (samples per prompt)"
    plt.close("all")
