"""compare() on the real embedded models, summary() and the plots."""

from __future__ import annotations

import csv
import functools
import math
import re
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest

import dskit as ds
from dskit.backends.embedded import EmbeddedBackend
from dskit.errors import ComparisonFailed, ConfigurationError
from dskit.evals import prompts
from dskit.evals.comparison import compare
from dskit.evals.results import COLUMNS
from dskit.evals.summary import summary
from dskit.reasoning.think import MATH_DIRECTIVE
from dskit.sysinfo import CpuLoad

matplotlib.use("Agg")

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"
PROMPTS = pd.DataFrame({"prompt": ["What is 2+3?", "Name one colour."], "expected": ["5", None]})


@pytest.fixture
def client(embedded: EmbeddedBackend) -> ds.Client:
    """A client of its own on the shared backend: tests replace its `chat`."""
    return ds.connect(embedded, set_default=False)


class Calls:
    """Wraps a client's chat: records (model, prompt) and can raise Ctrl-C after n calls."""

    def __init__(self, client: ds.Client, interrupt_after: int | None = None) -> None:
        self.real = functools.partial(ds.Client.chat, client)  # never an earlier wrapper
        self.seen: list[tuple[str, str]] = []
        self.interrupt_after = interrupt_after

    def __call__(self, prompt: Any, model: str | None = None, **kwargs: Any) -> Any:
        if self.interrupt_after is not None and len(self.seen) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.seen.append((model or "", prompt))
        return self.real(prompt, model, **kwargs)


def test_two_models_two_prompts_two_samples(client: ds.Client, embedded: EmbeddedBackend,
                                            monkeypatch: pytest.MonkeyPatch):
    calls = Calls(client)
    monkeypatch.setattr(client, "chat", calls)
    loads = embedded.loads
    df = compare([SMALL, QWEN], PROMPTS, samples=2, client=client, max_tokens=12, seed=3,
                 progress=False)
    assert len(df) == 8 and list(df.columns) == COLUMNS
    assert embedded.loads - loads <= 2
    # model-major: every call for one model before the next model's
    assert [m for m, _ in calls.seen] == [SMALL] * 4 + [QWEN] * 4
    assert df["model"].tolist() == [SMALL] * 4 + [QWEN] * 4
    assert df["sample"].tolist() == [0, 1] * 4
    # the maths prompt carries DeepSeek's directive; the text prompt is sent as is
    sent = [p for _, p in calls.seen]
    assert sent[0].endswith(MATH_DIRECTIVE) and sent[2] == "Name one colour."
    assert df["prompt"].tolist()[0] == "What is 2+3?"
    assert df["error"].isna().all() and not df.attrs["interrupted"]
    math_rows, text_rows = df[df["kind"] == "math"], df[df["kind"] == "text"]
    assert all(isinstance(c, bool) for c in math_rows["correct"])
    assert text_rows["correct"].isna().all() and text_rows["expected"].isna().all()
    assert (df["tokens_per_s"] > 0).all() and (df["total_s"] > 0).all()
    assert (df["answer_tokens"] <= 12).all() and df["done_reason"].notna().all()
    s = summary(df)
    assert s["model"].tolist() == [SMALL, QWEN] and s["n"].tolist() == [4, 4]
    assert s["pass@1"].between(0, 1).all() and (s["tokens_per_s"] > 0).all()
    assert ds.compare.summary(df).equals(s)  # `ds.compare.summary` is the same function
    # the model runs in this process: how busy other programs kept the CPU is measured over the run
    assert isinstance(df.attrs["cpu_load"], CpuLoad) and s.attrs["cpu_load"] == df.attrs["cpu_load"]


def test_interrupt_keeps_finished_rows_and_resume_skips_them(
        client: ds.Client, monkeypatch: pytest.MonkeyPatch, tmp_path):
    out = tmp_path / "results.csv"
    calls = Calls(client, interrupt_after=3)
    monkeypatch.setattr(client, "chat", calls)
    with pytest.warns(UserWarning, match="interrupted"):
        part = compare([SMALL], PROMPTS, samples=2, client=client, max_tokens=8, seed=1,
                       out=out, progress=False)
    assert part.attrs["interrupted"] is True
    assert len(part) == 3 and len(calls.seen) == 3
    assert part["answer"].str.len().gt(0).all()  # real replies
    on_disk = pd.read_csv(out)
    assert len(on_disk) == 3 and list(on_disk.columns) == COLUMNS

    calls2 = Calls(client)
    monkeypatch.setattr(client, "chat", calls2)
    full = compare([SMALL], PROMPTS, samples=2, client=client, max_tokens=8, seed=1,
                   out=out, progress=False)
    assert len(calls2.seen) == 1  # only the missing row ran
    assert len(full) == 4 and full.attrs["skipped"] == 3 and not full.attrs["interrupted"]
    assert full.iloc[:3][["prompt_id", "sample", "answer"]].equals(
        part[["prompt_id", "sample", "answer"]])
    assert len(pd.read_csv(out)) == 4  # header once, one line per row

    calls3 = Calls(client)
    monkeypatch.setattr(client, "chat", calls3)
    again = compare([SMALL], PROMPTS, samples=2, client=client, max_tokens=8, seed=1,
                    out=out, progress=False)
    assert calls3.seen == [] and len(again) == 4
    assert again["correct"].tolist() == full["correct"].tolist()


def test_unknown_model_becomes_error_rows(client: ds.Client, monkeypatch: pytest.MonkeyPatch):
    calls = Calls(client)
    monkeypatch.setattr(client, "chat", calls)
    df = compare(["nope:1b", SMALL], "cup-en", samples=2, client=client, max_tokens=8,
                 progress=False)
    assert len(df) == 4
    bad, good = df[df["model"] == "nope:1b"], df[df["model"] == SMALL]
    assert bad["error"].str.contains("nope:1b").all() and (bad["answer"] == "").all()
    assert good["error"].isna().all() and good["answer"].str.len().gt(0).all()
    assert bad["correct"].isna().all()  # not graded: no answer
    assert all(isinstance(c, bool) for c in good["correct"])  # graded by the cup grader
    assert [m for m, _ in calls.seen] == ["nope:1b", SMALL, SMALL]  # asked once, then skipped
    s = summary(df)
    assert s.set_index("model").loc["nope:1b", "errors"] == 2


def test_parallel_requests(client: ds.Client, capsys: pytest.CaptureFixture[str]):
    df = compare(SMALL, ["Say hi.", "Say bye."], samples=2, client=client, max_tokens=8,
                 parallel=2, progress=True)
    assert len(df) == 4 and df["error"].isna().all()
    assert df["sample"].tolist() == [0, 1, 0, 1]
    assert "4/4" in capsys.readouterr().err  # the progress bar counted every call


def test_parallel_interrupt_keeps_finished_rows(client: ds.Client,
                                                monkeypatch: pytest.MonkeyPatch):
    calls = Calls(client, interrupt_after=2)
    monkeypatch.setattr(client, "chat", calls)
    with pytest.warns(UserWarning, match="interrupted"):
        df = compare(SMALL, ["Say hi.", "Say bye."], samples=2, client=client, max_tokens=8,
                     parallel=2, progress=False)
    assert df.attrs["interrupted"] is True
    assert 1 <= len(df) <= 2 and df["answer"].str.len().gt(0).all()


def test_bad_arguments(client: ds.Client, tmp_path):
    with pytest.raises(ConfigurationError):
        compare([], ["x"], client=client)
    with pytest.raises(ConfigurationError):
        compare([SMALL], ["x"], samples=0, client=client)
    with pytest.raises(ConfigurationError, match=r"\.csv or \.parquet"):
        compare([SMALL], ["x"], client=client, out=tmp_path / "r.txt")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError, match="pyarrow"):
            compare([SMALL], ["x"], client=client, out=tmp_path / "r.parquet")
    foreign = tmp_path / "other.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigurationError, match="not a dskit comparison"):
        compare([SMALL], ["x"], client=client, out=foreign, progress=False)


def _hand_made() -> pd.DataFrame:
    rows = []

    def add(model: str, pid: str, sample: int, correct: Any, tps: float | None = 10.0,
            error: str | None = None, kind: str = "math") -> None:
        rows.append({"model": model, "prompt_id": pid, "prompt": pid, "sample": sample,
                     "kind": kind, "answer": "", "thinking": "", "expected": "1",
                     "correct": correct, "ttft_s": 0.5, "tokens_per_s": tps,
                     "thinking_tokens": 100, "answer_tokens": 5, "load_s": 2.0 if sample == 0
                     and pid == "p1" else 0.0, "total_s": 3.0, "done_reason": "stop",
                     "error": error})

    add("big", "p1", 0, True, 10)
    add("big", "p1", 1, False, 20)  # p1: 1/2
    add("big", "p2", 0, True, 30)
    add("big", "p2", 1, True, 40)  # p2: 2/2
    add("big", "p3", 0, None, 50, kind="text")  # nothing expected: not graded
    add("small", "p1", 0, False)
    add("small", "p1", 1, False)  # p1: 0
    add("small", "p2", 0, True)
    add("small", "p2", 1, None, None, error="BackendError: boom")  # p2: 1/1 of the graded
    return pd.DataFrame(rows, columns=COLUMNS)


def test_summary_pass_at_1_is_mean_over_samples_then_prompts():
    s = summary(_hand_made()).set_index("model")
    assert s.loc["big", "pass@1"] == pytest.approx((0.5 + 1.0) / 2)
    assert s.loc["small", "pass@1"] == pytest.approx((0.0 + 1.0) / 2)
    assert s.loc["big", "n"] == 5 and s.loc["big", "errors"] == 0
    assert s.loc["small", "errors"] == 1
    assert s.loc["big", "tokens_per_s"] == pytest.approx(30.0)
    assert s.loc["big", "tokens_per_s_std"] == pytest.approx(pd.Series([10, 20, 30, 40, 50]).std())
    assert s.loc["big", "ttft_s"] == 0.5 and s.loc["big", "thinking_tokens"] == 100
    assert s.loc["big", "load_s"] == 2.0
    ungraded = _hand_made().assign(correct=None)
    assert math.isnan(summary(ungraded).loc[0, "pass@1"])


def test_plots_return_axes():
    from matplotlib.axes import Axes

    from dskit.evals import plots

    df = _hand_made()
    s = summary(df)
    for ax in (plots.accuracy_vs_size(s), plots.speed_vs_size(s), plots.latency(df),
               plots.latency(df, "ttft_s")):
        assert isinstance(ax, Axes)
    sized = s.assign(model=[QWEN, SMALL])
    assert plots.model_sizes([QWEN, SMALL]) == [0.5, 0.135]  # the catalog knows the stand-ins
    for ax in (plots.speed_vs_size(sized), plots.accuracy_vs_size(sized)):
        assert ax.get_xscale() == "log"
        ax.figure.canvas.draw()
        # Issue 27: the axis read "2×10⁻¹" billion; it names the models' sizes instead.
        assert [t.get_text() for t in ax.get_xticklabels()] == ["135M", "0.5B"]
        assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]
    assert [plots.size_label(b) for b in (0.36, 1.5, 7.0, 671.0)] == ["360M", "1.5B", "7B",
                                                                      "671B"]
    with pytest.raises(ConfigurationError):
        plots.accuracy_vs_size(df.drop(columns=["model"]))
    with pytest.raises(ConfigurationError):
        plots.latency(df, "nope")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_prompt_sets_plug_into_compare():
    assert prompts.load("cup-en")["grader"].tolist() == ["cup"]


def test_every_call_failed_is_a_failure_with_the_reasons(client: ds.Client):
    with pytest.raises(ComparisonFailed) as info:
        compare(["nope:1b", "deepseek-r1:7b"], "cup-en", samples=2, client=client,
                progress=False)
    message = str(info.value)
    assert "every one of the 4 calls failed" in message
    assert "nope:1b" in message and "deepseek-r1:7b" in message and "Ollama" in message
    assert len(info.value.rows) == 4 and info.value.rows["error"].notna().all()


def test_truncation_is_counted_described_and_plotted():
    df = _hand_made()
    df.loc[df.index[:2], "done_reason"] = "length"
    s = summary(df).set_index("model")
    assert s["truncated"].sum() == 2
    text = ds.compare.describe(summary(df))
    assert "cut off by the token limit" in text and "one answer moves pass@1" in text
    from dskit.evals import plots

    ax = plots.accuracy_vs_size(summary(df))
    assert any("truncated" in t.get_text() for t in ax.texts)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_describe_warns_first_when_the_run_shared_a_busy_cpu():
    """Times and speeds measured under load mislead a learner (issue 27): describe() says so."""
    df = _hand_made()
    df.attrs["cpu_load"] = CpuLoad(1.2, 2, 30.0)
    s = summary(df)
    assert s.attrs["cpu_load"] == CpuLoad(1.2, 2, 30.0)
    text = " ".join(ds.compare.describe(s).split())  # the findings wrap at 100 columns
    assert text.startswith("Careful: the CPU was busy with other programs during this run "
                           "(other programs kept 1.2 of 2 cores busy on average)")
    df.attrs["cpu_load"] = CpuLoad(0.2, 2, 30.0)
    assert "busy" not in ds.compare.describe(summary(df))
    df.attrs.pop("cpu_load")  # rows read back from a file carry no load
    assert "busy" not in ds.compare.describe(summary(df))


# --- thinking budgets, the loop guard and the statistics -------------------------------------

def test_budget_sweep_one_load_per_model(client: ds.Client, embedded: EmbeddedBackend,
                                         monkeypatch: pytest.MonkeyPatch):
    calls = Calls(client)
    monkeypatch.setattr(client, "chat", calls)
    maths = pd.DataFrame({"prompt": ["What is 2+3?", "What is 4*5?"], "expected": ["5", "20"]})
    loads = embedded.loads
    df = compare(QWEN, maths, client=client, think=True, think_budget=[0, 8, None],
                 max_tokens=60, seed=1, progress=False)
    assert embedded.loads - loads <= 1  # every budget of a model in one group
    assert df["think_budget"].tolist() == [0, 0, 8, 8, None, None] or \
        df["think_budget"].astype("object").where(df["think_budget"].notna(), None).tolist() \
        == [0, 0, 8, 8, None, None]
    assert df.loc[df["think_budget"] == 0, "thinking_tokens"].eq(0).all()
    assert df.loc[df["think_budget"] == 8, "budget_hit"].all()
    assert not df.loc[df["think_budget"].isna(), "budget_hit"].any()
    assert (df.loc[df["think_budget"] == 8, "thinking_tokens"] <= 8 + 25).all()
    s = summary(df)
    assert len(s) == 3 and s["think_budget"].isna().sum() == 1
    assert s["budget_hit"].tolist()[:2] == [2, 2]
    from dskit.evals import plots

    ax = plots.accuracy_vs_thinking(s)
    assert [t.get_text() for t in ax.texts][:3] == ["0", "8", "none"]
    result = ds.compare.paired(df, (QWEN, 0), (QWEN, None))
    assert result.prompts == 2 and not result.distinguishable  # two prompts prove nothing
    with pytest.raises(ConfigurationError, match="several think_budgets"):
        ds.compare.paired(df, QWEN, QWEN)
    with pytest.raises(ConfigurationError, match="listed twice"):
        compare(QWEN, maths, client=client, think_budget=[8, 8])
    import matplotlib.pyplot as plt

    plt.close("all")


def test_loop_guard_is_on_in_compare(scripted):
    looping = ["The ball"] + ["！"] * 3000
    df = compare("fake:1b", ["Where is the ball?"], client=scripted(looping), progress=False)
    assert df["done_reason"].tolist() == ["repetition"]
    assert len(df["answer"][0]) < 700
    s = summary(df)
    assert s["looped"].tolist() == [1]
    assert "stopped by the loop guard" in ds.compare.describe(s)
    assert df.attrs["cpu_load"] is None  # no model on this machine's CPU: no load to judge
    off = compare("fake:1b", ["Where is the ball?"], client=scripted(looping), loop_guard=False,
                  progress=False)
    assert off["done_reason"].tolist() == ["stop"] and len(off["answer"][0]) > 3000


def test_summary_intervals_cons_and_cost():
    df = _hand_made()
    df["final"] = ["1", "2", "1", "1", None, "3", "3", "1", None]
    s = summary(df).set_index("model")
    big = s.loc["big"]
    assert big["pass@1_low"] <= big["pass@1"] <= big["pass@1_high"]
    # p1's two samples say 1 (right) and 2 (wrong): the tie goes to the first; p2 says 1 twice.
    assert big["cons@k"] == 1.0 and big["k"] == 2
    assert s.loc["small", "cons@k"] == pytest.approx(0.5)  # p1: 3, 3 (wrong); p2: 1 (right)
    assert big["s_per_correct"] == pytest.approx(5 * 3.0 / 3)  # 15 s for 3 right answers
    assert s.loc["small", "answer_tokens"] == 5
    none_right = _hand_made().assign(correct=False)
    assert summary(none_right)["s_per_correct"].tolist() == [math.inf, math.inf]
    text = ds.compare.describe(summary(df))
    assert "95% interval" in text and "cons@2" in text and "s per correct answer" in text
    assert "overlap" in text


def test_cons_at_k_of_rows_read_back_from_a_csv(tmp_path: Path):
    """pandas reads numeric finals back as numbers: the vote still finds the winner's verdict."""
    df = _hand_made()
    df["final"] = ["1", "2", "1", "1", None, "3", "3", "1", None]
    df.to_csv(tmp_path / "rows.csv", index=False)
    again = pd.read_csv(tmp_path / "rows.csv")
    assert again["final"].dtype.kind == "f"  # 1.0, 2.0, NaN …
    s = summary(again).set_index("model")
    assert s.loc["big", "cons@k"] == 1.0
    assert s.loc["small", "cons@k"] == pytest.approx(0.5)
    blank = _hand_made().assign(final="", correct=False)  # no sample gave a final answer
    assert summary(blank)["cons@k"].tolist() == [0.0, 0.0]


def test_accuracy_plot_has_error_bars_from_the_interval():
    from dskit.evals import plots

    s = summary(_hand_made())
    ax = plots.accuracy_vs_size(s)
    bars = ax.containers[0]
    lows = [seg[0][1] for seg in bars.lines[2][0].get_segments()]
    assert lows == pytest.approx(s["pass@1_low"].tolist())
    import matplotlib.pyplot as plt

    plt.close("all")


def test_paired_on_hand_made_rows():
    result = ds.compare.paired(_hand_made(), "big", "small")
    assert result.prompts == 2 and result.difference == pytest.approx(0.75 - 0.5)
    assert "not distinguishable from noise at this sample size" in str(result)
    with pytest.raises(ConfigurationError, match="no rows for nope"):
        ds.compare.paired(_hand_made(), "big", "nope")


def test_files_written_before_budgets_resume(client: ds.Client, tmp_path,
                                             monkeypatch: pytest.MonkeyPatch):
    old = tmp_path / "old.csv"
    rows = _hand_made().drop(columns=["think_budget", "final", "budget_hit"])
    rows = rows[rows["model"] == "big"].assign(model=SMALL, error=None)
    rows.to_csv(old, index=False)
    calls = Calls(client)
    monkeypatch.setattr(client, "chat", calls)
    table = pd.DataFrame({"prompt": ["p1", "p2", "p3"], "prompt_id": ["p1", "p2", "p3"],
                          "expected": ["1", "1", None]})
    df = compare(SMALL, table, samples=2, client=client, max_tokens=4, out=old,
                 progress=False)
    assert len(df) == 6 and len(calls.seen) == 1  # only p3's second sample was missing
    assert list(pd.read_csv(old).columns) == COLUMNS


def test_for_display_names_the_sweeps_row_without_a_budget():
    """The one rule every display (CLI, widget, report) uses: sweep-only columns only in a
    sweep, and there the row without a budget says "none" (not <NA> or a dash)."""
    import pandas as pd

    from dskit.evals.summary import for_display

    sweep = pd.DataFrame({"model": ["m", "m"], "think_budget": pd.array([64, None], "Int64"),
                          "budget_hit": [1, 0], "pass@1": [0.5, 0.75]})
    assert list(for_display(sweep)["think_budget"]) == ["64", "none"]
    plain = sweep.assign(think_budget=pd.array([None, None], "Int64"))
    assert "think_budget" not in for_display(plain) and "budget_hit" not in for_display(plain)


# -- a loop on the HTTP backends: the guard's stop is a result, never the end of the run -------

LOOP_PIECES = ["The ball", " is on the "] + ["！"] * 600


def _ollama_looping(httpserver: Any) -> ds.Client:
    """A scripted Ollama (0.9, `think` supported) whose every reply loops on "！"."""
    import json

    model = "deepseek-r1:7b"
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.9.0"})
    httpserver.expect_request("/api/tags").respond_with_json(
        {"models": [{"name": model, "model": model, "size": 4683075271,
                     "details": {"family": "qwen2", "parameter_size": "7.6B"}}]})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(
        {"template": "{{ .Prompt }}", "details": {"family": "qwen2", "parameter_size": "7.6B"},
         "model_info": {"general.architecture": "qwen2"}, "capabilities": ["completion"]})
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    lines = [{"model": model, "message": {"role": "assistant", "content": p}, "done": False}
             for p in LOOP_PIECES]
    lines.append({"model": model, "message": {"role": "assistant", "content": ""}, "done": True,
                  "done_reason": "length", "eval_count": len(LOOP_PIECES)})
    httpserver.expect_request("/api/chat", method="POST").respond_with_data(
        "".join(json.dumps(line) + "\n" for line in lines), content_type="application/x-ndjson")
    return ds.connect("ollama", host=httpserver.url_for(""), set_default=False)


def _openai_looping(httpserver: Any) -> ds.Client:
    """A scripted OpenAI-compatible server whose every reply loops on "！"."""
    import json

    def sse(delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                                      "model": "m", "choices": [{"index": 0, "delta": delta,
                                                                 "finish_reason": finish}]})

    events = [sse({"content": p}) for p in LOOP_PIECES] + [sse({}, "length"), "data: [DONE]"]
    httpserver.expect_request("/v1/models").respond_with_json(
        {"object": "list", "data": [{"id": "m", "object": "model"}]})
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_data(
        "".join(e + "\n\n" for e in events), content_type="text/event-stream")
    return ds.connect("openai", base_url=httpserver.url_for("/v1"), set_default=False)


@pytest.mark.parametrize("make", [_ollama_looping, _openai_looping], ids=["ollama", "openai"])
@pytest.mark.parametrize("parallel", [1, 2])
def test_a_loop_on_an_http_backend_keeps_every_row(httpserver_ipv4: Any, make: Any,
                                                   parallel: int):
    client = make(httpserver_ipv4)
    model = client.backend.list_models()[0]
    questions = ["Where is the ball?", "球在哪里？", "What is 2+3?"]
    df = compare(model, questions, client=client, samples=2, parallel=parallel,
                 progress=False, max_tokens=2000)
    assert len(df) == 6  # every prompt and sample: one looping reply ended nothing
    assert df["done_reason"].tolist() == ["repetition"] * 6
    assert df["error"].isna().all()
    assert all(len(a) < 700 for a in df["answer"])  # stopped early, its text kept
    assert summary(df)["looped"].tolist() == [6]
    # a server on this machine: the CPU was sampled before the run (its own work would count)
    assert isinstance(df.attrs["cpu_load"], CpuLoad)


@pytest.mark.parametrize("make", [_ollama_looping, _openai_looping], ids=["ollama", "openai"])
def test_the_first_reason_given_for_a_stop_is_kept(httpserver_ipv4: Any, make: Any):
    client = make(httpserver_ipv4)
    model = client.backend.list_models()[0]
    stream = client.chat("Where is the ball?", model, stream=True, loop_guard=True)
    for _ in stream:
        pass
    assert stream.reply.done_reason == "repetition" and not stream.stopped
    stream.stop()  # after the guard decided: the reason stays the guard's
    assert not stream.stopped and stream.request.cancel.reason == "repetition"
    assert "loop guard" in " ".join(stream.reply.notes)
    # A stop by the caller is recorded as such, and the partial text is kept.
    stream = client.chat("Where is the ball?", model, stream=True, loop_guard=True)
    for i, _ in enumerate(stream):
        if i == 1:
            stream.stop()
    assert stream.stopped and stream.reply.done_reason == "stopped"
    assert stream.reply.answer.startswith("The ball")


# -- the results file: inert for spreadsheets, read back exactly, a torn row never blocks ------

FORMULAS = ["=HYPERLINK(\"http://x/?\"&A1)", "+1+1", "-2", "@SUM(A1)", "'引号", "\t=1", "正常"]


def test_a_results_file_is_inert_in_a_spreadsheet_and_read_back_exactly(scripted, tmp_path):
    out = tmp_path / "rows.csv"
    client = scripted(*[[f] for f in FORMULAS])
    df = compare("fake:1b", FORMULAS, client=client, out=out, progress=False)
    with out.open(encoding="utf-8", newline="") as fh:
        cells = [c for row in list(csv.reader(fh))[1:] for c in row]
    assert not any(c.startswith(("=", "+", "@", "\t")) for c in cells)  # no formula a sheet runs
    again = compare("fake:1b", FORMULAS, client=scripted(), out=out, progress=False)
    assert again["prompt"].tolist() == FORMULAS  # exactly, leading quote and tab included
    assert again["answer"].tolist() == df["answer"].tolist() == [f.strip() for f in FORMULAS]


def test_a_row_torn_by_a_crash_is_run_again_and_the_rest_kept(scripted, tmp_path):
    out = tmp_path / "rows.csv"
    compare("fake:1b", ["一", "二", "三"], client=scripted(["甲"], ["乙"], ["丙"]), out=out,
            progress=False)
    text = out.read_text(encoding="utf-8")
    out.write_text(text[: text.rindex("丙") + 1], encoding="utf-8")  # cut inside the last row
    client = scripted(["丙丙"])
    with pytest.warns(UserWarning, match="1 row"):
        df = compare("fake:1b", ["一", "二", "三"], client=client, out=out, progress=False)
    assert df["answer"].tolist() == ["甲", "乙", "丙丙"]
    assert len(client.backend.requests) == 1  # only the torn row was asked again
    assert pd.read_csv(out)["answer"].tolist() == ["甲", "乙", "丙丙"]  # the file is whole again


def test_table_cells_read_as_a_person_reads_them():
    """`dskit compare` prints no six-decimal floats, no <NA> and no inf (issue 27)."""
    import numpy as np
    import pandas as pd

    from dskit.evals.summary import shown

    assert [shown(v) for v in (2 / 3, np.float64(12.345), 1234.5, 0.0)] == \
        ["0.67", "12.3", "1,234", "0.00"]
    assert {shown(v) for v in (float("inf"), float("nan"), None, pd.NA)} == {"–"}
    assert [shown(v) for v in (3, "none", "七", True)] == ["3", "none", "七", "True"]


LONG = "小明原来有 5 个苹果，吃了 2 个，所以还剩下 5 - 2 = 3 个苹果。" * 3


def _shown_rows() -> pd.DataFrame:
    """Rows as a stand-in writes them: blank lines, a long answer, HTML, maths, a cut reply,
    a failed call, no right answer for one model."""
    df = _hand_made()
    df["answer"] = df["answer"].astype(object)
    df.loc[0, "answer"] = f"\n\n{LONG}\n\n\n\\boxed{{3}}"
    df.loc[1, "answer"] = "<script>alert(1)</script>"
    df.loc[1, "done_reason"] = "length"
    df.loc[5, "done_reason"] = "repetition"
    df.loc[7, "correct"] = False  # small: no right answer at all
    df["final"] = None
    return df


def test_readable_rows_show_whole_text_rounded_numbers_and_verdicts():
    """Issue 27: tables showed literal \\n\\n, six decimals, <NA>, inf and text cut off."""
    from dskit.evals.tables import readable

    df = _shown_rows()
    table = readable(df[["model", "prompt_id", "answer", "correct", "tokens_per_s",
                         "think_budget", "error"]])
    cells = table.data
    assert cells.loc[0, "answer"].startswith("小明原来有") and cells.loc[0, "answer"].endswith(
        "\\boxed{3}")
    assert "\n\n" not in cells.loc[0, "answer"] and cells.loc[0, "answer"].count("\n") == 1
    assert list(cells["correct"][:4]) == ["✓", "✗", "✓", "✓"] and cells.loc[4, "correct"] == "–"
    assert cells.loc[0, "tokens_per_s"] == "10.0" and cells.loc[8, "tokens_per_s"] == "–"
    assert set(cells["think_budget"]) == {"–"}
    page = table._repr_html_()
    assert f"{LONG}\n\\boxed{{3}}" in page  # whole, not cut
    assert "…" not in page and "..." not in page and "\\n" not in page
    assert "&lt;script&gt;" in page and "<script" not in page
    assert "white-space:pre-wrap" in page and "class='dskit-text'" in page
    text = str(table)
    assert "<NA>" not in text and "nan" not in text and "inf" not in text
    assert len(text.splitlines()) > len(df) + 2 and "\\boxed{3}" in text  # wrapped, whole
    assert max(len(line) for line in text.splitlines()) < 200


def test_readable_summary_drops_what_says_nothing_and_writes_no_inf():
    from dskit.evals.tables import readable

    s = summary(_shown_rows())
    assert s.set_index("model").loc["small", "s_per_correct"] == math.inf
    table = readable(s)
    assert "think_budget" not in table.data.columns and "budget_hit" not in table.data.columns
    assert table.data.set_index("model").loc["small", "s_per_correct"] == "–"
    assert table.data.set_index("model").loc["big", "pass@1"] == "0.75"
    sweep = s.assign(think_budget=pd.array([None, 64], dtype="Int64"))
    assert list(readable(sweep).data["think_budget"]) == ["none", "64"]


def test_answers_say_each_verdict_expected_answer_and_how_it_ended():
    from dskit.evals.tables import answers

    lines = answers(_shown_rows(), limit=40)
    assert len(lines) == 9
    assert lines[0].startswith("✓ expected 1 · big · p1 #0 · \"小明原来有")
    assert lines[0].endswith("…\"") and len(lines[0]) < 100  # clipped to one line
    assert lines[1].startswith("✗ expected 1") and lines[1].endswith(
        "cut by the token limit (no final answer)")
    assert "stopped by the loop guard" in lines[5]
    assert lines[8].startswith("error: BackendError: boom")
    assert "(no answer)" in lines[2]


def test_describe_says_one_finding_per_line():
    """A finding starts a line; a long one wraps at a word, its continuation indented, because
    JupyterLab breaks a long output line anywhere ("[0.0" / "0–1.00]")."""
    text = ds.compare.describe(summary(_shown_rows()))
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    findings = re.split(r"\n(?! )", text)
    assert len(findings) >= 3 and len(lines) > len(findings)
    assert findings[0].startswith("big: pass@1") and findings[1].startswith("small: pass@1")
    assert all(f.endswith((".", ")")) for f in findings)


def test_readable_shows_missing_integers_as_a_dash_and_list_cells_as_they_are():
    """anatomy_traces() has nullable integers (<NA> when a trace never found the answer);
    a list cell made pd.isna return an array and readable() raise."""
    df = pd.DataFrame({"prompt_id": ["maths-02", "maths-15"],
                       "first_correct": pd.array([132, pd.NA], dtype="Int64"),
                       "words": [["wait", "等等"], []]})
    text = str(ds.compare.readable(df))
    assert "<NA>" not in text and "–" in text and "['wait', '等等']" in text
