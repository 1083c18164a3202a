"""Plots for comparisons (matplotlib, imported only when a plot is drawn).

    s = ds.compare.summary(df)
    accuracy_vs_size(s); speed_vs_size(s); latency(df); accuracy_vs_thinking(s)
    pass_at_k(ds.compare.pass_at_k(df))
    trace_timeline(reply, expected); thinking_length(df)     # inside the reasoning

Each returns the matplotlib `Axes` (pass `ax=` to draw into your own figure). Sizes come from
the model family (`dskit.models.family`) when it knows every model; otherwise the models are
placed in the order given, by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..language import is_chinese
from ..models.family import spec_for
from .anatomy import REFLECTION_MARKERS, anatomy, candidate_right, estimate_tokens
from .grading import final_answer, is_missing, parse_number
from .results import as_bool, blank
from .summary import grader_of, is_sweep

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes


def model_sizes(models: Sequence[str]) -> list[float] | None:
    """Parameters in billions per model from the catalog, or None if any is unknown."""
    sizes: list[float] = []
    for tag in models:
        try:
            spec = spec_for(tag)
        except (LookupError, ValueError):
            return None
        params = getattr(spec, "params_b", None)
        if params is None:
            return None
        sizes.append(float(params))
    return sizes


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(6, 4))
    return ax


def _need(df: pd.DataFrame, *cols: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConfigurationError(
            f"this plot needs the columns {', '.join(missing)}: pass `ds.compare.summary(df)` "
            "for size plots and the comparison DataFrame itself for latency")


def _by_size(summary_df: pd.DataFrame, column: str, ylabel: str, title: str,
             err: str | None, ax: Axes | None) -> tuple[Axes, list[float], list[float]]:
    _need(summary_df, "model", column)
    ax = _axes(ax)
    models = [str(m) for m in summary_df["model"]]
    values = summary_df[column].astype(float).tolist()
    sizes = model_sizes(models)
    if sizes:  # (an empty comparison has no sizes to tick)
        xs: list[float] = sizes
        _size_axis(ax, xs)
    else:
        xs = [float(i) for i in range(len(models))]
        ax.set_xticks(xs, models, rotation=20, ha="right")
        ax.set_xlabel("model (size unknown: in the order given)")
    yerr = _yerr(summary_df, err)
    ax.errorbar(xs, values, yerr=yerr, fmt="o", capsize=4)
    if sizes:
        for x, y, name in zip(xs, values, models, strict=True):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return ax, xs, values


def size_label(billions: float) -> str:
    """A model size as people say it: "135M", "0.5B", "1.5B", "70B"."""
    return f"{billions * 1000:.0f}M" if billions < 0.5 else f"{billions:g}B"


def _size_axis(ax: Axes, sizes: list[float]) -> None:
    """A log axis of parameters ticked at the models' own sizes, labelled as people say them
    (matplotlib's own ticks read "2×10⁻¹" between two small models)."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    ticks = sorted(set(sizes))
    ax.set_xticks(ticks, [size_label(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(min(ticks) / 1.8, max(ticks) * 1.8)  # room for the points' labels
    ax.set_xlabel("parameters")


def _yerr(summary_df: pd.DataFrame, err: str | None) -> Any:
    """Error bars: `pass@1` gets its interval (asymmetric), other columns a std column."""
    if err == "pass@1" and "pass@1_low" in summary_df:
        value = summary_df["pass@1"].astype(float)
        low = (value - summary_df["pass@1_low"].astype(float)).clip(lower=0).fillna(0)
        high = (summary_df["pass@1_high"].astype(float) - value).clip(lower=0).fillna(0)
        return [low.tolist(), high.tolist()]
    if err is not None and err in summary_df:
        return summary_df[err].astype(float).fillna(0).tolist()
    return None


def _missing(value: Any) -> bool:
    """None, NaN or pandas' NA (whose comparisons cannot be made a bool)."""
    try:
        return value is None or bool(value != value)
    except TypeError:
        return True


def _mark_cut(ax: Axes, summary_df: pd.DataFrame, xs: list[float], values: list[float]) -> None:
    """Say on the plot how many replies were truncated or looped (never silent: a low score
    may only mean a small max_tokens or a loop)."""
    for i, (x, y) in enumerate(zip(xs, values, strict=True)):
        total = int(summary_df["n"].iloc[i])
        said = [f"{int(summary_df[col].iloc[i])}/{total} {word}"
                for col, word in (("truncated", "truncated"), ("looped", "looped"))
                if col in summary_df and summary_df[col].iloc[i]]
        if said:
            ax.annotate(", ".join(said), (x, y if y == y else 0), textcoords="offset points",
                        xytext=(5, -12), fontsize=8, color="#c22")


def accuracy_vs_size(summary_df: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """pass@1 per model against its size, with its 95% interval as error bars; replies cut by
    the token limit or stopped by the loop guard are marked."""
    ax, xs, values = _by_size(summary_df, "pass@1", "pass@1 (95% interval)",
                              "Accuracy vs model size", "pass@1", ax)
    ax.set_ylim(-0.05, 1.05)
    _mark_cut(ax, summary_df, xs, values)
    return ax


def accuracy_vs_thinking(summary_df: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """The test-time-compute plot: accuracy against mean thinking tokens, one line per model,
    one point per thinking budget (labelled with it; "none" for no budget; "min N" for a
    thinking minimum), pass@1's 95% interval as error bars."""
    _need(summary_df, "model", "think_budget", "thinking_tokens", "pass@1")
    ax = _axes(ax)
    for model, rows in summary_df.groupby("model", sort=False):
        rows = rows.sort_values("thinking_tokens")
        xs = rows["thinking_tokens"].astype(float).fillna(0).tolist()
        ys = rows["pass@1"].astype(float).tolist()
        line = ax.errorbar(xs, ys, yerr=_yerr(rows, "pass@1"), fmt="o-", capsize=4,
                           label=str(model))
        minimums = rows["think_min"] if "think_min" in rows else [None] * len(rows)
        for x, y, budget, least in zip(xs, ys, rows["think_budget"], minimums, strict=True):
            label = "none" if _missing(budget) else str(int(budget))
            if not _missing(least) and least:
                label += f", min {int(least)}"  # a think_min sweep's point
            ax.annotate(label, (x, y if y == y else 0), textcoords="offset points",
                        xytext=(4, 6), fontsize=8, color=line.lines[0].get_color())
        _mark_cut(ax, rows.reset_index(drop=True), xs, ys)
    ax.set_xlabel("mean thinking tokens per reply")
    ax.set_ylabel("pass@1 (95% interval)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Test-time compute: accuracy vs thinking (labels: think_budget)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax


def pass_at_k(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """pass@k (solid) and maj@k (dashed) against k, one colour per model (and budget), with
    their 95% intervals as bands; `table` is `ds.compare.pass_at_k(rows)` or the comparison's
    rows themselves."""
    from .summary import pass_at_k as curves

    if "pass@k" not in table.columns:
        _need(table, "model", "prompt_id", "correct")
        table = curves(table)
    _need(table, "model", "k", "pass@k", "maj@k")
    ax = _axes(ax)
    sweep = is_sweep(table, "think_budget")
    groups = table.groupby(["model", "think_budget"] if sweep else ["model"], sort=False,
                           dropna=False)
    for key, rows in groups:
        model, *budget = key if isinstance(key, tuple) else (key,)
        label = str(model) if not sweep else \
            f"{model} (budget {'none' if _missing(budget[0]) else int(budget[0])})"
        rows = rows.sort_values("k")
        ks = rows["k"].astype(int).tolist()
        line = ax.plot(ks, rows["pass@k"], "o-", label=f"{label} pass@k")[0]
        ax.fill_between(ks, rows["pass@k_low"], rows["pass@k_high"], alpha=0.15,
                        color=line.get_color())
        if rows["maj@k"].notna().any():
            ax.plot(ks, rows["maj@k"], "s--", color=line.get_color(), label=f"{label} maj@k")
            ax.fill_between(ks, rows["maj@k_low"], rows["maj@k_high"], alpha=0.08,
                            color=line.get_color())
    ax.set_xlabel("k (samples per prompt)")
    ax.set_ylabel("share of prompts (95% interval)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(sorted(set(table["k"].astype(int))))
    ax.set_title("pass@k (any of k right) vs maj@k (the majority of k right)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax


def speed_vs_size(summary_df: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Mean generation speed (tokens/s, with its standard deviation) against size."""
    return _by_size(summary_df, "tokens_per_s", "tokens / s", "Generation speed vs model size",
                    "tokens_per_s_std", ax)[0]


def latency(df: pd.DataFrame, metric: str = "total_s", *, ax: Axes | None = None) -> Axes:
    """The distribution of `metric` ("total_s" or "ttft_s") per model, as box plots."""
    if metric not in ("total_s", "ttft_s"):
        raise ConfigurationError(f"metric must be 'total_s' or 'ttft_s', not {metric!r}")
    _need(df, "model", metric)
    ax = _axes(ax)
    ok = df[df["error"].isna()] if "error" in df.columns else df
    models = list(dict.fromkeys(str(m) for m in df["model"]))
    data: list[Any] = [ok.loc[ok["model"] == m, metric].dropna().astype(float).tolist()
                       for m in models]
    ax.boxplot(data, tick_labels=models, showmeans=True)
    ax.tick_params(axis="x", labelrotation=20)
    label = "total time per reply (s)" if metric == "total_s" else "time to first token (s)"
    ax.set_ylabel(label)
    ax.set_title("Latency per model")
    ax.grid(True, axis="y", alpha=0.3)
    return ax


def leaderboard(board: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """The arena's leaderboard: win rate per model with its 95 % interval, labelled with the
    Bradley–Terry score (`ds.arena.leaderboard()`)."""
    _need(board, "model", "win_rate", "ci_low", "ci_high", "score")
    ax = _axes(ax)
    if board.empty:
        ax.text(0.5, 0.5, "no votes yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    order = board.iloc[::-1]  # best at the top
    ys = list(range(len(order)))
    rates = order["win_rate"].astype(float).tolist()
    low = [max(0.0, r - lo) for r, lo in zip(rates, order["ci_low"].astype(float), strict=True)]
    high = [max(0.0, hi - r) for r, hi in zip(rates, order["ci_high"].astype(float),
                                              strict=True)]
    ax.barh(ys, rates, xerr=[low, high], capsize=4, color="#7a9cc6")
    ax.set_yticks(ys, [str(m) for m in order["model"]])
    for y, rate, score, n in zip(ys, rates, order["score"], order["battles"], strict=True):
        ax.annotate(f"score {score:.0f} · {int(n)} battles", (min(rate, 0.98), y),
                    textcoords="offset points", xytext=(4, 8), fontsize=8)
    ax.axvline(0.5, color="#999", lw=0.8, ls="--")
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate (ties count half), 95 % interval")
    ax.set_title("Arena leaderboard")
    return ax


def summary_png(summary_df: pd.DataFrame, rows: pd.DataFrame | None = None) -> bytes:
    """Accuracy and speed per model (and latency, given the rows) as one PNG image; for a
    think_budget sweep, accuracy against thinking tokens (and latency).

    Drawn on a `Figure`, not pyplot, so it works in a worker thread and leaves no open figure.
    """
    import io

    from matplotlib.figure import Figure  # matplotlib loads only when a plot is drawn

    # A think_budget sweep has a row per (model, budget): accuracy against thinking, not size.
    draw = [accuracy_vs_thinking] if is_sweep(summary_df) else [accuracy_vs_size, speed_vs_size]
    panels = len(draw) + (rows is not None)
    fig = Figure(figsize=(5 * panels, 3.6), layout="constrained")
    axes = list(fig.subplots(1, panels, squeeze=False)[0])
    for plot, ax in zip(draw, axes, strict=False):
        plot(summary_df, ax=ax)
    if rows is not None:
        latency(rows, ax=axes[-1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _nothing(ax: Axes | None, message: str) -> Axes:
    """A small figure (or the given axes) saying there is nothing to draw, not a blank one."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4, 1))
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_axis_off()
    return ax


def _trace_parts(trace: Any, expected: Any, kind: str | None, grader: Any
                 ) -> tuple[str, str, Any, str, Any, int | None]:
    """thinking, answer, expected, kind, grader and the counted thinking tokens of a `Reply`
    or of one comparison row (a dict or a DataFrame row)."""
    if hasattr(expected, "expected") and hasattr(expected, "grader"):  # a ds.prompts.Prompt
        kind, grader, expected = expected.kind, expected.grader, expected.expected
    if hasattr(trace, "stats"):  # a Reply
        row: dict[str, Any] = {"thinking": trace.thinking, "answer": trace.answer,
                               "thinking_tokens": trace.stats.thinking_tokens}
        if expected is None and trace.verdict is not None:
            expected = trace.verdict.expected
    else:
        row = dict(trace)
        if expected is None:
            expected = None if blank(row.get("expected")) else str(row["expected"])
            kind = kind or row.get("kind")
            grader = grader if grader is not None else grader_of(row)
    if kind is None:  # as a reply's grade() decides it: a number is graded by value
        kind = "math" if not is_missing(expected) and parse_number(expected) is not None \
            else "text"
    tokens = row.get("thinking_tokens")
    thinking, answer = (text if isinstance(text := row.get(col), str) else ""
                        for col in ("thinking", "answer"))
    return (thinking, answer, expected, kind, grader,
            None if tokens is None or blank(tokens) else int(tokens))


def _shown(expected: Any, kind: str, grader: Any) -> str:
    """The expected answer as a plot can write it (its default font has no Chinese: the place
    the cup grader reads in "在床上" is written "bed")."""
    text = str(expected)
    if is_chinese(text):
        return final_answer(text, kind, grader) or "(in Chinese)"
    return text if len(text) <= 30 else text[:29] + "…"


def trace_timeline(trace: Any, expected: Any = None, *, kind: str | None = None,
                   grader: Any = None, markers: Sequence[str] = REFLECTION_MARKERS,
                   ax: Axes | None = None) -> Axes:
    """One reasoning trace along its thinking tokens: the candidate answers where they change
    (green when right), a line where a right answer first appears, the stretch after the
    candidate settled, a tick per reflection marker, and the end of the reasoning; the title
    gives the final answer's verdict and the expected answer.

    `trace` is a `Reply` (with `expected` an answer or a `ds.prompts.Prompt`; by default what
    it was graded against) or one row of a comparison (`df.iloc[i]`), which brings its own.
    """
    thinking, answer, expected, kind, grader, tokens = _trace_parts(trace, expected, kind,
                                                                    grader)
    if not thinking.strip():
        return _nothing(ax, "no reasoning to draw: this reply did not think")
    a = anatomy(thinking, answer, expected, kind=kind, grader=grader, thinking_tokens=tokens,
                markers=markers)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(9, 2.6))
    end = max(a.tokens, 1)
    if a.settled is not None:
        ax.axvspan(a.settled, end, color="#f2d7a6", alpha=0.5,
                   label=f"after it settled: {a.overthinking} tokens")
    if a.markers:
        ax.vlines([t for t, _ in a.markers], 0, 0.25, color="#d08a1c", lw=1.5,
                  label=f"reflection markers ({len(a.markers)})")
    for i, (token, value) in enumerate(a.candidates):
        right = candidate_right(value, expected, kind, grader)
        ax.plot([token], [0.6], "o", color="#2a9d4b" if right else "#c22", ms=7)
        ax.annotate(value if len(value) <= 12 else value[:11] + "…", (token, 0.6),
                    textcoords="offset points", xytext=(0, 9 if i % 2 == 0 else -15),
                    ha="center", fontsize=8)
    if a.first_correct is not None:
        ax.axvline(a.first_correct, color="#2a9d4b", ls="--", lw=1.2,
                   label=f"right answer first appears (token {a.first_correct})")
    ax.axvline(end, color="#333", lw=1.2, label=f"end of reasoning ({a.tokens} tokens)")
    ax.set_xlim(0, end * 1.03)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("thinking token" + ("" if tokens else " (estimated from the text)"))
    verdict = {True: "✓ right", False: "✗ wrong"}.get(a.correct, "? not graded")  # type: ignore[arg-type]
    said = f"{verdict}, expected {_shown(expected, kind, grader)}" \
        if not is_missing(expected) else verdict
    if not a.candidates:
        said += " · no candidate answer read" if kind == "math" or a.correct is None else ""
    ax.set_title(f"{said} · candidates {len(a.candidates)}, changes {a.changes}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return ax


def thinking_length(rows: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Thinking tokens of right and of wrong answers per model (and budget): a box and the
    answers as points, right in green beside wrong in red; `rows` is a comparison (or
    `ds.compare.anatomy_traces(rows)`). Do wrong answers think longer?"""
    _need(rows, "model", "correct")
    ok = rows[rows["error"].isna()] if "error" in rows.columns else rows
    verdicts = [as_bool(v) for v in ok["correct"]]
    ok = ok[[v is not None for v in verdicts]]
    if ok.empty:
        return _nothing(ax, "no graded traces to draw")
    ax = _axes(ax)
    import numpy as np

    def tokens(row: Any) -> float:
        counted = row.get("thinking_tokens")
        if counted is not None and not blank(counted):
            return float(counted)
        text = row.get("thinking")
        return float(estimate_tokens(text if isinstance(text, str) else ""))

    sweep = is_sweep(ok)
    keys = ["model", "think_budget"] if sweep else ["model"]
    rng = np.random.default_rng(0)  # the same jitter every time
    labels = []
    for i, (key, group) in enumerate(ok.groupby(keys, sort=False, dropna=False)):
        model, *budget = key if isinstance(key, tuple) else (key,)
        labels.append(str(model) if not sweep else
                      f"{model}\nbudget {'none' if _missing(budget[0]) else int(budget[0])}")
        records = group.to_dict("records")
        for offset, want, colour in ((-0.2, True, "#2a9d4b"), (0.2, False, "#c22")):
            values = [tokens(r) for r in records if as_bool(r["correct"]) is want]
            if not values:
                continue
            ax.boxplot([values], positions=[i + offset], widths=0.3, showfliers=False,
                       medianprops={"color": colour})
            ax.plot(i + offset + rng.uniform(-0.08, 0.08, len(values)), values, "o",
                    color=colour, alpha=0.6, ms=4)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.plot([], [], "o", color="#2a9d4b", label="right")
    ax.plot([], [], "o", color="#c22", label="wrong")
    ax.legend(fontsize=8)
    ax.set_ylabel("thinking tokens")
    ax.set_title("Thinking length of right vs wrong answers")
    ax.grid(True, axis="y", alpha=0.3)
    return ax
