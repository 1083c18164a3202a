"""`compare()`: the same prompts on several models, k samples each, as one tidy DataFrame.

Scheduling is model-major: all the work for one model runs before the next model starts, so
each model is loaded once (on a GPU that holds one size at a time, a naive prompt-major loop
reloads a model for every prompt). Rows are appended to `out` as they finish, a
KeyboardInterrupt returns the rows finished so far, and a rerun with the same `out` resumes.
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

from .client import Client, default_client
from .errors import ComparisonFailed, ConfigurationError, ModelNotFound
from .grading import grade
from .prompts import load
from .reasoning import math_prompt

if TYPE_CHECKING:
    import pandas as pd

    from .reply import Reply

#: The columns of a comparison, in order.
COLUMNS = [
    "model", "prompt_id", "prompt", "sample", "kind", "answer", "thinking", "expected",
    "correct", "ttft_s", "tokens_per_s", "thinking_tokens", "answer_tokens", "load_s",
    "total_s", "done_reason", "error",
]
_KEY = ("model", "prompt_id", "sample")
_TEXT = ("model", "prompt_id", "prompt", "kind", "answer", "thinking", "expected",
         "done_reason", "error")
_FLOAT = ("ttft_s", "tokens_per_s", "load_s", "total_s")
_INT = ("thinking_tokens", "answer_tokens")


@dataclass(frozen=True)
class _Task:
    order: int
    model: str
    prompt_id: str
    prompt: str
    sample: int
    kind: str
    expected: str | None
    grader: Any

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.model, self.prompt_id, self.sample)


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
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: bool = True,
    parallel: int = 1,
    stop: threading.Event | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Ask every model every prompt `samples` times; one row per (model, prompt, sample).

    - `prompts`: anything `dskit.prompts.load` takes: a list of strings, a DataFrame with
      `prompt` (and `expected`, `kind`), or a built-in set: "cup", "cup-en", "maths".
      Maths prompts get DeepSeek's directive (`math_prompt`) and are graded by value: the last
      `\\boxed{}` of the answer, else its last number, compared numerically or symbolically.
    - `max_tokens`, `temperature`, `think`: passed to every chat (None: the library's DeepSeek
      defaults). With `seed`, sample i uses `seed + i`, so samples differ but a rerun repeats.
    - `out`: a `.csv` (or `.parquet`, needs pyarrow) file each finished row is written to at
      once; with `resume=True` the rows already in it (without an error) are not run again
      and come back in the result.
    - `parallel`: requests in flight at once within one model's group. Helps only on servers
      that run requests concurrently (Ollama with OLLAMA_NUM_PARALLEL, vLLM, SGLang); the
      embedded backend runs one request per model at a time, so there it only adds threads.
    - `stop`: an event that ends the run after the current call (for widgets and threads);
      `on_row(row)` is called as each row finishes.
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
    table = load(prompts)
    client = client or default_client()
    sink = _Sink(Path(out)) if out is not None else None

    tasks: list[_Task] = []
    for model in model_list:  # model-major: each model's work is grouped
        for row in table.itertuples(index=False):
            for k in range(samples):
                tasks.append(_Task(len(tasks), model, row.prompt_id, row.prompt, k, row.kind,
                                   row.expected, row.grader))
    order = {t.key: t.order for t in tasks}

    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    kept: list[dict[str, Any]] = []  # what stays in `out`: all but this run's failed rows
    if sink is not None and resume:
        for r in sink.read():
            key = (r["model"], r["prompt_id"], int(r["sample"]))
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
            runner = _GroupRunner(client, group, max_tokens=max_tokens, temperature=temperature,
                                  seed=seed, think=think)

            def done(row: dict[str, Any]) -> bool:
                """Keep a finished row; False when the run must stop."""
                key = (row["model"], row["prompt_id"], row["sample"])
                rows[key] = row
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

    df = _frame(sorted(rows.values(), key=lambda r: order[(r["model"], r["prompt_id"],
                                                           int(r["sample"]))]))
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

    def __init__(self, client: Client, tasks: list[_Task], **options: Any) -> None:
        self.client, self.tasks, self.options = client, tasks, options
        self.model_error: str | None = None

    def run(self, done: Callable[[dict[str, Any]], bool], parallel: int) -> bool:
        """Run the tasks, handing each row to `done`; False when `done` asked to stop."""
        if parallel == 1:
            return all(done(self.one(task)) for task in self.tasks)
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dskit-compare")
        pending: set[Future[dict[str, Any]]] = set()
        queue = iter(self.tasks)
        try:
            for task in _take(queue, parallel):
                pending.add(pool.submit(self.call, task))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                keep = True
                for fut in finished:  # every finished row is kept, even when asked to stop
                    # grading happens here, in the calling thread (math-verify uses signals)
                    keep = done(self.graded(fut.result())) and keep
                if not keep:
                    return False
                for task in _take(queue, len(finished)):
                    pending.add(pool.submit(self.call, task))
            return True
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def one(self, task: _Task) -> dict[str, Any]:
        return self.graded(self.call(task))

    def call(self, task: _Task) -> dict[str, Any]:
        """Ask the model once; a failure becomes the row's `error`."""
        row: dict[str, Any] = {
            "model": task.model, "prompt_id": task.prompt_id, "prompt": task.prompt,
            "sample": task.sample, "kind": task.kind, "expected": task.expected,
            "_grader": task.grader,
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
        t0 = time.perf_counter()
        try:
            reply = self.client.chat(text, task.model, **kwargs)
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
    df["correct"] = pd.Series([_as_bool(v) for v in df["correct"]], index=df.index, dtype=object)
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
                             na_values={c: [""] for c in (*_FLOAT, *_INT, "correct")})
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


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per model: rows `n`, `errors`, `truncated` (replies cut by the token limit), `pass@1`,
    speed (mean and std tokens/s), mean TTFT, mean thinking tokens, mean total time and the
    load time.

    pass@1 is DeepSeek's: for each prompt with an expected answer, the mean correctness over
    its k samples, then the mean over prompts. Rows with an error are left out of it (see
    `errors`); NaN when no prompt could be graded. A truncated reply counts as it was graded
    (usually wrong: no final answer): `truncated` says how many there were, so a low pass@1
    caused by a small `max_tokens` is never mistaken for a weak model.
    """
    import pandas as pd

    out = []
    for model, g in df.groupby("model", sort=False):
        ok = g[g["error"].isna()] if "error" in g else g
        graded = ok[ok["correct"].notna()]
        if len(graded):
            per_prompt = graded.assign(correct=graded["correct"].astype(float)).groupby(
                "prompt_id")["correct"].mean()
            pass1 = float(per_prompt.mean())
        else:
            pass1 = math.nan
        tps = pd.to_numeric(ok["tokens_per_s"], errors="coerce")
        out.append({
            "model": model,
            "n": len(g),
            "errors": len(g) - len(ok),
            "truncated": int((ok["done_reason"] == "length").sum()),
            "pass@1": pass1,
            "tokens_per_s": tps.mean(),
            "tokens_per_s_std": tps.std(),
            "ttft_s": pd.to_numeric(ok["ttft_s"], errors="coerce").mean(),
            "thinking_tokens": pd.to_numeric(ok["thinking_tokens"], errors="coerce").astype(
                "float64").mean(),
            "total_s": pd.to_numeric(ok["total_s"], errors="coerce").mean(),
            "load_s": pd.to_numeric(ok["load_s"], errors="coerce").max(),
        })
    cols = ["model", "n", "errors", "truncated", "pass@1", "tokens_per_s", "tokens_per_s_std",
            "ttft_s", "thinking_tokens", "total_s", "load_s"]
    return pd.DataFrame(out, columns=cols)


def describe(summary_df: pd.DataFrame) -> str:
    """What a `summary()` shows, in sentences made from its numbers (for a lesson's page)."""
    said = []
    for row in summary_df.to_dict("records"):
        graded = int(row["n"]) - int(row["errors"])
        score = ("no graded answers" if math.isnan(row["pass@1"])
                 else f"pass@1 {row['pass@1']:.2f}")
        cut = (f", {int(row['truncated'])} of them cut off by the token limit (no final answer)"
               if row["truncated"] else "")
        failed = f"; {int(row['errors'])} calls failed" if row["errors"] else ""
        said.append(f"{row['model']}: {score} over {graded} answers{cut}{failed}.")
    speeds = summary_df.dropna(subset=["tokens_per_s"]).sort_values("tokens_per_s")
    if len(speeds) >= 2:
        slow, fast = speeds.iloc[0], speeds.iloc[-1]
        said.append(f"{fast['model']} generated {fast['tokens_per_s'] / slow['tokens_per_s']:.1f}× "
                    f"as many tokens per second as {slow['model']} ({fast['tokens_per_s']:.1f} vs "
                    f"{slow['tokens_per_s']:.1f}).")
    if len(summary_df):
        n = int(summary_df["n"].max())
        said.append(f"With {n} answers per model one answer moves pass@1 by {1 / n:.2f}: a "
                    "difference of a few answers is noise, not a verdict on the model.")
    return " ".join(said)


class CompareFunction:
    """`compare` with `summary` and `describe` beside it: `ds.compare(...)` runs,
    `ds.compare.summary(rows)` summarises, `ds.compare.describe(summary)` puts it in words (what
    `import dskit as ds` exports as `ds.compare`)."""

    summary = staticmethod(summary)
    describe = staticmethod(describe)

    def __init__(self) -> None:
        functools.update_wrapper(self, compare)  # help() and the signature are compare's

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return compare(*args, **kwargs)
