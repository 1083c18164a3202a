"""`compare()`: the same prompts on several models, k samples each, as one tidy DataFrame.

Scheduling is model-major: all the work for one model (every thinking budget of a sweep
included) runs before the next model starts, so each model is loaded once (on a GPU that holds
one size at a time, a naive prompt-major loop reloads a model for every prompt). Rows are
appended to `out` as they finish, a KeyboardInterrupt returns the rows finished so far, and a
rerun with the same `out` resumes. `summary()` puts intervals on the numbers
(`dskit.evals.statistics`), `paired()` tests a difference on the shared prompts.
"""

from __future__ import annotations

import csv
import functools
import itertools
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..client import Client, default_client
from ..errors import ComparisonFailed, ConfigurationError, ModelNotFound
from ..reasoning.plan import check_budget
from ..reasoning.think import math_prompt
from . import statistics
from .grading import final_answer, grade
from .prompts import load

if TYPE_CHECKING:
    import pandas as pd

    from ..reply import Reply

#: The columns of a comparison, in order.
COLUMNS = [
    "model", "think_budget", "prompt_id", "prompt", "sample", "kind", "answer", "thinking",
    "expected", "final", "correct", "ttft_s", "tokens_per_s", "thinking_tokens",
    "answer_tokens", "load_s", "total_s", "budget_hit", "done_reason", "error",
]
#: Columns added since the first files were written: an older file is read without them.
_ADDED = ("think_budget", "final", "budget_hit")
_KEY = ("model", "think_budget", "prompt_id", "sample")
_TEXT = ("model", "prompt_id", "prompt", "kind", "answer", "thinking", "expected", "final",
         "done_reason", "error")
_FLOAT = ("ttft_s", "tokens_per_s", "load_s", "total_s")
_INT = ("think_budget", "thinking_tokens", "answer_tokens")
_BOOL = ("correct", "budget_hit")

Key = tuple[str, "int | None", str, int]


@dataclass(frozen=True)
class _Task:
    order: int
    model: str
    budget: int | None
    prompt_id: str
    prompt: str
    sample: int
    kind: str
    expected: str | None
    grader: Any

    @property
    def key(self) -> Key:
        return (self.model, self.budget, self.prompt_id, self.sample)


def _key(row: dict[str, Any]) -> Key:
    budget = row.get("think_budget")
    return (row["model"], None if budget is None or _blank(budget) else int(budget),
            row["prompt_id"],
            int(row["sample"]))


def _budgets(think_budget: Any) -> list[int | None]:
    """The budgets of a sweep: one value, or a list of them (None: no budget)."""
    given = list(think_budget) if isinstance(think_budget, (list, tuple)) else [think_budget]
    budgets = [check_budget(b) for b in given]
    if not budgets:
        raise ConfigurationError("think_budget=[]: give at least one budget (or None)")
    if len(set(budgets)) != len(budgets):
        raise ConfigurationError(f"a think_budget is listed twice: {given}")
    return budgets


def compare(
    models: str | Sequence[str],
    prompts: Any,
    samples: int = 1,
    *,
    client: Client | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    think: bool | None = None,
    think_budget: int | Sequence[int | None] | None = None,
    loop_guard: bool = True,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: bool = True,
    parallel: int = 1,
    stop: threading.Event | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Ask every model every prompt `samples` times; one row per (model, think_budget, prompt,
    sample).

    - `prompts`: anything `ds.prompts.load` takes: a list of strings, a DataFrame with
      `prompt` (and `expected`, `kind`), a built-in set ("cup", "cup-en", "maths"), a GSM8K /
      MATH / AIME file or a `datasets` object (`ds.prompts.load(path, n=50)` to take a sample).
      Maths prompts get DeepSeek's directive (`math_prompt`) and are graded by value: the last
      `\\boxed{}` of the answer, else its last number, compared numerically or symbolically.
    - `max_tokens`, `temperature`, `think`: passed to every chat (None: the library's DeepSeek
      defaults). With `seed`, sample i uses `seed + i`, so samples differ but a rerun repeats.
    - `think_budget`: cap the reasoning at N tokens (0: answer without reasoning); a list
      sweeps budgets, e.g. `[0, 64, 256, None]`, each model still loaded once.
    - `loop_guard`: stop replies that fall into degenerate repetition (on by default:
      `done_reason == "repetition"`, counted as `looped` in the summary).
    - `out`: a `.csv` (or `.parquet`, needs pyarrow) file each finished row is written to at
      once; with `resume=True` the rows already in it (without an error) are not run again
      and come back in the result.
    - `parallel`: requests in flight at once within one model's group. Helps only on servers
      that run requests concurrently (Ollama with OLLAMA_NUM_PARALLEL, vLLM, SGLang); the
      embedded backend runs one request per model at a time, so there it only adds threads.
    - `stop`: an event that ends the run (for widgets and threads): replies in flight stop at
      once, even on a stalled server, and are not kept; `on_row(row)` is called as each row
      finishes.
    - A failed call becomes a row with `error` set; the run goes on. An unknown model fails all
      its rows at once. Ctrl-C (KeyboardInterrupt) stops the run and returns the finished rows
      with `df.attrs["interrupted"] = True`.

    See `summary(df)` (also `compare.summary`) for pass@1 and speed per model.
    """
    model_list = [models] if isinstance(models, str) else list(models)
    if not model_list:
        raise ConfigurationError("compare() needs at least one model")
    if len(set(model_list)) != len(model_list):
        raise ConfigurationError(f"a model is listed twice: {model_list}")
    if samples < 1:
        raise ConfigurationError(f"samples must be at least 1, got {samples}")
    if parallel < 1:
        raise ConfigurationError(f"parallel must be at least 1, got {parallel}")
    budgets = _budgets(think_budget)
    table = load(prompts)
    client = client or default_client()
    sink = _Sink(Path(out)) if out is not None else None

    tasks: list[_Task] = []
    for model in model_list:  # model-major: each model's work (every budget) is grouped
        for budget in budgets:
            for row in table.itertuples(index=False):
                for k in range(samples):
                    tasks.append(_Task(len(tasks), model, budget, row.prompt_id, row.prompt, k,
                                       row.kind, row.expected, row.grader))
    order = {t.key: t.order for t in tasks}

    rows: dict[Key, dict[str, Any]] = {}
    kept: list[dict[str, Any]] = []  # what stays in `out`: all but this run's failed rows
    if sink is not None and resume:
        for r in sink.read():
            key = _key(r)
            if key in order and not _blank(r["error"]):
                continue  # failed before: asked again, and its old row is dropped from the file
            kept.append(r)
            if key in order:
                rows[key] = r
    todo = [t for t in tasks if t.key not in rows]

    bar = _progress_bar(len(tasks), len(tasks) - len(todo), progress)
    interrupted = False
    try:
        if sink is not None and todo:
            sink.open(kept)
        for model in model_list:
            group = [t for t in todo if t.model == model]
            if not group:
                continue
            bar.set_description(model)
            runner = _GroupRunner(client, group, stop, max_tokens=max_tokens,
                                  temperature=temperature, seed=seed, think=think,
                                  loop_guard=loop_guard)

            def done(row: dict[str, Any]) -> bool:
                """Keep a finished row; False when the run must stop."""
                rows[_key(row)] = row
                if sink is not None:
                    sink.write(row)
                bar.update(1)
                if on_row is not None:
                    on_row(row)
                return stop is None or not stop.is_set()

            try:
                finished = runner.run(done, parallel)
            except KeyboardInterrupt:
                finished = False
            if not finished:
                interrupted = True
                break
    finally:
        bar.close()
        if sink is not None:
            sink.close()

    df = _frame(sorted(rows.values(), key=lambda r: order[_key(r)]))
    df.attrs["interrupted"] = interrupted
    df.attrs["skipped"] = len(tasks) - len(todo)
    # What a report lists as this run's settings (None: the library's DeepSeek defaults).
    df.attrs["settings"] = {"backend": client.name, "samples": samples,
                            "max_tokens": max_tokens, "temperature": temperature, "seed": seed,
                            "think": think}
    if interrupted:
        warnings.warn(f"compare() interrupted: returning the {len(df)} of {len(tasks)} rows "
                      "finished so far" + (f" (also in {out}; rerun to resume)" if out else ""),
                      stacklevel=2)
    elif len(df) and df["error"].notna().all():
        raise ComparisonFailed(_failure_message(df), rows=df)
    return df


def _failure_message(df: pd.DataFrame) -> str:
    """Why every call failed: each distinct error once (they say the fix), with its models."""
    by_error: dict[str, list[str]] = {}
    for model, error in zip(df["model"], df["error"], strict=True):
        models = by_error.setdefault(str(error), [])
        if model not in models:
            models.append(model)
    reasons = "; ".join(f"{', '.join(models)}: {error}" for error, models in by_error.items())
    return f"every one of the {len(df)} calls failed, nothing was compared. {reasons}"


class _GroupRunner:
    """Runs one model's tasks, one at a time or with a thread pool."""

    def __init__(self, client: Client, tasks: list[_Task], stop: threading.Event | None,
                 **options: Any) -> None:
        self.client, self.tasks, self.options = client, tasks, options
        self.model_error: str | None = None
        self.stop = stop
        self._active: set[Any] = set()  # the ChatStreams in flight
        self._lock = threading.Lock()

    def run(self, done: Callable[[dict[str, Any]], bool], parallel: int) -> bool:
        """Run the tasks, handing each row to `done`; False when asked to stop."""
        watching = threading.Event()
        if self.stop is not None:
            threading.Thread(target=self._watch, args=(self.stop, watching), daemon=True,
                             name="dskit-compare-stop").start()
        try:
            return self._run(done, parallel)
        finally:
            watching.set()

    def _watch(self, stop: threading.Event, over: threading.Event) -> None:
        """Stop the replies in flight as soon as `stop` is set (a stalled server included)."""
        while not over.is_set():
            if stop.wait(0.1):
                with self._lock:
                    streams = list(self._active)
                for stream in streams:
                    stream.stop()
                return

    def _run(self, done: Callable[[dict[str, Any]], bool], parallel: int) -> bool:
        if parallel == 1:
            for task in self.tasks:
                row = self.call(task)
                if row is None or not done(self.graded(row)):
                    return False
            return True
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dskit-compare")
        pending: set[Future[dict[str, Any] | None]] = set()
        queue = iter(self.tasks)
        try:
            for task in _take(queue, parallel):
                pending.add(pool.submit(self.call, task))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                keep = True
                for fut in finished:  # every finished row is kept, even when asked to stop
                    row = fut.result()
                    if row is None:  # stopped mid-reply: not a result
                        keep = False
                        continue
                    # grading happens here, in the calling thread (math-verify uses signals)
                    keep = done(self.graded(row)) and keep
                if not keep:
                    return False
                for task in _take(queue, len(finished)):
                    pending.add(pool.submit(self.call, task))
            return True
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def call(self, task: _Task) -> dict[str, Any] | None:
        """Ask the model once; a failure becomes the row's `error`; None when stopped."""
        row: dict[str, Any] = {
            "model": task.model, "think_budget": task.budget, "prompt_id": task.prompt_id,
            "prompt": task.prompt, "sample": task.sample, "kind": task.kind,
            "expected": task.expected, "_grader": task.grader,
        }
        if self.model_error is not None:
            row["error"] = self.model_error
            return row
        opts = self.options
        text = math_prompt(task.prompt) if task.kind == "math" else task.prompt
        kwargs: dict[str, Any] = {}
        if opts["max_tokens"] is not None:
            kwargs["max_tokens"] = opts["max_tokens"]
        if opts["temperature"] is not None:
            kwargs["temperature"] = opts["temperature"]
        if opts["seed"] is not None:
            kwargs["seed"] = opts["seed"] + task.sample
        if opts["think"] is not None:
            kwargs["think"] = opts["think"]
        if task.budget is not None:
            kwargs["think_budget"] = task.budget
        t0 = time.perf_counter()
        try:
            # Streamed and registered, so that Stop ends it at once (see `_watch`).
            stream = self.client.chat(text, task.model, stream=True,
                                      loop_guard=opts["loop_guard"], **kwargs)
            with self._lock:
                self._active.add(stream)
            try:
                if self.stop is not None and self.stop.is_set():
                    stream.stop()
                reply = stream.collect()
            finally:
                with self._lock:
                    self._active.discard(stream)
            if stream.stopped and self.stop is not None and self.stop.is_set():
                return None  # the run is being stopped: this reply is not a result
        except ModelNotFound as exc:
            # No point asking again: the model's other rows fail the same way, without calls.
            self.model_error = f"{type(exc).__name__}: {exc}"
            row["error"] = self.model_error
            row["total_s"] = time.perf_counter() - t0
            return row
        except Exception as exc:  # recorded in the row: one failed call never stops the run
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["total_s"] = time.perf_counter() - t0
            return row
        row.update(_reply_fields(reply))
        return row

    @staticmethod
    def graded(row: dict[str, Any]) -> dict[str, Any]:
        grader = row.pop("_grader", None)
        if row.get("error"):
            row["correct"] = None
        else:
            row["correct"] = grade(row.get("answer", ""), row.get("expected"), row["kind"],
                                   grader, thinking=row.get("thinking", ""))
            row["final"] = final_answer(row.get("answer", ""), row["kind"], grader,
                                        thinking=row.get("thinking", ""))
        return {c: row.get(c) for c in COLUMNS}


def _take(it: Iterable[_Task], n: int) -> list[_Task]:
    return list(itertools.islice(it, n))


def _reply_fields(reply: Reply) -> dict[str, Any]:
    s = reply.stats
    return {
        "answer": reply.answer,
        "thinking": reply.thinking,
        "ttft_s": s.ttft,
        "tokens_per_s": s.tokens_per_s,
        "thinking_tokens": s.thinking_tokens,
        "answer_tokens": s.answer_tokens,
        "load_s": s.load_time,
        "total_s": s.total_time,
        "budget_hit": reply.budget_hit,
        "done_reason": reply.done_reason,
        "error": None,
    }


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="call",
                desc="compare", leave=True)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(rows, columns=COLUMNS)
    return _coerce(df)


def _coerce(df: pd.DataFrame) -> pd.DataFrame:
    """Give every column its type, whether the rows came from replies or from a file."""
    import pandas as pd

    df = df.copy()
    for col in _TEXT:
        empty = "" if col in ("answer", "thinking") else None
        df[col] = pd.Series([empty if _blank(v) else str(v) for v in df[col]], index=df.index,
                            dtype=object)
    df["sample"] = pd.to_numeric(df["sample"]).astype("int64")
    for col in _FLOAT:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in _INT:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in _BOOL:
        df[col] = pd.Series([_as_bool(v) for v in df[col]], index=df.index, dtype=object)
    return df


def _blank(v: Any) -> bool:
    import pandas as pd

    if isinstance(v, str):
        return v == ""
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):  # not a scalar
        return False


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if _blank(v):
        return None
    s = str(v).strip().lower()
    if s in ("true", "1", "1.0"):
        return True
    if s in ("false", "0", "0.0"):
        return False
    return None


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    return {c: ("" if _blank(row.get(c)) else row.get(c)) for c in COLUMNS}


class _Sink:
    """Where finished rows go as they complete: a CSV appended row by row, or a Parquet file
    rewritten atomically after each row (Parquet cannot be appended to)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise ConfigurationError(
                f"out={str(path)!r}: use a .csv or .parquet file name")
        self.parquet = suffix == ".parquet"
        if self.parquet:
            from importlib.util import find_spec

            if find_spec("pyarrow") is None:
                raise ConfigurationError(
                    f"out={str(path)!r}: writing Parquet needs pyarrow (`pip install pyarrow`); "
                    "or use a .csv file")
        self._fh: Any = None
        self._writer: Any = None
        self._rows: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """Rows already in the file (the last row wins when a key appears twice)."""
        import pandas as pd

        if not self.path.exists() or self.path.stat().st_size == 0:
            return []
        if self.parquet:
            df = pd.read_parquet(self.path)
        else:
            df = pd.read_csv(self.path, dtype={c: str for c in _TEXT}, keep_default_na=False,
                             na_values={c: [""] for c in (*_FLOAT, *_INT, *_BOOL)})
        older = [c for c in COLUMNS if c not in _ADDED]
        if list(df.columns) == older:  # written before budgets: read as rows without one
            df = df.reindex(columns=COLUMNS)
        if list(df.columns) != COLUMNS:
            raise ConfigurationError(
                f"{self.path} is not a dskit comparison file (its columns are "
                f"{list(df.columns)}): choose another `out` file, or pass resume=False to "
                "overwrite it")
        df = _coerce(df[COLUMNS]).drop_duplicates(list(_KEY), keep="last")
        return df.to_dict("records")

    def open(self, kept: list[dict[str, Any]]) -> None:
        """Start writing: the file is rewritten with `kept` (atomically), then rows append."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows = list(kept)
        if self.parquet:
            return
        # Rewritten rather than appended to, so a rerun never leaves a key twice in the file.
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for row in kept:
                writer.writerow(_csv_row(row))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._fh = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=COLUMNS)

    def write(self, row: dict[str, Any]) -> None:
        if self.parquet:
            self._rows.append(row)
            tmp = self.path.with_suffix(".parquet.tmp")
            _frame(self._rows).to_parquet(tmp, index=False)
            os.replace(tmp, self.path)
            return
        self._writer.writerow(_csv_row(row))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


SUMMARY_COLUMNS = [
    "model", "think_budget", "n", "errors", "truncated", "looped", "budget_hit", "pass@1",
    "pass@1_low", "pass@1_high", "cons@k", "k", "tokens_per_s", "tokens_per_s_std", "ttft_s",
    "thinking_tokens", "answer_tokens", "s_per_correct", "total_s", "load_s",
]


def _groups(df: pd.DataFrame) -> Any:
    """The rows of each (model, think_budget), in the order they first appear."""
    if "think_budget" not in df.columns:
        df = df.assign(think_budget=None)
    return df.groupby(["model", "think_budget"], sort=False, dropna=False)


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
    votes = []
    for _, g in ok.groupby("prompt_id", sort=False):
        if g["final"].isna().all() and not g["correct"].any():
            votes.append(0.0)  # no sample gave a final answer: the vote has none either
            continue
        if g["final"].isna().all():
            return math.nan  # a kind without final answers to vote on (a text grader)
        # As text: rows read back from a file may hold the finals as numbers.
        finals = [None if _blank(f) else str(f) for f in g["final"]]
        winner = statistics.majority(finals)
        # A sample's verdict depends only on its final answer: the winner's is any of theirs.
        votes.append(0.0 if winner is None else
                     float(bool(g["correct"].iloc[finals.index(winner)])))
    return float(np.mean(votes)) if votes else math.nan


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per model (and thinking budget): rows `n`, `errors`, `truncated` (cut by the token
    limit), `looped` (stopped by the loop guard), `budget_hit` (reasoning cut at the budget),
    `pass@1` with its 95% interval `pass@1_low`..`pass@1_high`, `cons@k` over `k` samples,
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
    for (model, budget), g in _groups(df):
        ok = g[g["error"].isna()] if "error" in g else g
        outcomes = list(_outcomes(g).values())
        low, high = statistics.pass1_interval(outcomes)
        correct = sum(float(o.sum()) for o in outcomes)
        total = pd.to_numeric(ok["total_s"], errors="coerce")
        tps = pd.to_numeric(ok["tokens_per_s"], errors="coerce")

        def mean(col: str, rows: pd.DataFrame = ok) -> float:
            if col not in rows:
                return math.nan
            return float(pd.to_numeric(rows[col], errors="coerce").astype("float64").mean())

        out.append({
            "model": model,
            "think_budget": None if _blank(budget) else int(budget),
            "n": len(g),
            "errors": len(g) - len(ok),
            "truncated": int((ok["done_reason"] == "length").sum()),
            "looped": int((ok["done_reason"] == "repetition").sum()),
            "budget_hit": sum(1 for v in ok.get("budget_hit", []) if _as_bool(v)),
            "pass@1": statistics.pass1(outcomes),
            "pass@1_low": low,
            "pass@1_high": high,
            "cons@k": _cons(g),
            "k": max((len(o) for o in outcomes), default=0),
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
    table["think_budget"] = table["think_budget"].astype("Int64")
    return table


def is_sweep(df: pd.DataFrame) -> bool:
    """Whether rows or a summary come from a think_budget sweep (some row has a budget)."""
    return "think_budget" in df and bool(df["think_budget"].notna().any())


#: Summary columns that say something only in a think_budget sweep.
SWEEP_ONLY = ("think_budget", "budget_hit")


def for_display(table: pd.DataFrame) -> pd.DataFrame:
    """A summary as shown to a person: without the sweep-only columns unless it is a sweep
    (they would only say <NA> and False); in a sweep the row without a budget says "none"."""
    if not is_sweep(table):
        return table.drop(columns=[c for c in SWEEP_ONLY if c in table.columns])
    return table.assign(think_budget=["none" if _blank(b) else str(int(b))
                                      for b in table["think_budget"]])


def _label(row: dict[str, Any], sweep: bool = False) -> str:
    """The model, with its thinking budget when it has one (or when others in a sweep do)."""
    budget = row.get("think_budget")
    if budget is None or _blank(budget):
        return f"{row['model']} (no think_budget)" if sweep else row["model"]
    return f"{row['model']} (think_budget={int(budget)})"


def describe(summary_df: pd.DataFrame) -> str:
    """What a `summary()` shows, in sentences made from its numbers (for a lesson's page)."""
    said = []
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
        hit = (f"; the reasoning hit its budget in {int(row['budget_hit'])}"
               if row.get("budget_hit") else "")
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
    return " ".join(said)


def _overlapping(rows: list[dict[str, Any]], sweep: bool) -> tuple[str, str] | None:
    """The first two rows whose pass@1 intervals overlap, by label."""
    scored = [r for r in rows if not math.isnan(r.get("pass@1_low", math.nan))]
    for i, a in enumerate(scored):
        for b in scored[i + 1:]:
            if a["pass@1_low"] <= b["pass@1_high"] and b["pass@1_low"] <= a["pass@1_high"]:
                return _label(a, sweep), _label(b, sweep)
    return None


Side = str | tuple[str, "int | None"]


def paired(df: pd.DataFrame, a: Side, b: Side, *, level: float = statistics.LEVEL,
           seed: int = 0) -> statistics.Paired:
    """Is the difference between `a` and `b` real? Each is a model name, or a
    `(model, think_budget)` pair to compare budgets (`(model, None)`: no budget).

    Uses the prompts both answered and were graded on; returns a `dskit.evals.statistics.Paired`
    (difference in pass@1, its interval, a sign-flip test) whose text is a plain sentence.
    """
    outcomes_a, outcomes_b = _side(df, a), _side(df, b)
    shared = [pid for pid in outcomes_a if pid in outcomes_b]
    return statistics.paired(_side_label(a), _side_label(b), [outcomes_a[p] for p in shared],
                             [outcomes_b[p] for p in shared], level=level, seed=seed)


def _side_label(side: Side) -> str:
    if isinstance(side, tuple):
        return _label({"model": side[0], "think_budget": side[1]}, sweep=True)
    return side


def _side(df: pd.DataFrame, side: Side) -> dict[str, np.ndarray]:
    """The outcomes per prompt of one side of a paired comparison."""
    has_budgets = "think_budget" in df
    if isinstance(side, tuple):
        model, budget = side
        rows = df[df["model"] == model]
        if has_budgets:
            rows = rows[rows["think_budget"].isna()] if budget is None else \
                rows[rows["think_budget"] == budget]
    else:
        model = side
        rows = df[df["model"] == model]
        if has_budgets and rows["think_budget"].nunique(dropna=False) > 1:
            raise ConfigurationError(
                f"{model} was run with several think_budgets: name one, e.g. ({model!r}, "
                f"{rows['think_budget'].dropna().iloc[0]})")
    if rows.empty:
        raise ConfigurationError(f"no rows for {_side_label(side)}: the comparison has "
                                 f"{sorted(df['model'].unique())}")
    return _outcomes(rows)


class CompareFunction:
    """`compare` with `summary`, `describe` and `paired` beside it: `ds.compare(...)` runs,
    `ds.compare.summary(rows)` summarises, `ds.compare.describe(summary)` puts it in words,
    `ds.compare.paired(rows, a, b)` tests a difference (what `import dskit as ds` exports as
    `ds.compare`)."""

    summary = staticmethod(summary)
    describe = staticmethod(describe)
    paired = staticmethod(paired)

    def __init__(self) -> None:
        functools.update_wrapper(self, compare)  # help() and the signature are compare's

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return compare(*args, **kwargs)
