"""`side_by_side`: real stand-ins in columns, one after another or at once, stop, errors, all
three backends, blind columns, documents."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import dskit as ds
from dskit import sysinfo
from dskit.backends.base import Delta, Done
from dskit.backends.embedded import EmbeddedBackend
from dskit.errors import ConfigurationError
from dskit.evals.side_by_side import SideBySide, holds_all
from dskit.reasoning.plan import WRAP_UP
from dskit.reply import Stats

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"
MODELS = [SMALL, QWEN]


@pytest.fixture(scope="module")
def one_at_a_time() -> Any:
    """An embedded backend that holds one model at a time (like a GPU with room for one size)."""
    backend = EmbeddedBackend(n_ctx=2048, max_loaded=1)
    yield ds.connect(backend, set_default=False)
    backend.unload()


@pytest.mark.model
def test_one_model_at_a_time_runs_in_turn_with_load_steps_and_verdicts(one_at_a_time: Any):
    cup = ds.prompts.cup_puzzle("zh")
    seen: list[str] = []
    view = SideBySide(cup, MODELS, client=one_at_a_time, max_tokens=48, seed=1)
    assert not view.concurrent  # max_loaded=1: the second model must wait for the first
    view.start().wait(on_update=lambda v: seen.append(v.html()))
    assert [c.state for c in view.columns] == ["done", "done"]
    for column, reply in zip(view.columns, view.replies, strict=True):
        assert reply is not None and reply.model == column.model
        assert re.fullmatch(rf"loading {re.escape(column.model)} … \d+\.\d s", column.load_note)
        assert column.load_time and column.load_time > 0
        assert reply.verdict is not None and reply.verdict.expected == "在床上"
        footer = view.footer(column)
        for part in ("tok/s", "TTFT", "answer tokens", "load", "memory"):
            assert part in footer, footer
    # loading the second size unloaded the first: size switching, visible in the columns
    assert one_at_a_time.backend.loaded() == [QWEN]
    # the live view showed the first column loading while the second still waited its turn
    early = next(h for h in seen if "loading smollm2:135m …" in h)
    assert re.search(r"data-label='B' data-state='waiting'", early)
    final = view.html()
    assert final.count("class='dskit-column'") == 2 and "dskit-verdict" in final
    assert "expected: 在床上" in final and "one after another" in final


def test_models_that_fit_together_run_at_the_same_time(embedded: Any, embedded_client: Any,
                                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(embedded, "max_loaded", 2)
    monkeypatch.setattr(embedded, "n_threads", 1)
    assert holds_all(embedded_client, MODELS)  # room for both, and a core for each thread
    monkeypatch.setattr(embedded, "n_threads", sysinfo.cpu_cores()[0])
    assert not holds_all(embedded_client, MODELS)  # two runs would fight over the cores
    monkeypatch.setattr(embedded, "n_threads", 1)
    monkeypatch.setattr(embedded, "max_loaded", 1)
    assert not holds_all(embedded_client, MODELS)
    monkeypatch.setattr(embedded, "max_loaded", 2)
    busy: set[str] = set()

    def watch(view: SideBySide) -> None:
        busy.update(c.label for c in view.columns if c.state in ("reasoning", "answering"))

    view = ds.side_by_side("Name three colours.", MODELS, client=embedded_client,
                           display=False, max_tokens=32)
    assert view.concurrent and all(r is not None and r.answer for r in view.replies)
    view2 = SideBySide("Count to ten.", MODELS, client=embedded_client, max_tokens=40)
    view2.start().wait(on_update=watch)
    assert busy == {"A", "B"}
    assert all(c.load_note.endswith("already in memory") for c in view2.columns)


def test_an_unknown_model_fails_in_its_column_and_the_other_goes_on(embedded_client: Any):
    view = ds.side_by_side("Say hi.", ["no-such-model:7b", SMALL], client=embedded_client,
                           display=False, max_tokens=16, concurrent=False)
    bad, good = view.columns
    assert bad.state == "error" and "no-such-model:7b" in (bad.error or "")
    assert bad.reply is None
    assert good.state == "done" and good.reply is not None and good.reply.answer
    page = view.html()
    assert "dskit-column-error" in page and "data-state='done'" in page


@pytest.mark.model
def test_stop_ends_every_column_and_keeps_what_arrived(one_at_a_time: Any):
    view = SideBySide("Write a very long story about the sea.", MODELS, client=one_at_a_time,
                      max_tokens=1500)

    def stop_once_text_arrives(v: SideBySide) -> None:
        reply = v.columns[0].reply
        if reply is not None and len(reply.answer) > 40:
            v.stop()

    view.start().wait(on_update=stop_once_text_arrives)
    first, second = view.columns
    assert first.state == "stopped" and first.reply is not None
    assert first.reply.done_reason == "stopped" and len(first.reply.answer) > 40
    assert second.state == "stopped" and second.reply is None  # never began
    assert "not run: stopped" in view.html()


def test_ctrl_c_while_waiting_stops_the_columns(embedded_client: Any):
    view = SideBySide("Write a very long story about a cat.", [SMALL], client=embedded_client,
                      max_tokens=1500)

    def interrupt(v: SideBySide) -> None:  # Ctrl-C once, while the answer streams
        if not v.stopped and v.columns[0].reply is not None and v.columns[0].reply.answer:
            raise KeyboardInterrupt

    view.start().wait(on_update=interrupt)
    assert view.stopped and view.done
    assert view.columns[0].reply is not None and view.columns[0].reply.done_reason == "stopped"


def test_ollama_and_openai_backends_through_dskit_serve(embedded: Any,
                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OLLAMA_MAX_LOADED_MODELS", raising=False)
    server = ds.serve.start(port=0, backend=embedded)
    try:
        ollama = ds.connect("ollama", host=server.url, set_default=False)
        assert not holds_all(ollama, MODELS)  # Ollama without OLLAMA_MAX_LOADED_MODELS
        view = ds.side_by_side(ds.prompts.cup_puzzle("en"), MODELS, client=ollama,
                               display=False, max_tokens=32)
        assert not view.concurrent
        assert all(c.state == "done" and c.reply is not None for c in view.columns)
        assert all(c.reply.backend == "ollama" and c.reply.verdict is not None
                   for c in view.columns if c.reply is not None)
        assert all(c.load_note for c in view.columns)
        monkeypatch.setenv("OLLAMA_MAX_LOADED_MODELS", "2")
        assert holds_all(ollama, MODELS)

        openai = ds.connect("openai", base_url=server.url + "/v1", set_default=False)
        view = ds.side_by_side("用一句话介绍熊猫。", MODELS, client=openai, display=False,
                               max_tokens=32)
        assert view.concurrent
        assert all(c.state == "done" and c.reply is not None and c.reply.answer
                   for c in view.columns)
        assert all(c.load_note.endswith("the server loads it on first use")
                   for c in view.columns)
    finally:
        server.stop()


def test_blind_columns_hide_the_names_until_revealed(embedded_client: Any):
    view = SideBySide("Say hi.", MODELS, client=embedded_client, blind=True, max_tokens=12)
    view.start().wait()
    hidden = view.html()
    assert SMALL not in hidden and QWEN not in hidden and "model A" in hidden
    assert SMALL not in view.text_summary()
    view.reveal()
    shown = view.html()
    assert SMALL in shown and QWEN in shown


def test_model_output_is_rendered_safely(scripted: Any, tmp_path: Any):
    evil = ("<script>alert(1)</script><img src=x onerror=alert(2)> "
            "[click](javascript:alert(3)) ![pic](http://127.0.0.1:9/x.png)")
    client = scripted([Delta("thinking", "</details><script>alert(4)</script>"),
                       Delta("answer", evil), Done(stats=Stats(eval_tokens=3, eval_time=0.1))])
    view = ds.side_by_side("hi", ["fake:1b"], client=client, display=False)
    for page in (view.html(), view.save(tmp_path / "v.html").read_text("utf-8")):
        lowered = page.lower()
        assert "<script" not in lowered and "<img" not in lowered
        assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", lowered)  # no event handler
        assert not re.search(r"href\s*=\s*['\"]?\s*javascript:", lowered)
    markdown = view.save(tmp_path / "v.md").read_text("utf-8")
    assert "<script" not in markdown.lower() and "<img" not in markdown.lower()


def test_a_looping_column_is_stopped_by_the_loop_guard(scripted: Any):
    looping = ["The ball is"] + ["！"] * 3000
    view = ds.side_by_side("Where is the ball?", ["fake:1b"], client=scripted(looping),
                           display=False)
    reply = view.replies[0]
    assert reply is not None and reply.done_reason == "repetition"
    assert reply.answer.startswith("The ball is") and len(reply.answer) < 700
    off = ds.side_by_side("Where is the ball?", ["fake:1b"], client=scripted(looping),
                          display=False, loop_guard=False)
    assert off.replies[0] is not None and off.replies[0].done_reason == "stop"
    assert len(off.replies[0].answer) > 3000


def test_save_writes_markdown_html_and_json(embedded_client: Any, tmp_path: Any):
    view = ds.side_by_side(ds.prompts.cup_puzzle("en"), MODELS, client=embedded_client,
                           display=False, max_tokens=24, think=True)
    md = view.save(tmp_path / "cup.md").read_text("utf-8")
    assert md.count("<details><summary>Reasoning") == 2  # reasoning folded, per column
    for expected in (f"A · {SMALL}", f"B · {QWEN}", "| backend | embedded |",
                     "max_tokens 24", "tok/s", "expected on the bed"):
        assert expected in md, expected
    page = view.save(tmp_path / "cup.html").read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page
    assert page.count("<details") == 2 and "max_tokens 24" in page
    data = json.loads(view.save(tmp_path / "cup.json").read_text("utf-8"))
    assert [c["model"] for c in data["columns"]] == MODELS
    assert data["columns"][0]["reply"]["options"]["max_tokens"] == 24
    with pytest.raises(ConfigurationError, match=r"\.md"):
        view.save(tmp_path / "cup.txt")


def test_bad_arguments_are_clear_errors(embedded_client: Any):
    with pytest.raises(ConfigurationError, match="at least one model"):
        SideBySide("hi", [], client=embedded_client)
    with pytest.raises(ConfigurationError, match="twice"):
        SideBySide("hi", [SMALL, SMALL], client=embedded_client)
    with pytest.raises(ConfigurationError, match="empty"):
        SideBySide("  ", [SMALL], client=embedded_client)
    with pytest.raises(ConfigurationError, match=r"ds\.chat\(prompt, model, format="):
        SideBySide("hi", [SMALL], client=embedded_client, format="json")


def test_a_think_budget_cuts_the_reasoning_in_every_column(embedded_client: Any):
    view = ds.side_by_side("What is 12 + 30? Think it through.", MODELS,
                           client=embedded_client, display=False, think=True, think_budget=12,
                           loop_guard=True, max_tokens=200, temperature=0, seed=3)
    closing = 40  # the wrap-up line, `</think>` and a blank line, in either model's tokens
    for column in view.columns:
        reply = column.reply
        assert column.state == "done" and reply is not None, column.error
        assert reply.budget_hit and 12 < (reply.stats.thinking_tokens or 0) <= 12 + closing
        assert reply.thinking.endswith(WRAP_UP["en"])
        assert reply.options["think_budget"] == 12
        assert view.footer(column).endswith("reasoning cut at its budget")
        assert f"{reply.stats.thinking_tokens} thinking tokens (cut at the budget)" \
            in view.describe()
    assert view.html().count("budget of 12 tokens") == 2  # each column's note says so


@pytest.mark.slow
def test_the_loop_guard_stops_a_looping_column(embedded_client: Any):
    """smollm2 on the Chinese cup puzzle prints "！" until the token limit; guarded, it stops."""
    view = ds.side_by_side(ds.prompts.cup_puzzle("zh"), [SMALL], client=embedded_client,
                           display=False, loop_guard=True, max_tokens=2048, temperature=0,
                           seed=1)
    column = view.columns[0]
    assert column.state == "done" and column.reply is not None
    assert column.reply.done_reason == "repetition", column.reply.answer[-200:]
    assert "loop guard" in view.html() and "loop guard" in view.describe()


def test_describe_says_what_the_columns_measured(embedded_client: Any):
    view = ds.side_by_side(ds.prompts.cup_puzzle("zh"), MODELS, client=embedded_client,
                           display=False, max_tokens=8)
    said = view.describe()
    for c in view.columns:
        assert c.reply is not None
        assert f"{c.model}: {c.reply.verdict}" in said
        assert f"{c.reply.stats.answer_tokens} answer tokens" in said
        if c.reply.status != "ok":
            assert c.reply.status in said  # e.g. truncated: hit the token limit
    assert "as many tokens per second as" in said
    right = sum(bool(c.reply and c.reply.verdict and c.reply.verdict.correct)
                for c in view.columns)
    assert f"{right} of 2 found the expected answer (在床上)" in said
    # the models ran in this process: how busy other programs kept the CPU was measured
    assert isinstance(view.cpu_load, sysinfo.CpuLoad)
    assert said.startswith("Careful: the CPU was busy") == view.cpu_load.busy


def test_describe_warns_first_when_the_columns_shared_a_busy_cpu(scripted: Any):
    view = ds.side_by_side("球在哪里？", ["fake:1b"], client=scripted(["在床上。"]),
                           display=False)
    assert view.cpu_load is None  # a backend with no machine of its own: nothing to judge
    assert "busy" not in view.describe()
    view.cpu_load = sysinfo.CpuLoad(1.6, 2, 5.0)  # what the meter reads on a busy machine
    assert view.describe().startswith(
        "Careful: the CPU was busy with other programs during this run (other programs kept "
        "1.6 of 2 cores busy on average)")


def test_out_of_memory_shows_in_its_column_and_the_other_answers(httpserver: Any):
    """An Ollama that cannot fit the 70b model (a reply a real server gives on a small GPU)."""
    from werkzeug.wrappers import Request, Response

    big, small = "deepseek-r1:70b", "deepseek-r1:1.5b"
    oom = {"error": "model requires more system memory (44.3 GiB) than is available (15.1 GiB)"}

    def generate(request: Request) -> Response:  # Ollama's empty request loads a model
        if request.get_json()["model"] == big:
            return Response(json.dumps(oom), status=500, content_type="application/json")
        return Response(json.dumps({"model": small, "response": "", "done": True,
                                    "done_reason": "load", "load_duration": 2_500_000_000}),
                        content_type="application/json")

    final = {"model": small, "message": {"role": "assistant", "content": ""}, "done": True,
             "done_reason": "stop", "load_duration": 1_000_000, "prompt_eval_count": 30,
             "prompt_eval_duration": 50_000_000, "eval_count": 9, "eval_duration": 300_000_000}
    lines = [{"model": small, "message": {"role": "assistant", "content": "",
                                          "thinking": "The cup is lifted, the ball stays."},
              "done": False},
             {"model": small, "message": {"role": "assistant", "content": "On the bed."},
              "done": False}, final]
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.9.0"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(
        {"details": {"family": "qwen2"}, "capabilities": ["completion", "thinking"],
         "model_info": {}})
    httpserver.expect_request("/api/generate", method="POST").respond_with_handler(generate)
    httpserver.expect_request("/api/chat", method="POST").respond_with_data(
        "\n".join(json.dumps(x) for x in lines) + "\n", content_type="application/x-ndjson")
    httpserver.expect_request("/api/ps").respond_with_json(
        {"models": [{"name": small, "model": small, "size": 1_900_000_000}]})
    client = ds.connect("ollama", host=httpserver.url_for(""), set_default=False)

    view = ds.side_by_side(ds.prompts.cup_puzzle("en"), [big, small], client=client,
                           display=False)
    failed, answered = view.columns
    assert failed.state == "error" and failed.reply is None
    assert "44.3 GiB" in (failed.error or "") and "smaller model" in (failed.error or "")
    assert answered.state == "done" and answered.reply is not None
    assert answered.load_note == f"loading {small} … 2.5 s"
    assert answered.reply.verdict is not None and answered.reply.verdict.correct
    assert "memory 1.90 GB" in view.footer(answered) and "load 2.50 s" in view.footer(answered)
    assert "44.3 GiB" in view.html()
