"""What a comparison found: `summary()` per model with intervals, `describe()` in words,
`paired()` for a difference on the shared prompts, `pass_at_k()` curves, `anatomy()` inside
the traces (per model; `anatomy_traces()` per reply), and the display form of the tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import LOW_CONFIDENCE
from ..errors import ConfigurationError
from . import statistics
from .anatomy import REFLECTION_MARKERS, Anatomy
from .anatomy import anatomy as measure
from .grading import GRADERS
from .prompts import EXAMPLES
from .prose import prose
from .results import as_bool, blank
from .voting import paired_votes

if TYPE_CHECKING:
    import pandas as pd

    from ..sysinfo import CpuLoad

SUMMARY_COLUMNS = [
    "model", "think_budget", "think_min", "n", "errors", "truncated", "looped", "low_conf",
    "budget_hit", "extended", "pass@1",
    "pass@1_low", "pass@1_high", "cons@k", "pass@k", "pass@k_low", "pass@k_high", "k",
    "tokens_per_s", "tokens_per_s_std", "ttft_s",
    "thinking_tokens", "answer_tokens", "s_per_correct", "total_s", "load_s",
]


def _groups(df: pd.DataFrame) -> Any:
    """The rows of each (model, think_budget, think_min), in the order they first appear."""
    for col in ("think_budget", "think_min"):
        if col not in df.columns:  # rows from before budgets or minimums
            df = df.assign(**{col: None})
    return df.groupby(["model", "think_budget", "think_min"], sort=False, dropna=False)


def _whole(value: Any) -> int | None:
    """A group key's budget or minimum as an int (None when there is none)."""
    return None if blank(value) else int(value)


def _outcomes(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Graded correctness per prompt (rows with an error or no expected answer left out)."""
    ok = rows[rows["error"].isna()] if "error" in rows else rows
    graded = ok[ok["correct"].notna()]
    return {str(pid): g["correct"].astype(float).to_numpy()
            for pid, g in graded.groupby("prompt_id", sort=False)}


def _cons(rows: pd.DataFrame) -> float:
    """cons@k: per prompt, the majority of the samples' final answers, right or wrong."""
    if "final" not in rows:
        return math.nan
    ok = rows[rows["error"].isna() & rows["correct"].notna()]
    if "done_reason" in ok:  # a trace an early stop ended has no vote (DeepConf)
        ok = ok[ok["done_reason"] != LOW_CONFIDENCE]
    votes = []
    for _, g in ok.groupby("prompt_id", sort=False):
        if g["final"].isna().all() and not g["correct"].any():
            votes.append(0.0)  # no sample gave a final answer: the vote has none either
            continue
        if g["final"].isna().all():
            return math.nan  # a kind without final answers to vote on (a text grader)
        # As text: rows read back from a file may hold the finals as numbers.
        finals = [None if blank(f) else str(f) for f in g["final"]]
        winner = statistics.majority(finals)
        # A sample's verdict depends only on its final answer: the winner's is any of theirs.
        votes.append(0.0 if winner is None else
                     float(bool(g["correct"].iloc[finals.index(winner)])))
    return float(np.mean(votes)) if votes else math.nan


PASS_AT_K_COLUMNS = ["model", "think_budget", "think_min", "k", "prompts", "pass@k", "pass@k_low",
                     "pass@k_high", "maj@k", "maj@k_low", "maj@k_high"]


def _finals(rows: pd.DataFrame) -> dict[str, list[str | None]] | None:
    """Each graded prompt's final answers (as text), or None for a kind without them."""
    if "final" not in rows:
        return None
    ok = rows[rows["error"].isna() & rows["correct"].notna()] if "error" in rows else \
        rows[rows["correct"].notna()]
    out = {}
    for pid, g in ok.groupby("prompt_id", sort=False):
        if g["final"].isna().all() and g["correct"].any():
            return None  # right answers without finals: a text grader, nothing to vote on
        out[str(pid)] = [None if blank(f) else str(f) for f in g["final"]]
    return out


def pass_at_k(df: pd.DataFrame, ks: Sequence[int] | None = None, *,
              level: float = statistics.LEVEL) -> pd.DataFrame:
    """pass@k and maj@k curves per model (and thinking budget), for k = 1 … the samples per
    prompt (or the given `ks`), each with its `level` interval and the prompts it covers.

    pass@k is Chen et al.'s unbiased estimator (2021): per prompt, the chance that k of its n
    samples drawn without replacement hold a right answer, then the mean over prompts; its
    interval is the nested bootstrap of pass@1 (`statistics.pass_at_k_interval`). maj@k is the
    same draw voted on: the chance that the majority final answer of k samples is right (cons@k
    is maj@k at k = n); its interval resamples prompts. pass@k can only grow with k; maj@k
    grows when the right answer is the most common one and falls when a wrong one is. A prompt
    with fewer than k graded samples is left out of that k (`prompts` says how many count);
    maj@k is NaN for graders without final answers (text graders).
    """
    import pandas as pd

    out = []
    for (model, budget, least), g in _groups(df):
        outcomes = _outcomes(g)
        finals = _finals(g)
        most = max((len(o) for o in outcomes.values()), default=0)
        for k in ks if ks is not None else range(1, most + 1):
            if k < 1:
                raise ConfigurationError(f"k must be at least 1, not {k}")
            kept = {pid: o for pid, o in outcomes.items() if len(o) >= k}
            groups = list(kept.values())
            passed = [statistics.pass_at_k(len(o), int(o.sum()), k) for o in groups]
            low, high = statistics.pass_at_k_interval(groups, k, level)
            votes = np.array([statistics.maj_at_k(finals[pid], list(o.astype(bool)), k)
                              for pid, o in kept.items()]) if finals is not None else None
            maj_low, maj_high = (statistics.mean_interval(votes, level)
                                 if votes is not None else (math.nan, math.nan))
            out.append({
                "model": model, "think_budget": _whole(budget), "think_min": _whole(least),
                "k": k, "prompts": len(groups),
                "pass@k": float(np.mean(passed)) if passed else math.nan,
                "pass@k_low": low, "pass@k_high": high,
                "maj@k": float(votes.mean()) if votes is not None and len(votes) else math.nan,
                "maj@k_low": maj_low, "maj@k_high": maj_high,
            })
    table = pd.DataFrame(out, columns=PASS_AT_K_COLUMNS)
    for col in ("think_budget", "think_min"):
        table[col] = table[col].astype("Int64")
    return table


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per model (and thinking budget and minimum): rows `n`, `errors`, `truncated` (cut by the
    token limit), `looped` (stopped by the loop guard), `low_conf` (stopped early for low
    confidence, `early_stop="confidence"`), `budget_hit` (reasoning cut at the
    budget), `extended` (reasoning extended to its minimum at least once),
    `pass@1` with its 95% interval `pass@1_low`..`pass@1_high`, `cons@k` and `pass@k` (with
    its interval; prompts with all `k` samples) over `k` samples (`pass_at_k` gives the curves),
    speed (mean and std tokens/s), mean TTFT, mean thinking and answer tokens, seconds per
    correct answer, mean total time and the load time.

    pass@1 is DeepSeek's: for each prompt with an expected answer, the mean correctness over
    its k samples, then the mean over prompts. Its interval comes from a nested bootstrap over
    prompts and their samples (`dskit.evals.statistics.pass1_interval`: Wilson's interval when every
    answer agrees). cons@k is the majority vote of the k samples' final answers per prompt
    (graded maths and cup prompts; NaN for other graders). Rows with an error are left out of
    them (see `errors`); NaN when no prompt could be graded. Truncated and looped replies count
    as graded (usually wrong: no final answer), and the columns say how many there were, so a
    low pass@1 caused by a small `max_tokens` or a loop is never mistaken for a weak model.
    `s_per_correct` is the wall time of all answered calls over the correct answers (inf
    when none is right): what one right answer costs.
    """
    import pandas as pd

    out = []
    for (model, budget, least), g in _groups(df):
        ok = g[g["error"].isna()] if "error" in g else g
        outcomes = list(_outcomes(g).values())
        low, high = statistics.pass1_interval(outcomes)
        correct = sum(float(o.sum()) for o in outcomes)
        k = max((len(o) for o in outcomes), default=0)
        at_k = pass_at_k(g, [k]).iloc[0] if k else None
        total = pd.to_numeric(ok["total_s"], errors="coerce")
        tps = pd.to_numeric(ok["tokens_per_s"], errors="coerce")

        def mean(col: str, rows: pd.DataFrame = ok) -> float:
            if col not in rows:
                return math.nan
            return float(pd.to_numeric(rows[col], errors="coerce").astype("float64").mean())

        out.append({
            "model": model,
            "think_budget": _whole(budget),
            "think_min": _whole(least),
            "n": len(g),
            "errors": len(g) - len(ok),
            "truncated": int((ok["done_reason"] == "length").sum()),
            "looped": int((ok["done_reason"] == "repetition").sum()),
            "low_conf": int((ok["done_reason"] == LOW_CONFIDENCE).sum()),
            "budget_hit": sum(1 for v in ok.get("budget_hit", []) if as_bool(v)),
            "extended": sum(1 for v in ok.get("extensions", []) if not blank(v) and int(v) > 0),
            "pass@1": statistics.pass1(outcomes),
            "pass@1_low": low,
            "pass@1_high": high,
            "cons@k": _cons(g),
            "pass@k": math.nan if at_k is None else at_k["pass@k"],
            "pass@k_low": math.nan if at_k is None else at_k["pass@k_low"],
            "pass@k_high": math.nan if at_k is None else at_k["pass@k_high"],
            "k": k,
            "tokens_per_s": tps.mean(),
            "tokens_per_s_std": tps.std(),
            "ttft_s": mean("ttft_s"),
            "thinking_tokens": mean("thinking_tokens"),
            "answer_tokens": mean("answer_tokens"),
            "s_per_correct": (float(total.sum()) / correct if correct else
                              (math.inf if outcomes else math.nan)),
            "total_s": total.mean(),
            "load_s": pd.to_numeric(ok["load_s"], errors="coerce").max(),
        })
    table = pd.DataFrame(out, columns=SUMMARY_COLUMNS)
    for col in ("think_budget", "think_min"):
        table[col] = table[col].astype("Int64")
    table.attrs["cpu_load"] = df.attrs.get("cpu_load")  # for describe()'s warning
    return table


def is_sweep(df: pd.DataFrame, column: str | None = None) -> bool:
    """Whether rows or a summary come from a think_budget or think_min sweep (some row has a
    budget or a minimum; `column` asks about one of them)."""
    return any(c in df and bool(df[c].notna().any())
               for c in ([column] if column else ["think_budget", "think_min"]))


#: Summary columns that say something only in a think_budget sweep (and in a think_min one).
SWEEP_ONLY = ("think_budget", "budget_hit")
MIN_SWEEP_ONLY = ("think_min", "extended")
#: Summary columns that say something only with more than one sample per prompt.
SAMPLED_ONLY = ("pass@k", "pass@k_low", "pass@k_high")


def shown(value: Any) -> str:
    """A table cell as a person reads it: "–" for a missing or infinite number (no correct
    answer gives an infinite time per correct answer), floats to two decimals below 10, one
    below 100, none above (with thousands separators); anything else as it is."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    import pandas as pd  # deferred: pandas loads with the first table

    # A list or array cell (words found, say) is shown as it is; pd.isna of one is an array.
    if not isinstance(value, (str, bool)) and pd.api.types.is_scalar(value) and pd.isna(value):
        return "–"
    if isinstance(value, float):
        size = abs(value)
        return f"{value:.2f}" if size < 10 else f"{value:.1f}" if size < 100 else f"{value:,.0f}"
    return str(value)


def for_display(table: pd.DataFrame) -> pd.DataFrame:
    """A summary as shown to a person: without the sweep-only columns unless it is a sweep
    (they would only say <NA> and False), without pass@k when no prompt had more than one
    sample (it is pass@1 then); in a sweep the row without a budget says "none"."""
    if "k" in table and not (table["k"] > 1).any():
        table = table.drop(columns=[c for c in SAMPLED_ONLY if c in table.columns])
    for column, only in (("think_budget", SWEEP_ONLY), ("think_min", MIN_SWEEP_ONLY)):
        if not is_sweep(table, column):
            table = table.drop(columns=[c for c in only if c in table.columns])
        else:
            table = table.assign(**{column: ["none" if blank(b) else str(int(b))
                                             for b in table[column]]})
    return table


def _label(row: dict[str, Any], sweep: bool = False) -> str:
    """The model, with its thinking budget when it has one (or when others in a sweep do), and
    its thinking minimum when it has one."""
    budget, least = row.get("think_budget"), row.get("think_min")
    minimum = "" if least is None or blank(least) else f"think_min={int(least)}"
    if budget is None or blank(budget):
        if minimum:
            return f"{row['model']} ({minimum})"
        return f"{row['model']} (no think_budget)" if sweep else row["model"]
    return f"{row['model']} (think_budget={int(budget)}" + (f", {minimum})" if minimum else ")")


def busy_warning(load: CpuLoad | None) -> str | None:
    """A warning when other programs kept the CPU busy during a run (`load`: a run's
    `attrs["cpu_load"]`), whose times and speeds then say more about that load than about the
    models."""
    if load is None or not load.busy:
        return None
    return (f"Careful: the CPU was busy with other programs during this run ({load.describe()} "
            "on average), so its times and speeds are lower than this machine gives alone; run "
            "it again when the machine is idle.")


def describe(summary_df: pd.DataFrame) -> str:
    """What a `summary()` shows, in sentences made from its numbers (for a lesson's page): one
    finding per line (a model's result, speed, noise, intervals), so it reads as a list."""
    said = [warning] if (warning := busy_warning(summary_df.attrs.get("cpu_load"))) else []
    rows = summary_df.to_dict("records")
    sweep = is_sweep(summary_df)
    for row in rows:
        graded = int(row["n"]) - int(row["errors"])
        if math.isnan(row["pass@1"]):
            score = "no graded answers"
        else:
            score = f"pass@1 {row['pass@1']:.2f}"
            if not math.isnan(row.get("pass@1_low", math.nan)):
                score += f" (95% interval {row['pass@1_low']:.2f}–{row['pass@1_high']:.2f})"
            if row.get("k", 0) > 1 and not math.isnan(row.get("cons@k", math.nan)):
                score += f", cons@{int(row['k'])} {row['cons@k']:.2f}"
        cut = (f", {int(row['truncated'])} of them cut off by the token limit (no final answer)"
               if row["truncated"] else "")
        looped = (f", {int(row['looped'])} stopped by the loop guard (repeating themselves)"
                  if row.get("looped") else "")
        zero = row.get("think_budget") == 0  # no reasoning allowed: nothing was cut
        hit = (f"; the reasoning hit its budget in {int(row['budget_hit'])}"
               if row.get("budget_hit") and not zero else "; thinking off" if zero else "")
        hit += (f"; the reasoning was extended to its minimum in {int(row['extended'])}"
                if row.get("extended") else "")
        cost = ""
        if row.get("s_per_correct", math.nan) == math.inf:
            cost = "; no correct answer"
        elif not math.isnan(row.get("s_per_correct", math.nan)):
            cost = f"; {row['s_per_correct']:.1f} s per correct answer"
        failed = f"; {int(row['errors'])} calls failed" if row["errors"] else ""
        said.append(f"{_label(row, sweep)}: {score} over {graded} answers{cut}{looped}{hit}"
                    f"{cost}{failed}.")
    speeds = summary_df.dropna(subset=["tokens_per_s"]).sort_values("tokens_per_s")
    if len(speeds) >= 2 and speeds["model"].nunique() >= 2:
        slow, fast = speeds.iloc[0], speeds.iloc[-1]
        said.append(f"{fast['model']} generated {fast['tokens_per_s'] / slow['tokens_per_s']:.1f}× "
                    f"as many tokens per second as {slow['model']} ({fast['tokens_per_s']:.1f} vs "
                    f"{slow['tokens_per_s']:.1f}).")
    if len(summary_df):
        n = int(summary_df["n"].max())
        said.append(f"With {n} answers per model one answer moves pass@1 by {1 / n:.2f}: a "
                    "difference of a few answers is noise, not a verdict on the model.")
    widths = [(r["pass@1_high"] - r["pass@1_low"]) / 2 for r in rows
              if not math.isnan(r.get("pass@1_low", math.nan))]
    if len(widths) >= 2:
        overlap = _overlapping(rows, sweep)
        said.append(f"The 95% intervals are ±{np.mean(widths):.2f} wide on average" + (
            f"; those of {overlap[0]} and {overlap[1]} overlap, so their difference may be "
            "noise (`ds.compare.paired` tests it on the shared prompts)." if overlap else
            "; none overlap."))
    return prose("\n".join(said))


def _overlapping(rows: list[dict[str, Any]], sweep: bool) -> tuple[str, str] | None:
    """The first two rows whose pass@1 intervals overlap, by label."""
    scored = [r for r in rows if not math.isnan(r.get("pass@1_low", math.nan))]
    for i, a in enumerate(scored):
        for b in scored[i + 1:]:
            if a["pass@1_low"] <= b["pass@1_high"] and b["pass@1_low"] <= a["pass@1_high"]:
                return _label(a, sweep), _label(b, sweep)
    return None


Side = str | tuple[str, "int | None"] | tuple[str, "int | None", "int | None"] | tuple[str, str]


def paired(df: pd.DataFrame, a: Side, b: Side, *, level: float = statistics.LEVEL,
           seed: int = 0) -> statistics.Paired:
    """Is the difference between `a` and `b` real? Each is a model name, or a
    `(model, think_budget)` pair to compare budgets (`(model, None)`: no budget), or a
    `(model, think_budget, think_min)` triple in a think_min sweep, or a `(model, vote)` pair
    to compare confidence votes (`"majority"`, `"weighted"`, `"top90%"`, `"top10%"`: see
    `dskit.evals.voting`; one outcome per prompt).

    Uses the prompts both answered and were graded on; returns a `dskit.evals.statistics.Paired`
    (difference in pass@1, its interval, a sign-flip test) whose text is a plain sentence.
    """
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 2 \
            and isinstance(a[1], str) and isinstance(b[1], str):
        return paired_votes(df, (a[0], a[1]), (b[0], b[1]), level=level, seed=seed)
    outcomes_a, outcomes_b = _side(df, a), _side(df, b)
    shared = [pid for pid in outcomes_a if pid in outcomes_b]
    return statistics.paired(_side_label(a), _side_label(b), [outcomes_a[p] for p in shared],
                             [outcomes_b[p] for p in shared], level=level, seed=seed)


def _side_label(side: Side) -> str:
    if isinstance(side, tuple):
        return _label({"model": side[0], "think_budget": side[1],
                       "think_min": side[2] if len(side) > 2 else None}, sweep=True)
    return side


def _side(df: pd.DataFrame, side: Side) -> dict[str, np.ndarray]:
    """The outcomes per prompt of one side of a paired comparison."""
    has_budgets = "think_budget" in df
    if isinstance(side, tuple):
        model, budget = side[0], side[1]
        rows = df[df["model"] == model]
        if has_budgets:
            rows = rows[rows["think_budget"].isna()] if budget is None else \
                rows[rows["think_budget"] == budget]
        if len(side) > 2 and "think_min" in df:
            least = side[2]
            rows = rows[rows["think_min"].isna()] if least is None else \
                rows[rows["think_min"] == least]
        elif "think_min" in df and rows["think_min"].nunique(dropna=False) > 1:
            raise ConfigurationError(
                f"{model} was run with several think_mins: name one, e.g. ({model!r}, "
                f"{budget!r}, {rows['think_min'].dropna().iloc[0]})")
    else:
        model = side
        rows = df[df["model"] == model]
        if has_budgets and rows["think_budget"].nunique(dropna=False) > 1:
            raise ConfigurationError(
                f"{model} was run with several think_budgets: name one, e.g. ({model!r}, "
                f"{rows['think_budget'].dropna().iloc[0]})")
        if "think_min" in df and rows["think_min"].nunique(dropna=False) > 1:
            raise ConfigurationError(
                f"{model} was run with several think_mins: name one, e.g. ({model!r}, None, "
                f"{rows['think_min'].dropna().iloc[0]})")
    if rows.empty:
        raise ConfigurationError(f"no rows for {_side_label(side)}: the comparison has "
                                 f"{sorted(df['model'].unique())}")
    return _outcomes(rows)




# --- trace anatomy per reply and per model ----------------------------------------------------

TRACE_COLUMNS = [
    "model", "think_budget", "prompt_id", "sample", "correct", "thinking_tokens", "candidates",
    "changes", "first_correct", "settled", "overthinking", "overthinking_share",
    "found_then_lost", "reflections", "reflections_per_1k",
]
ANATOMY_COLUMNS = [
    "model", "think_budget", "n", "right", "wrong",
    "thinking_tokens_right", "thinking_tokens_right_low", "thinking_tokens_right_high",
    "thinking_tokens_wrong", "thinking_tokens_wrong_low", "thinking_tokens_wrong_high",
    "overthinking_share", "reflections_per_1k_right", "reflections_per_1k_wrong",
    "found_then_lost", "first_correct", "changes",
]
Graders = dict[str, Any]


def grader_of(row: dict[str, Any], graders: Graders | None = None) -> Any:
    """The grader a row's prompt was graded with: `graders[prompt_id]` when given, else the
    row's `grader` column, else the built-in prompt of that id (rows from files written before
    the column), else None (containment, as `grading.grade` does without one)."""
    pid = str(row.get("prompt_id"))
    if graders and pid in graders:
        return graders[pid]
    if row.get("kind") == "math":
        return None  # maths is graded by value whatever the grader says
    name = row.get("grader")
    if not blank(name):
        if name not in GRADERS:
            raise ConfigurationError(
                f"prompt {pid} was graded by {name}, a function of yours that the rows cannot "
                f"hold: pass it again, ds.compare.anatomy(rows, graders={{{pid!r}: {name}}})")
        return name
    known = next((p for p in EXAMPLES if p.id == pid), None)
    return known.grader if known is not None else None


def _traces(df: pd.DataFrame, graders: Graders | None,
            markers: Sequence[str]) -> list[tuple[dict[str, Any], Anatomy]]:
    """Each answered row with its anatomy (rows with an error left out)."""
    out = []
    for row in df.to_dict("records"):
        if not blank(row.get("error")):
            continue
        tokens = row.get("thinking_tokens")
        out.append((row, measure(
            row.get("thinking") or "", row.get("answer") or "",
            None if blank(row.get("expected")) else str(row["expected"]),
            kind=row.get("kind") or "text", grader=grader_of(row, graders),
            thinking_tokens=None if blank(tokens) else int(tokens), markers=markers)))
    return out


def _budget(value: Any) -> int | None:
    return None if blank(value) else int(value)


def anatomy_traces(df: pd.DataFrame, *, graders: Graders | None = None,
                   markers: Sequence[str] = REFLECTION_MARKERS) -> pd.DataFrame:
    """One row per answered reply with its trace anatomy (`dskit.evals.anatomy`), measured with
    each prompt's grader (see `anatomy`): its verdict, thinking tokens, candidate answers as
    they changed ("3 → 7"), where a right answer first appeared and where the candidate
    settled (token indices; empty when never), the tokens after that and their share,
    found-then-lost, reflection markers and their rate per 1,000 tokens."""
    import pandas as pd

    out = []
    for row, a in _traces(df, graders, markers):
        out.append({
            "model": row.get("model"), "think_budget": _budget(row.get("think_budget")),
            "prompt_id": row.get("prompt_id"), "sample": row.get("sample"),
            "correct": a.correct, "thinking_tokens": a.tokens,
            "candidates": " → ".join(value for _, value in a.candidates),
            "changes": a.changes, "first_correct": a.first_correct, "settled": a.settled,
            "overthinking": a.overthinking, "overthinking_share": a.overthinking_share,
            "found_then_lost": a.found_then_lost, "reflections": a.reflections,
            "reflections_per_1k": a.reflections_per_1k,
        })
    table = pd.DataFrame(out, columns=TRACE_COLUMNS)
    for col in ("think_budget", "first_correct", "settled", "overthinking"):
        table[col] = table[col].astype("Int64")
    return table


def _rate(traces: list[Anatomy]) -> float:
    """Reflection markers per 1,000 tokens over all these traces together (a long trace weighs
    by its length, so a few short ones cannot make the rate)."""
    tokens = sum(a.tokens for a in traces)
    return 1000 * sum(a.reflections for a in traces) / tokens if tokens else math.nan


def _median(values: Sequence[float]) -> float:
    kept = [v for v in values if v == v]
    return float(np.median(kept)) if kept else math.nan


def anatomy(df: pd.DataFrame, *, graders: Graders | None = None,
            markers: Sequence[str] = REFLECTION_MARKERS,
            level: float = statistics.LEVEL) -> pd.DataFrame:
    """Trace anatomy per model (and thinking budget) over its graded replies: `n`, `right`,
    `wrong`; the median thinking tokens of right and of wrong answers, each with its `level`
    interval (`statistics.median_interval`: the distribution-free sign-test interval, NaN with
    fewer than 6 answers at 95%); the median overthinking share (tokens after the candidate
    settled, over the trace); reflection markers per 1,000 thinking tokens of right and of
    wrong answers (pooled: all markers over all tokens); `found_then_lost` (a right answer in
    the reasoning, a wrong final answer); the median token where a right answer first appeared
    (of the traces where one did); the mean number of candidate changes.

    Each prompt is measured with its own grader: the rows' `grader` column (a comparison
    records it), or `graders={prompt_id: grader}` for a function of your own; rows without one
    (files written before the column) use the built-in prompt of that id, else containment.
    `anatomy_traces` gives the same per reply; `for_display` shows either.
    """
    import pandas as pd

    measured = _traces(df, graders, markers)
    groups: dict[tuple[Any, int | None], list[Anatomy]] = {}
    for source, a in measured:
        if a.correct is not None:
            key = (source.get("model"), _budget(source.get("think_budget")))
            groups.setdefault(key, []).append(a)
    out = []
    for (model, budget), traces in groups.items():
        right = [a for a in traces if a.correct]
        wrong = [a for a in traces if not a.correct]
        row: dict[str, Any] = {"model": model, "think_budget": budget, "n": len(traces),
                               "right": len(right), "wrong": len(wrong)}
        for name, group in (("right", right), ("wrong", wrong)):
            tokens = [float(a.tokens) for a in group]
            low, high = statistics.median_interval(tokens, level)
            row[f"thinking_tokens_{name}"] = _median(tokens)
            row[f"thinking_tokens_{name}_low"] = low
            row[f"thinking_tokens_{name}_high"] = high
            row[f"reflections_per_1k_{name}"] = _rate(group)
        row["overthinking_share"] = _median([a.overthinking_share for a in traces])
        row["found_then_lost"] = sum(a.found_then_lost for a in traces)
        row["first_correct"] = _median([float(a.first_correct) for a in traces
                                        if a.first_correct is not None])
        row["changes"] = float(np.mean([a.changes for a in traces]))
        out.append(row)
    table = pd.DataFrame(out, columns=ANATOMY_COLUMNS)
    table["think_budget"] = table["think_budget"].astype("Int64")
    return table
