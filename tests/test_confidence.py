"""Confidence (DeepConf): the measures by hand, the votes, the shaded view, and the early stop
on the scripted backend and on the real embedded model."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

import dskit as ds
from dskit.backends.base import LOW_CONFIDENCE, Delta, Done, Stats, Token
from dskit.client import Client
from dskit.confidence_view import confidence_html, edges
from dskit.errors import ConfigurationError
from dskit.evals.confidence import GroupWatch, groups, measure, token_confidence
from dskit.evals.voting import votes
from dskit.reply import Reply
from tests.fakes import ScriptedBackend

SHELF = "一个书架有3层，每层放12本书。一共有多少本书？"


def tok(text: str, *top: float, phase: str = "answer") -> Token:
    """A token whose alternatives have these log-probabilities (the first is the token)."""
    alts = tuple((text if i == 0 else f"alt{i}", lp) for i, lp in enumerate(top))
    return Token(text, top[0], alts, phase=phase)


# -- the measures, by hand ------------------------------------------------------------------

def test_token_confidence_is_minus_the_mean_top_logprob() -> None:
    assert token_confidence(tok("书", -0.5, -1.5)) == pytest.approx(1.0)
    assert token_confidence(tok("本", -0.1, -5.0, -6.9)) == pytest.approx(4.0)
    # k equally likely alternatives: the floor, log k
    assert token_confidence(tok("是", *[math.log(1 / 4)] * 4)) == pytest.approx(math.log(4))
    with pytest.raises(ConfigurationError, match="top_logprobs"):
        token_confidence(Token("x", -0.1))


def test_groups_slide_one_token_at_a_time() -> None:
    assert groups([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]
    assert groups([1, 2, 3], 5) == [2.0]  # shorter than the window: one group
    assert groups([], 3) == []
    with pytest.raises(ConfigurationError, match="window"):
        groups([1.0], 0)


def test_measure_gives_deepconfs_statistics() -> None:
    # token confidences 4, 4, 1, 1, 4, 4, 4, 4, 4, 4 (window 2, tail 3)
    high, low = (-0.1, -5.0, -6.9), (-0.5, -1.5)
    tokens = [tok("a", *high), tok("b", *high, phase="thinking"), tok("c", *low),
              tok("d", *low), *[tok("e", *high) for _ in range(6)]]
    c = measure(tokens, window=2, tail=3)
    assert c is not None
    assert c.tokens == 10 and c.window == 2 and c.k == 3
    assert c.mean == pytest.approx((8 * 4 + 2 * 1) / 10)
    assert c.lowest == pytest.approx(1.0) and c.lowest_at == 2
    # 9 groups: 4, 2.5, 1, 2.5, 4, 4, 4, 4, 4; the lowest 10 % is ceil(0.9) = 1 group
    assert c.bottom == pytest.approx(1.0)
    assert c.tail == pytest.approx(4.0) and c.tail_tokens == 3
    assert measure(tokens, phase="thinking").tokens == 1  # type: ignore[union-attr]
    assert measure([]) is None
    assert set(c.as_row()) >= {"conf_mean", "conf_lowest", "conf_bottom", "conf_tail"}


def test_group_watch_fires_only_on_a_whole_window_below() -> None:
    watch = GroupWatch(2)
    assert watch.feed(tok("a", -0.5, -1.5)) is None  # the window is not full yet
    assert not watch.low(2.0)
    assert watch.feed(tok("b", -0.1, -5.0, -6.9)) == pytest.approx(2.5)
    assert not watch.low(2.0) and watch.low(3.0)


# -- votes ----------------------------------------------------------------------------------

def rows(*samples: tuple[str, str, bool, float], model: str = "m", reason: str = "stop"
         ) -> list[dict[str, Any]]:
    return [{"model": model, "think_budget": None, "think_min": None, "prompt_id": pid,
             "prompt": pid, "sample": i, "kind": "math", "final": final, "correct": right,
             "conf_lowest": conf, "error": None, "done_reason": reason, "thinking_tokens": 10,
             "answer_tokens": 2}
            for i, (pid, final, right, conf) in enumerate(samples)]


def test_weighted_and_filtered_votes_outvote_a_confident_minority() -> None:
    # 书架: three unsure wrong answers against two sure right ones.
    df = pd.DataFrame(rows(("书架", "35", False, 2.0), ("书架", "35", False, 2.1),
                           ("书架", "35", False, 1.9), ("书架", "36", True, 9.0),
                           ("书架", "36", True, 8.5),
                           ("苹果", "8", True, 5.0), ("苹果", "9", False, 1.0)))
    table = votes(df)
    row = table.iloc[0]
    assert row["prompts"] == 2 and row["voters"] == 7 and row["tokens"] == 7 * 12
    assert row["majority"] == 0.5  # 书架 lost the plain vote, 苹果 won (a tie: first given)
    assert row["weighted"] == 1.0 and row["top10%"] == 1.0 and row["top90%"] == 1.0
    assert 0 <= row["majority_low"] <= 0.5 <= row["majority_high"] <= 1
    paired = ds.compare.paired(df, ("m", "majority"), ("m", "weighted"))
    assert paired.difference == pytest.approx(-0.5)
    assert "shared prompts: accuracy 0.50 vs 1.00" in str(paired)
    with pytest.raises(ConfigurationError, match="not a vote"):
        ds.compare.paired(df, ("m", "majority"), ("m", "loudest"))


def test_traces_stopped_early_do_not_vote_and_rows_need_confidence() -> None:
    df = pd.DataFrame(rows(("问", "7", True, 6.0)) +
                      rows(("问", "8", False, 1.0), ("问", "8", False, 1.0),
                           reason=LOW_CONFIDENCE))
    row = votes(df).iloc[0]
    assert row["majority"] == 1.0 and row["stopped"] == 2 and row["voters"] == 1
    assert ds.compare.summary(df.assign(answer="", total_s=1.0, tokens_per_s=1.0, ttft_s=0.1,
                                        load_s=0.0))["low_conf"].iloc[0] == 2
    with pytest.raises(ConfigurationError, match="logprobs=True"):
        votes(df.drop(columns=["conf_lowest"]))


# -- the view -------------------------------------------------------------------------------

def test_the_view_is_inert_shaded_and_marks_the_weakest_stretch() -> None:
    reply = Reply(thinking="<script>", answer="36",
                  tokens=[tok("<script>alert(1)</script>", -0.1, -5.0, phase="thinking"),
                          tok("想", -0.7, -0.7, phase="thinking"),
                          tok("36", -0.01, -7.0)],
                  options={"top_logprobs": 2})
    page = confidence_html(reply, window=1)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count('class="dskit-conf-low"') == 1
    assert "tokens 2–2" in page and "Reasoning · 2 tokens" in page and "Answer · 1 tokens" in page
    assert "p 0.50" in page  # the hover of 想
    assert "rgba(240,110,40,0.55)" in page  # 想 is in the least confident band
    assert edges(2)[0] == pytest.approx(math.log(2) + 1)
    assert "logprobs=True" in confidence_html(Reply(answer="x"))


# -- the early stop ---------------------------------------------------------------------------

def sample(conf: str) -> list[Any]:
    """A scripted reply whose tokens are all sure ("high") or all torn ("low")."""
    lps = (-0.1, -5.0, -6.9) if conf == "high" else (-0.7, -0.7, -0.7)
    pieces = ["一共", "有", "36", "本", "书"]
    return [*(Delta("answer", p, (tok(p, *lps),)) for p in pieces),
            Done(Stats(eval_tokens=5, eval_time=0.1), "stop")]


def test_early_stop_uses_the_warm_up_threshold_on_the_later_samples() -> None:
    backend = ScriptedBackend(sample("high"), sample("high"), sample("low"), sample("high"))
    prompts = pd.DataFrame({"prompt": [SHELF], "expected": ["36"], "kind": ["math"]})
    df = ds.compare("fake:1b", prompts, samples=4, client=Client(backend), progress=False,
                    early_stop="confidence", warmup=2, confidence_window=2)
    assert [r.logprobs for r in backend.requests] == [5, 5, 5, 5]
    assert list(df["done_reason"]) == ["stop", "stop", LOW_CONFIDENCE, "stop"]
    assert backend.closed == [False, False, True, False]  # the stopped one was closed early
    assert df["conf_lowest"].notna().all()
    assert df.attrs["settings"]["early_stop"] == "confidence"
    assert ds.compare.summary(df)["low_conf"].iloc[0] == 1
    assert votes(df).iloc[0]["voters"] == 3


@pytest.mark.parametrize(("given", "fix"), [
    ({"early_stop": "entropy"}, "confidence"),
    ({"early_stop": "confidence", "samples": 1}, "samples=8"),
    ({"early_stop": "confidence", "samples": 4, "warmup": 4}, "warmup"),
    ({"early_stop": "confidence", "samples": 4, "keep": 0}, "keep"),
    ({"early_stop": "confidence", "samples": 4, "confidence_window": 0}, "window"),
])
def test_early_stop_settings_say_the_fix(given: dict[str, Any], fix: str) -> None:
    with pytest.raises(ConfigurationError, match=fix):
        ds.compare("fake:1b", ["问"], client=Client(ScriptedBackend(["x"])), progress=False,
                   **given)


@pytest.mark.slow
def test_early_stop_on_the_real_model_stops_some_and_spends_fewer_tokens(
        embedded_client: Client) -> None:
    prompts = ds.prompts.load("maths").head(1)
    df = ds.compare(embedded_client.default_model, prompts, samples=4, client=embedded_client,
                    max_tokens=160, seed=11, progress=False, early_stop="confidence", warmup=2,
                    keep=0.9, confidence_window=8)
    assert df["error"].isna().all() and df["conf_lowest"].notna().all()
    later = df[df["sample"] >= 2]
    assert set(later["done_reason"]) <= {"stop", "length", "repetition", LOW_CONFIDENCE}
    stopped = df[df["done_reason"] == LOW_CONFIDENCE]
    for _, row in stopped.iterrows():  # a stopped trace is shorter than the token limit
        assert row["thinking_tokens"] + row["answer_tokens"] < 160
