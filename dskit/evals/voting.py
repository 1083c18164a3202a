"""Votes over a prompt's samples weighed by confidence (DeepConf offline), beside the plain
majority: `votes()` per model with intervals, `vote_outcomes()` per prompt for `paired`.

For each prompt, the samples' final answers vote:

- `majority`: one sample, one vote (the summary's cons@k);
- `weighted`: each answer's votes are the sum of its traces' lowest group confidence;
- `top{η}%`: only the η % most confident traces (by lowest group confidence, at least one)
  vote, weighted as above; DeepConf-low keeps 10 %, DeepConf-high 90 %.

Traces an early stop ended (`done_reason == "low-confidence"`) never vote, as in DeepConf;
replies with an error or without a graded answer are left out. Fu et al., "Deep Think with
Confidence", arXiv:2508.15260 (2025).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import LOW_CONFIDENCE
from ..errors import ConfigurationError
from . import statistics
from .prose import prose
from .results import blank

if TYPE_CHECKING:
    import pandas as pd

#: The shares of the most confident traces the filtered votes keep (DeepConf-high, -low).
KEEP = (0.9, 0.1)


def vote_names(keep: Sequence[float] = KEEP) -> list[str]:
    """The votes `votes()` reports, in order: majority, weighted, then one per share kept."""
    return ["majority", "weighted", *(_filtered_name(share) for share in keep)]


def _filtered_name(share: float) -> str:
    return f"top{round(share * 100):g}%"


def _voted(finals: Sequence[str], weights: Sequence[float]) -> str:
    """The answer with the most weight (ties: the one given first)."""
    total: dict[str, float] = {}
    for final, weight in zip(finals, weights, strict=True):
        total[final] = total.get(final, 0.0) + weight
    best = max(total.values())
    return next(f for f in finals if total[f] == best)


def _prompt_votes(rows: pd.DataFrame, keep: Sequence[float]) -> dict[str, bool] | None:
    """Whether each vote is right for one prompt's rows; None when no trace can vote."""
    ok = rows[rows["error"].isna() & rows["correct"].notna()
              & (rows["done_reason"] != LOW_CONFIDENCE)]
    ok = ok[[not blank(f) for f in ok["final"]]]
    if ok.empty:
        return None
    if ok["conf_lowest"].isna().any():
        raise ConfigurationError("confidence votes read each row's conf_lowest: run compare "
                                 "with logprobs=True (or early_stop=\"confidence\")")
    finals = [str(f) for f in ok["final"]]
    right = {f: bool(c) for f, c in zip(finals, ok["correct"], strict=True)}
    conf = [float(c) for c in ok["conf_lowest"]]
    out = {"majority": right[_voted(finals, [1.0] * len(finals))],
           "weighted": right[_voted(finals, conf)]}
    order = sorted(range(len(finals)), key=lambda i: -conf[i])
    for share in keep:
        kept = order[:max(1, math.ceil(share * len(finals)))]
        out[_filtered_name(share)] = right[_voted([finals[i] for i in kept],
                                                  [conf[i] for i in kept])]
    return out


def vote_outcomes(df: pd.DataFrame, model: str, keep: Sequence[float] = KEEP,
                  think_budget: int | None = None) -> dict[str, dict[str, bool]]:
    """Per prompt of `model` (at `think_budget`), whether each vote is right."""
    rows = df[df["model"] == model]
    if "think_budget" in rows:
        rows = rows[rows["think_budget"].isna()] if think_budget is None else \
            rows[rows["think_budget"] == think_budget]
    out = {}
    for pid, g in rows.groupby("prompt_id", sort=False):
        voted = _prompt_votes(g, keep)
        if voted is not None:
            out[str(pid)] = voted
    return out


def votes(df: pd.DataFrame, *, keep: Sequence[float] = KEEP, seed: int = 0) -> pd.DataFrame:
    """Per model (and thinking budget): prompts voted on, traces that voted, the tokens all
    its traces generated, and for each vote its accuracy over prompts with a 95% bootstrap
    interval (`{vote}`, `{vote}_low`, `{vote}_high`)."""
    import pandas as pd

    for share in keep:
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise ConfigurationError(f"keep={share!r}: give shares above 0 and at most 1")
    if "conf_lowest" not in df:
        raise ConfigurationError("confidence votes read each row's conf_lowest: run compare "
                                 "with logprobs=True (or early_stop=\"confidence\")")
    budgets = df["think_budget"] if "think_budget" in df else pd.Series([None] * len(df))
    table = []
    for (model, budget), g in df.groupby([df["model"], budgets], sort=False, dropna=False):
        outcomes = vote_outcomes(g, str(model), keep, None if blank(budget) else int(budget))
        tokens = pd.to_numeric(g["thinking_tokens"], errors="coerce").fillna(0).sum() + \
            pd.to_numeric(g["answer_tokens"], errors="coerce").fillna(0).sum()
        row: dict[str, Any] = {
            "model": model, "think_budget": None if blank(budget) else int(budget),
            "prompts": len(outcomes),
            "voters": int(((g["done_reason"] != LOW_CONFIDENCE) & g["error"].isna()).sum()),
            "stopped": int((g["done_reason"] == LOW_CONFIDENCE).sum()),
            "tokens": int(tokens),
        }
        for name in vote_names(keep):
            values = np.array([float(o[name]) for o in outcomes.values()])
            low, high = statistics.mean_interval(values, seed=seed)
            row[name] = float(values.mean()) if len(values) else math.nan
            row[f"{name}_low"], row[f"{name}_high"] = low, high
        table.append(row)
    out = pd.DataFrame(table)
    if len(out):
        out["think_budget"] = out["think_budget"].astype("Int64")
    return out


def paired_votes(df: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], *,
                 keep: Sequence[float] = KEEP, level: float = statistics.LEVEL,
                 seed: int = 0) -> statistics.Paired:
    """Is one vote better than another? `a` and `b` are `(model, vote)` pairs, a vote being
    one of `vote_names(keep)`; compared on the prompts both voted on."""
    names = vote_names(keep)
    for _, vote in (a, b):
        if vote not in names:
            raise ConfigurationError(f"{vote!r} is not a vote: give one of {', '.join(names)}")
    side_a, side_b = vote_outcomes(df, a[0], keep), vote_outcomes(df, b[0], keep)
    shared = [p for p in side_a if p in side_b]
    result = statistics.paired(f"{a[0]} {a[1]}", f"{b[0]} {b[1]}",
                               [np.array([float(side_a[p][a[1]])]) for p in shared],
                               [np.array([float(side_b[p][b[1]])]) for p in shared],
                               level=level, seed=seed)
    return dataclasses.replace(result, metric="accuracy")


def describe_votes(table: pd.DataFrame) -> str:
    """What a `votes()` table shows, one line per model, in words derived from its numbers."""
    lines = []
    for row in table.to_dict("records"):
        if not row["prompts"]:
            lines.append(f"{row['model']}: no prompt had graded answers to vote on (votes need "
                         "prompts with an expected answer, and replies that were not stopped).")
            continue
        names = [c for c in table.columns if f"{c}_low" in table.columns]
        said = ", ".join(f"{name} {row[name]:.2f} [{row[name + '_low']:.2f}–"
                         f"{row[name + '_high']:.2f}]" for name in names)
        lows = [row[f"{n}_low"] for n in names]
        highs = [row[f"{n}_high"] for n in names]
        apart = max(lows) > min(highs)
        verdict = ("some intervals do not overlap: those votes differ on these prompts" if apart
                   else "every interval overlaps the others: this run cannot tell the votes "
                   "apart (more prompts would)")
        stopped = f", {row['stopped']} stopped early" if row.get("stopped") else ""
        lines.append(f"{row['model']}: {row['prompts']} prompts, {row['voters']} votes"
                     f"{stopped}, {row['tokens']:,} tokens generated. Accuracy of each vote "
                     f"(95% interval): {said}; {verdict}.")
    return prose("\n".join(lines))
