"""`compare()`: the same prompts on several models, k samples each, as one tidy DataFrame.

Scheduling is model-major: all the work for one model (every thinking budget and minimum of a
sweep included) runs before the next model starts, so each model is loaded once (on a GPU that
holds one size at a time, a naive prompt-major loop reloads a model for every prompt). Rows are
appended to `out` as they finish, a KeyboardInterrupt returns the rows finished so far, and a
rerun with the same `out` resumes. The rows and their file are `results`; what they show,
`summary`.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..backends.base import LOW_CONFIDENCE
from ..client import Client, cpu_load_meter, default_client
from ..conversation.exits import exits
from ..conversation.stream import Watch, logprobs_setting
from ..errors import ComparisonFailed, ConfigurationError, ModelNotFound
from ..reasoning.plan import (
    DEFAULT_MAX_EXTENSIONS,
    ReasoningSupport,
    Traits,
    check_budget,
    check_exits,
    check_think_min,
    plan_reasoning,
)
from ..reasoning.think import math_prompt
from .confidence import PAPER_WINDOW, GroupWatch, measure
from .grading import final_answer, grade
from .prompts import load
from .results import COLUMNS, Key, ResultsFile, blank, frame, grader_name, key_of
from .summary import anatomy, anatomy_traces, describe, paired, pass_at_k, summary
from .tables import readable
from .voting import describe_votes, votes

T = TypeVar("T")

if TYPE_CHECKING:
    import pandas as pd

    from ..reply import Reply


@dataclass(frozen=True)
class _Task:
    order: int
    model: str
    budget: int | None
    think_min: int | None
    prompt_id: str
    prompt: str
    sample: int
    kind: str
    expected: str | None
    grader: Any

    @property
    def key(self) -> Key:
        return (self.model, self.budget, self.think_min, self.prompt_id, self.sample)


def _sweep(given: Any, check: Callable[[object], int | None], name: str, none: str
           ) -> list[int | None]:
    """The values of a sweep of `name`: one value or a list of them, each `check`ed, none
    listed twice (`none` says what stands for "none" in the message)."""
    values = list(given) if isinstance(given, (list, tuple)) else [given]
    checked = [check(v) for v in values]
    if not checked:
        raise ConfigurationError(f"{name}=[]: give at least one value (or {none})")
    if len(set(checked)) != len(checked):
        raise ConfigurationError(f"a {name} is listed twice: {values}")
    return checked


def _budgets(think_budget: Any) -> list[int | None]:
    """The budgets of a sweep (None: no budget)."""
    return _sweep(think_budget, check_budget, "think_budget", "None for no budget")


def _minimums(think_min: Any) -> list[int | None]:
    """The thinking minimums of a sweep (None or 0: none)."""
    return _sweep(think_min, check_think_min, "think_min", "0 for none")


def compare(models: str | Sequence[str], prompts: Any, samples: int = 1, *,
            client: Client | None = None, max_tokens: int | None = None,
            temperature: float | None = None, seed: int | None = None,
            think: bool | None = None, think_budget: int | Sequence[int | None] | None = None,
            exit_at: Sequence[int] | None = None,
            think_min: int | Sequence[int | None] | None = None,
            max_extensions: int = DEFAULT_MAX_EXTENSIONS, extension: str | None = None,
            effort: str | None = None, loop_guard: bool = True, logprobs: bool = False,
            top_logprobs: int | None = None,
            confidence_window: int = PAPER_WINDOW, early_stop: str | None = None,
            warmup: int | None = None, keep: float = 0.9,
            out: str | os.PathLike[str] | None = None,
            resume: bool = True, progress: bool = True, parallel: int = 1,
            stop: threading.Event | None = None,
            on_row: Callable[[dict[str, Any]], None] | None = None) -> pd.DataFrame:
    """Ask every model every prompt `samples` times; one row per (model, think_budget,
    think_min, prompt, sample).

    - `prompts`: anything `ds.prompts.load` takes: a list of strings, a DataFrame with
      `prompt` (and `expected`, `kind`), a built-in set ("cup", "cup-en", "maths"), a GSM8K /
      MATH / AIME file or a `datasets` object (`ds.prompts.load(path, n=50)` to take a sample).
      Maths prompts get DeepSeek's directive (`math_prompt`) and are graded by value: the last
      `\\boxed{}` of the answer, else its last number, compared numerically or symbolically.
    - `max_tokens`, `temperature`, `think`: passed to every chat (None: the library's DeepSeek
      defaults). With `seed`, sample i uses `seed + i`, so samples differ but a rerun repeats.
    - `think_budget`: cap the reasoning at N tokens (0: answer without reasoning); a list
      sweeps budgets, e.g. `[0, 64, 256, None]`, each model still loaded once.
    - `exit_at`: the same curve from one trace per sample, e.g. `[0, 64, 128, 256]`: each
      sample's reasoning is generated once (the `think_budget` None row), then closed at each
      checkpoint exactly as that budget closes it, and only the answer is generated from
      there. Rows carry the checkpoint as their `think_budget`, so `summary`, `paired` and
      `plots.accuracy_vs_thinking` read them as a sweep. Not with `think_budget` or `think_min`.
    - `think_min`: extend reasoning that closes before N tokens with "Wait" / "等等" (s1's
      budget forcing), at most `max_extensions` times, with `extension` instead of the default
      word if given; a list sweeps minimums like budgets, e.g. `[0, 128, 256]` (0: none), and
      with both lists every pair is run. Rows say how many times they were extended.
    - `effort`: an effort level ("low", "medium", "high", "max") for every chat, where the
      server documents one (DeepSeek's platform: low, high, max; docs/thinking.md); a server or
      model without it fails the rows with `EffortUnsupported`.
    - `loop_guard`: stop replies that fall into degenerate repetition (on by default:
      `done_reason == "repetition"`, counted as `looped` in the summary).
    - `logprobs` (and `top_logprobs`, 5 by default): each reply's tokens' log-probabilities;
      rows carry DeepConf's confidence measures (`conf_mean`, `conf_lowest`, `conf_bottom`,
      `conf_tail`, over `confidence_window`-token groups; `dskit.evals.confidence`), which
      `ds.compare.votes` reads.
    - `early_stop="confidence"` (DeepConf online; implies `logprobs`): per prompt, the first
      `warmup` samples (a quarter of them, at least 2, by default) run whole and set a
      threshold that keeps the share `keep` of them (0.9: DeepConf-high; 0.1: DeepConf-low);
      each later sample stops as soon as a `confidence_window`-token group falls below it
      (`done_reason == "low-confidence"`, counted as `low_conf`; no vote).
    - `out`: a `.csv` (or `.parquet`, needs pyarrow) file each finished row is written to at
      once; with `resume=True` the rows already in it (without an error) are not run again.
    - `parallel`: requests in flight at once within one model's group: helps only on servers
      that run requests concurrently (Ollama with OLLAMA_NUM_PARALLEL, vLLM, SGLang).
    - `stop`: an event that ends the run (widgets, threads): replies in flight stop at once and
      are not kept; `on_row(row)` is called as each row finishes.
    - A failed call becomes a row with `error` set; the run goes on. An unknown model fails all
      its rows at once. Ctrl-C stops the run and returns the finished rows with
      `df.attrs["interrupted"] = True`. `summary(df)` gives pass@1 and speed per model.
    """
    model_list = _models(models, samples, parallel)
    budgets, minimums = _budgets(think_budget), _minimums(think_min)
    stopping = _early_stop(early_stop, samples, warmup, keep, confidence_window, exit_at)
    if stopping is not None:
        logprobs = True
    top = logprobs_setting(logprobs, top_logprobs, exit_at)
    if exit_at is not None:
        if think_budget is not None or any(minimums):
            raise ConfigurationError("exit_at with think_budget or think_min: each checkpoint "
                                     "of exit_at is a budget already; give exit_at alone")
        budgets = [None, *check_exits(exit_at)]
    for least in minimums:  # every pair must make sense before anything runs
        for budget in budgets:
            plan_reasoning(Traits(), think, ReasoningSupport(), budget, least, max_extensions,
                           extension, effort=effort)
    tasks = _tasks(model_list, budgets, minimums, load(prompts), samples)
    client = client or default_client()
    run = _Run(tasks, ResultsFile(Path(out)) if out is not None else None, resume)
    meter = cpu_load_meter(client)
    run.execute(model_list, _GroupRunner.maker(client, stop, max_tokens=max_tokens,
                                               temperature=temperature, seed=seed,
                                               think=think, effort=effort,
                                               loop_guard=loop_guard,
                                               max_extensions=max_extensions,
                                               extension=extension,
                                               exits=exit_at is not None, top_logprobs=top,
                                               window=confidence_window, stopping=stopping),
                parallel, progress, on_row)
    cpu_load = meter()
    settings = {"backend": client.name, "samples": samples, "max_tokens": max_tokens,
                "temperature": temperature, "seed": seed, "think": think}
    if effort is not None:
        settings["effort"] = effort
    if top is not None:
        settings.update(top_logprobs=top, confidence_window=confidence_window)
    if stopping is not None:
        settings.update(early_stop=early_stop, warmup=stopping.warmup, keep=keep)
    if any(minimums):
        settings.update(max_extensions=max_extensions, extension=extension)
    if exit_at is not None:
        settings["exit_at"] = list(budgets[1:])
    # How busy other programs kept the CPU meanwhile: describe() warns when the speeds and
    # times of this run say more about that load than about the models.
    return run.result(settings, out, cpu_load)


@dataclass(frozen=True)
class _EarlyStop:
    """DeepConf's online stop: `warmup` whole samples per prompt set a threshold keeping the
    share `keep` of them; later samples stop when a `window`-token group falls below it."""

    warmup: int
    keep: float
    window: int

    def threshold(self, lowest: Sequence[float]) -> float:
        """The warm-up traces' lowest group confidences' (1 − keep) quantile."""
        import numpy as np

        return float(np.quantile(np.asarray(lowest, dtype=float), 1.0 - self.keep))

    def watch(self, threshold: float) -> Watch:
        """A `ChatStream` watch that stops a reply once a group falls below `threshold`."""
        group = GroupWatch(self.window)
        seen = [0]

        def check(reply: Reply) -> tuple[str, str] | None:
            for token in reply.tokens[seen[0]:]:
                group.feed(token)
            seen[0] = len(reply.tokens)
            if group.low(threshold):
                return LOW_CONFIDENCE, (
                    f"Stopped early (DeepConf): a {self.window}-token stretch's confidence "
                    f"{group.lowest:.2f} fell below the warm-up threshold {threshold:.2f}.")
            return None

        return check


def _early_stop(early_stop: str | None, samples: int, warmup: int | None, keep: float,
                window: int, exit_at: object) -> _EarlyStop | None:
    """The early-stop setting, checked; None without one."""
    if early_stop is None:
        return None
    if early_stop != "confidence":
        raise ConfigurationError(f"early_stop={early_stop!r}: the one early stop is "
                                 "\"confidence\" (DeepConf), or None")
    if exit_at is not None:
        raise ConfigurationError("early_stop with exit_at: give one of them")
    first = max(2, samples // 4) if warmup is None else warmup
    if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first < samples:
        raise ConfigurationError(
            f"early_stop needs warm-up samples and samples after them: warmup={first!r} with "
            f"samples={samples} (give samples=8 or more, or warmup from 1 to samples − 1)")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ConfigurationError(f"keep={keep!r}: give the share of warm-up traces the "
                                 "threshold keeps, above 0 and at most 1 (0.9: DeepConf-high, "
                                 "0.1: DeepConf-low)")
    GroupWatch(window)  # checks the window
    return _EarlyStop(first, float(keep), window)


def _models(models: str | Sequence[str], samples: int, parallel: int) -> list[str]:
    """The models asked for, after checking the run's numbers."""
    model_list = [models] if isinstance(models, str) else list(models)
    if not model_list:
        raise ConfigurationError("compare() needs at least one model")
    if len(set(model_list)) != len(model_list):
        raise ConfigurationError(f"a model is listed twice: {model_list}")
    if samples < 1:
        raise ConfigurationError(f"samples must be at least 1, got {samples}")
    if parallel < 1:
        raise ConfigurationError(f"parallel must be at least 1, got {parallel}")
    return model_list


def _tasks(models: list[str], budgets: list[int | None], minimums: list[int | None],
           table: pd.DataFrame, samples: int) -> list[_Task]:
    """Every call, model-major: each model's work (every budget and minimum of a sweep) is
    grouped."""
    tasks: list[_Task] = []
    for model in models:
        for budget, least in itertools.product(budgets, minimums):
            for row in table.itertuples(index=False):
                for k in range(samples):
                    tasks.append(_Task(len(tasks), model, budget, least, row.prompt_id,
                                       row.prompt, k, row.kind, row.expected, row.grader))
    return tasks


class _Run:
    """One comparison's rows: those resumed from its file, then each finished call's."""

    def __init__(self, tasks: list[_Task], sink: ResultsFile | None, resume: bool) -> None:
        self.tasks, self.sink = tasks, sink
        self.order = {t.key: t.order for t in tasks}
        self.rows: dict[Key, dict[str, Any]] = {}
        self.kept: list[dict[str, Any]] = []  # what stays in `out`: all but this run's failed
        if sink is not None and resume:
            for r in sink.read():
                key = key_of(r)
                if key in self.order and not blank(r["error"]):
                    continue  # failed before: asked again, and its old row is dropped
                self.kept.append(r)
                if key in self.order:
                    self.rows[key] = r
        self.todo = [t for t in tasks if t.key not in self.rows]
        self.interrupted = False

    def execute(self, models: list[str], runner: Callable[[list[_Task]], _GroupRunner],
                parallel: int, progress: bool,
                on_row: Callable[[dict[str, Any]], None] | None) -> None:
        """Run what is left, one model's group after the other, until done or stopped."""
        bar = _progress_bar(len(self.tasks), len(self.tasks) - len(self.todo), progress)
        try:
            if self.sink is not None and self.todo:
                self.sink.open(self.kept)
            for model in models:
                group = [t for t in self.todo if t.model == model]
                if group:
                    bar.set_description(model)
                    if not self._group(runner(group), bar, parallel, on_row):
                        self.interrupted = True
                        break
        finally:
            bar.close()
            if self.sink is not None:
                self.sink.close()

    def _group(self, runner: _GroupRunner, bar: Any, parallel: int,
               on_row: Callable[[dict[str, Any]], None] | None) -> bool:
        """One model's tasks; False when the run was stopped (Stop, or Ctrl-C)."""

        def done(row: dict[str, Any]) -> bool:
            """Keep a finished row; False when the run must stop."""
            self.keep(row, on_row)
            bar.update(1)
            return runner.stop is None or not runner.stop.is_set()

        try:
            return runner.run(done, parallel)
        except KeyboardInterrupt:
            return False

    def keep(self, row: dict[str, Any], on_row: Callable[[dict[str, Any]], None] | None
             ) -> None:
        """A finished row: into the result, the file and the caller's hands."""
        self.rows[key_of(row)] = row
        if self.sink is not None:
            self.sink.write(row)
        if on_row is not None:
            on_row(row)

    def result(self, settings: dict[str, Any], out: Any, cpu_load: Any = None) -> pd.DataFrame:
        """The rows in task order, with what a report needs in `attrs`."""
        df = frame(sorted(self.rows.values(), key=lambda r: self.order[key_of(r)]))
        df.attrs["interrupted"] = self.interrupted
        df.attrs["cpu_load"] = cpu_load
        df.attrs["skipped"] = len(self.tasks) - len(self.todo)
        # What a report lists as this run's settings (None: the library's DeepSeek defaults).
        df.attrs["settings"] = settings
        if self.interrupted:
            warnings.warn(f"compare() interrupted: returning the {len(df)} of "
                          f"{len(self.tasks)} rows finished so far"
                          + (f" (also in {out}; rerun to resume)" if out else ""), stacklevel=3)
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

    @classmethod
    def maker(cls, client: Client, stop: threading.Event | None,
                **options: Any) -> Callable[[list[_Task]], _GroupRunner]:
        """A maker of runners for one model's tasks with these chat options."""
        return lambda tasks: cls(client, tasks, stop, **options)

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

    def _units(self) -> list[list[_Task]]:
        """What one call runs: a task, or with early exits every checkpoint of one sample
        (its trace is generated once for all of them), or with an early stop every sample of
        one prompt (the warm-up sets the threshold for the rest)."""
        if self.options.get("stopping") is not None:
            by_prompt: dict[tuple[Any, ...], list[_Task]] = {}
            for task in self.tasks:
                key = (task.budget, task.think_min, task.prompt_id)
                by_prompt.setdefault(key, []).append(task)
            return [sorted(unit, key=lambda t: t.sample) for unit in by_prompt.values()]
        if not self.options.get("exits"):
            return [[task] for task in self.tasks]
        units: dict[tuple[str, int], list[_Task]] = {}
        for task in self.tasks:
            units.setdefault((task.prompt_id, task.sample), []).append(task)
        return list(units.values())

    def _unit(self, unit: list[_Task]) -> list[dict[str, Any]] | None:
        """The rows of one unit; None when stopped."""
        if self.options.get("stopping") is not None:
            return self.call_stopping(unit)
        if self.options.get("exits"):
            return self.call_exits(unit)
        row = self.call(unit[0])
        return None if row is None else [row]

    def call_stopping(self, unit: list[_Task]) -> list[dict[str, Any]] | None:
        """One prompt's samples with DeepConf's early stop; None when stopped.

        A resumed run may hold some warm-up rows already: the samples run here set the
        threshold from those they have (all of this unit's first `warmup`)."""
        stopping: _EarlyStop = self.options["stopping"]
        rows: list[dict[str, Any]] = []
        lowest: list[float] = []
        for task in unit:
            warm = task.sample < stopping.warmup or not lowest
            watch = None if warm else stopping.watch(stopping.threshold(lowest))
            row = self.call(task, watch)
            if row is None:
                return None
            rows.append(row)
            if warm and row.get("conf_lowest") is not None:
                lowest.append(row["conf_lowest"])
        return rows

    def _run(self, done: Callable[[dict[str, Any]], bool], parallel: int) -> bool:
        units = self._units()
        if parallel == 1:
            for unit in units:
                rows = self._unit(unit)
                if rows is None:
                    return False
                for row in rows:
                    if not done(self.graded(row)):
                        return False
            return True
        pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dskit-compare")
        pending: set[Future[list[dict[str, Any]] | None]] = set()
        queue = iter(units)
        try:
            for unit in _take(queue, parallel):
                pending.add(pool.submit(self._unit, unit))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                keep = True
                for fut in finished:  # every finished row is kept, even when asked to stop
                    rows = fut.result()
                    if rows is None:  # stopped mid-reply: not a result
                        keep = False
                        continue
                    for row in rows:
                        # grading happens here, in the calling thread (math-verify uses signals)
                        keep = done(self.graded(row)) and keep
                if not keep:
                    return False
                for unit in _take(queue, len(finished)):
                    pending.add(pool.submit(self._unit, unit))
            return True
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def row(task: _Task) -> dict[str, Any]:
        """A task's row before its reply."""
        return {
            "model": task.model, "think_budget": task.budget, "think_min": task.think_min,
            "prompt_id": task.prompt_id,
            "prompt": task.prompt, "sample": task.sample, "kind": task.kind,
            "expected": task.expected, "_grader": task.grader,
        }

    def call(self, task: _Task, watch: Watch | None = None) -> dict[str, Any] | None:
        """Ask the model once (stopped early by `watch`, if given); a failure becomes the
        row's `error`; None when stopped."""
        row = self.row(task)
        if self.model_error is not None:
            row["error"] = self.model_error
            return row
        text = math_prompt(task.prompt) if task.kind == "math" else task.prompt
        t0 = time.perf_counter()
        try:
            # Streamed and registered, so that Stop ends it at once (see `_watch`).
            stream = self.client.chat(text, task.model, stream=True,
                                      loop_guard=self.options["loop_guard"],
                                      **({"watch": watch} if watch is not None else {}),
                                      **self.chat_options(task))
            reply = self.collect(stream)
            if reply is None:
                return None
        except Exception as exc:  # recorded in the row: one failed call never stops the run
            self.failed(row, exc, t0)
            return row
        row.update(_reply_fields(reply, self.options.get("window", PAPER_WINDOW)))
        return row

    def call_exits(self, unit: list[_Task]) -> list[dict[str, Any]] | None:
        """One sample's trace and its early exits: a row per checkpoint; None when stopped."""
        first = unit[0]
        if self.model_error is not None:
            return [{**self.row(t), "error": self.model_error} for t in unit]
        by_point = {t.budget: t for t in unit}
        text = math_prompt(first.prompt) if first.kind == "math" else first.prompt
        options = self.chat_options(replace(first, budget=None))
        rows: list[dict[str, Any]] = []
        whole: dict[str, Any] | None = None
        t0 = time.perf_counter()
        try:
            for point in exits(text, first.model, client=self.client,
                               exit_at=[b for b in by_point if b is not None] or [0],
                               loop_guard=self.options["loop_guard"], **options):
                task = by_point.get(point.checkpoint)
                if point.stream is None:  # the reasoning ended before it: the whole reply
                    reply_fields = {k: v for k, v in (whole or {}).items()
                                    if k not in self.row(first)}
                else:
                    reply = self.collect(point.stream)
                    if reply is None:
                        return None
                    reply_fields = _reply_fields(reply)
                if point.checkpoint is None:
                    whole = {**self.row(first), **reply_fields}
                if task is not None:  # (a resumed run may have this row already)
                    rows.append({**self.row(task), **reply_fields})
                t0 = time.perf_counter()
        except Exception as exc:  # the rows not reached fail with it; the run goes on
            done = {r["think_budget"] for r in rows}
            for task in unit:
                if task.budget not in done:
                    rows.append(self.failed(self.row(task), exc, t0))
            return rows
        if whole is not None:  # nothing reasoned (a note says why): every checkpoint is it
            done = {r["think_budget"] for r in rows}
            rows += [{**self.row(t), **{k: v for k, v in whole.items() if k not in self.row(t)}}
                     for t in unit if t.budget not in done]
        return rows

    def collect(self, stream: Any) -> Reply | None:
        """A stream's reply, registered so that Stop ends it at once; None when stopped."""
        with self._lock:
            self._active.add(stream)
        try:
            if self.stop is not None and self.stop.is_set():
                stream.stop()
            reply: Reply = stream.collect()
        finally:
            with self._lock:
                self._active.discard(stream)
        if stream.stopped and self.stop is not None and self.stop.is_set():
            return None  # the run is being stopped: this reply is not a result
        return reply

    def failed(self, row: dict[str, Any], exc: Exception, t0: float) -> dict[str, Any]:
        """`row` with the failure recorded; an unknown model fails its other rows at once."""
        row["error"] = f"{type(exc).__name__}: {exc}"
        row["total_s"] = time.perf_counter() - t0
        if isinstance(exc, ModelNotFound):
            # No point asking again: the model's other rows fail the same way, without calls.
            self.model_error = row["error"]
        return row

    def chat_options(self, task: _Task) -> dict[str, Any]:
        """The chat settings of one call: those given (None: the library's defaults), the
        sample's own seed and the task's thinking budget and minimum."""
        opts = self.options
        out = {k: opts[k] for k in ("max_tokens", "temperature", "think", "effort")
               if opts.get(k) is not None}
        if opts["seed"] is not None:
            out["seed"] = opts["seed"] + task.sample
        if opts.get("top_logprobs") is not None:
            out.update(logprobs=True, top_logprobs=opts["top_logprobs"])
        if task.budget is not None:
            out["think_budget"] = task.budget
        if task.think_min:
            out.update(think_min=task.think_min, max_extensions=opts["max_extensions"])
            if opts["extension"] is not None:
                out["extension"] = opts["extension"]
        return out

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
        row["grader"] = grader_name(grader)
        return {c: row.get(c) for c in COLUMNS}


def _take(it: Iterable[T], n: int) -> list[T]:
    return list(itertools.islice(it, n))


def _reply_fields(reply: Reply, window: int = PAPER_WINDOW) -> dict[str, Any]:
    s = reply.stats
    conf = measure(reply.tokens, window=window, tail=window) if reply.tokens and \
        reply.tokens[0].top else None
    return {
        **({"conf_k": conf.k, "conf_mean": conf.mean, "conf_lowest": conf.lowest,
            "conf_bottom": conf.bottom, "conf_tail": conf.tail} if conf is not None else {}),
        "answer": reply.answer,
        "thinking": reply.thinking,
        "ttft_s": s.ttft,
        "tokens_per_s": s.tokens_per_s,
        "thinking_tokens": s.thinking_tokens,
        "answer_tokens": s.answer_tokens,
        "load_s": s.load_time,
        "total_s": s.total_time,
        "budget_hit": reply.budget_hit,
        "extensions": reply.extensions,
        "done_reason": reply.done_reason,
        "error": None,
    }


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="call",
                desc="compare", leave=True)


class CompareFunction:
    """`compare` with `summary`, `describe`, `paired`, `pass_at_k` and `anatomy` beside it:
    `ds.compare(...)` runs, `ds.compare.summary(rows)` summarises, `ds.compare.describe(summary)`
    puts it in words, `ds.compare.paired(rows, a, b)` tests a difference,
    `ds.compare.pass_at_k(rows)` gives the pass@k and maj@k curves, `ds.compare.anatomy(rows)`
    looks inside the reasoning per model (`ds.compare.anatomy_traces(rows)`: per reply),
    `ds.compare.votes(rows)` weighs the votes by confidence (`logprobs=True`),
    `ds.compare.readable(table)` shows any of these tables whole and rounded (what
    `import dskit as ds` exports as `ds.compare`)."""

    summary = staticmethod(summary)
    describe = staticmethod(describe)
    paired = staticmethod(paired)
    pass_at_k = staticmethod(pass_at_k)
    anatomy = staticmethod(anatomy)
    anatomy_traces = staticmethod(anatomy_traces)
    votes = staticmethod(votes)
    describe_votes = staticmethod(describe_votes)
    readable = staticmethod(readable)

    def __init__(self) -> None:
        functools.update_wrapper(self, compare)  # help() and the signature are compare's

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return compare(*args, **kwargs)
