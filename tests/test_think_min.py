"""Thinking extended on demand (`think_min`, s1's budget forcing): the plan, the real embedded
model, Ollama's and vLLM's continuations on a local HTTP server, and compare sweeps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

import dskit as ds
from dskit.backends.base import BudgetCut, ChatRequest, Delta, Done, Event, _Closing
from dskit.backends.openai import OpenAIBackend
from dskit.errors import BudgetUnsupported, ConfigurationError
from dskit.evals.comparison import compare
from dskit.evals.results import COLUMNS, ResultsFile
from dskit.evals.summary import for_display, summary
from dskit.reasoning.plan import (
    WRAP_UP,
    ReasoningPlan,
    ReasoningSupport,
    Traits,
    extension_word,
    plan_reasoning,
)
from dskit.reply import Stats
from tests.fakes import ScriptedBackend
from tests.test_think_budget import (
    NDJSON,
    R1,
    SHOW_R1,
    _bodies,
    _chat_line,
    _delta,
    _generate_line,
    _openai,
    _sse,
)

QWEN = "qwen2.5-coder:0.5b"
QUESTION = "What is 12 + 30?"
ZH_QUESTION = "小明有 5 个苹果，又买了 4 个。他现在有几个苹果？"


# --- the plan ---------------------------------------------------------------------------------

def test_a_minimum_asks_for_reasoning_and_is_kept_in_the_plan():
    plan = plan_reasoning(Traits(), None, ReasoningSupport(two_phase=True), think_min=64)
    assert plan.think is True and plan.two_phase and plan.think_min == 64
    assert plan.max_extensions == 3 and plan.extension is None
    r1 = plan_reasoning(Traits(reasoning=True, r1=True, system_prompt_ok=True), None,
                        ReasoningSupport(force_prefix=True), think_min=32, max_extensions=1,
                        extension="Hmm")
    assert r1.prefix == "<think>\n" and (r1.max_extensions, r1.extension) == (1, "Hmm")
    both = plan_reasoning(Traits(), None, ReasoningSupport(two_phase=True), 128, 64)
    assert (both.budget, both.think_min) == (128, 64)
    assert plan_reasoning(Traits(), None, ReasoningSupport(), think_min=0).think_min is None


def test_contradictions_are_refused_with_the_fix():
    with pytest.raises(ConfigurationError, match="think=False turns it off"):
        plan_reasoning(Traits(), False, ReasoningSupport(), think_min=64)
    with pytest.raises(ConfigurationError, match=r"above think_budget=32.*lower think_min"):
        plan_reasoning(Traits(), None, ReasoningSupport(), 32, 64)
    with pytest.raises(ConfigurationError, match="above think_budget=0"):
        plan_reasoning(Traits(), None, ReasoningSupport(), 0, 1)


@pytest.mark.parametrize("bad", [-1, 1.5, "64", True, 2**40])
def test_bad_minimums_are_refused(bad: Any):
    with pytest.raises(ConfigurationError, match=r"think_min=.*whole number of tokens"):
        plan_reasoning(Traits(), None, ReasoningSupport(), think_min=bad)


@pytest.mark.parametrize(("extensions", "word"), [(-1, None), (True, None), (2.0, None),
                                                  (3, ""), (3, "  "), (3, 7), (3, "x" * 201),
                                                  (3, "Wait</think>")])
def test_bad_extension_settings_are_refused(extensions: Any, word: Any):
    with pytest.raises(ConfigurationError, match=r"max_extensions|extension="):
        plan_reasoning(Traits(), None, ReasoningSupport(), think_min=8,
                       max_extensions=extensions, extension=word)


def test_the_word_follows_the_language_of_the_question():
    plan = ReasoningPlan(think_min=8)
    assert extension_word(plan, [{"role": "user", "content": QUESTION}]) == "\n\nWait"
    assert extension_word(plan, [{"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "hello"},
                                 {"role": "user", "content": ZH_QUESTION}]) == "\n\n等等"
    assert extension_word(ReasoningPlan(think_min=8, extension="Hmm, let me check"),
                          [{"role": "user", "content": ZH_QUESTION}]) == "\n\nHmm, let me check"


def test_extends_only_below_the_minimum_within_the_count_and_the_budget():
    plan = ReasoningPlan(think_min=10, max_extensions=2, budget=12)
    assert plan.extends(9, 0) and plan.extends(9, 1)
    assert not plan.extends(10, 0) and not plan.extends(9, 2)
    assert not ReasoningPlan(think_min=10, budget=9).extends(9, 0)  # the budget comes first
    assert not ReasoningPlan().extends(0, 0)


def test_raw_continuation_is_reasoning_until_the_close_tag_however_it_is_split():
    split = _Closing()
    pieces = ["more", " thought</", "thi", "nk>", "\n\nThe answer", " is 42."]
    parts = [p for text in pieces for p in split.feed(text)]
    thinking = "".join(t for k, t in parts if k == "thinking")
    answer = "".join(t for k, t in parts if k == "answer")
    assert (thinking, answer) == ("more thought", "\n\nThe answer is 42.")
    assert _Closing().feed("a<b") == [("thinking", "a<b")]  # not a tag's start: not held


# --- a server's stream, extended (the seam, no network) ---------------------------------------

def _events(*steps: Event) -> Iterator[Event]:
    yield from steps


def test_the_cut_extends_and_counts_the_words_as_reasoning():
    plan = ReasoningPlan(think=True, think_min=6, max_extensions=2)
    cut = BudgetCut(None, [{"role": "user", "content": QUESTION}], plan)
    asked: list[tuple[str, int]] = []

    def extend(reasoning: str, thought: int) -> Iterator[Event]:
        asked.append((reasoning, thought))
        if len(asked) == 1:  # closes again too early: extended once more
            return _events(Delta("raw", " b</think>"), Delta("raw", "no"),
                           Done(Stats(eval_tokens=3), "stop"))
        return _events(Delta("raw", " c d e</think>\n\n42"), Done(Stats(eval_tokens=5), "stop"))

    first = _events(Delta("thinking", "a"), Delta("thinking", "\n"), Delta("answer", "early"),
                    Done(Stats(eval_tokens=9), "stop"))
    out = list(cut.stream(first, extend))
    assert asked == [("a\n\nWait", 3), ("a\n\nWait b\n\nWait", 5)]
    shown = "".join(e.text for e in out if isinstance(e, Delta) and e.kind == "thinking")
    assert shown == "a\n\nWait b\n\nWait c d e"  # the newline already shown is not repeated
    assert "".join(e.text for e in out if isinstance(e, Delta) and e.kind == "answer") == \
        "\n\n42"
    done = out[-1]
    assert isinstance(done, Done) and done.extensions == 2 and cut.extensions == 2
    assert done.stats.thinking_tokens == 6  # a, \n, Wait, b, Wait, c d e (pieces)
    assert done.stats.answer_tokens == 4 and "extended 2 times" in done.notes[-1]


def test_a_reasoning_long_enough_passes_through_untouched():
    cut = BudgetCut(None, [], ReasoningPlan(think=True, think_min=2))
    events = [Delta("thinking", "a"), Delta("thinking", "b"), Delta("answer", "42"),
              Done(Stats(eval_tokens=3), "stop")]
    out = list(cut.stream(iter(events), lambda r, n: pytest.fail("extended")))
    assert out == events and cut.extensions == 0


# --- embedded: the real stand-in -------------------------------------------------------------

def test_embedded_extends_in_english_and_the_budget_still_cuts(embedded_client: ds.Client):
    """The stand-in reasons about 70 tokens on this question: "Wait" makes it go on, and the
    budget cuts it on the way (the two halves of s1's budget forcing together)."""
    reply = embedded_client.chat(QUESTION, QWEN, think=True, think_min=80, think_budget=120,
                                 max_tokens=200, seed=2)
    assert 1 <= reply.extensions <= 3
    assert "\n\nWait" in reply.thinking and reply.options["think_min"] == 80
    assert reply.stats.thinking_tokens >= 80 or reply.extensions == 3
    assert reply.budget_hit and reply.thinking.endswith(WRAP_UP["en"]) and reply.answer
    assert any("minimum of 80 tokens" in n for n in reply.notes)
    assert f"reasoning extended ×{reply.extensions}" in reply.footer()


def test_embedded_extends_in_chinese(embedded_client: ds.Client):
    reply = embedded_client.chat(ZH_QUESTION, QWEN, think=True, think_min=60, max_extensions=1,
                                 max_tokens=160, seed=2)
    assert reply.extensions == 1 and "等等" in reply.thinking
    assert "Wait" not in reply.thinking


def test_embedded_no_extension_allowed_changes_nothing(embedded_client: ds.Client,
                                                       embedded: Any):
    llm = embedded.load(QWEN).llm

    def ask(**extra: Any) -> ds.Reply:
        llm.reset()  # from an empty cache both times (see test_think_budget)
        return embedded_client.chat(QUESTION, QWEN, think=True, max_tokens=120, temperature=0,
                                    seed=4, **extra)

    plain, limited = ask(), ask(think_min=500, max_extensions=0)
    assert (limited.thinking, limited.answer) == (plain.thinking, plain.answer)
    assert limited.stats.thinking_tokens == plain.stats.thinking_tokens
    assert limited.extensions == 0 and not any("think_min" in n for n in limited.notes)


# --- Ollama: the reasoning from /api/chat, extended by a raw /api/generate --------------------

def _ollama(httpserver: HTTPServer, chat: list[str], *generates: list[str],
            version: str = "0.9.0") -> ds.Client:
    httpserver.expect_request("/api/version").respond_with_json({"version": version})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(SHOW_R1)
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
        "\n".join(chat) + "\n", content_type=NDJSON)
    for lines in generates:
        httpserver.expect_oneshot_request("/api/generate", method="POST").respond_with_data(
            "\n".join(lines) + "\n", content_type=NDJSON)
    return ds.connect("ollama", host=httpserver.url_for(""), set_default=False)


def test_ollama_extends_with_the_whole_prefix(httpserver: HTTPServer):
    client = _ollama(
        httpserver,
        [_chat_line(thinking="12 plus 30"), _chat_line(thinking=" is 42.\n"),
         _chat_line(content="42"), _chat_line(done=True)],
        [_generate_line(" let me check"), _generate_line(" again."), _generate_line("</think>"),
         _generate_line("\n\nnot yet"), _generate_line("", done=True)],
        [_generate_line(" 42 it is."), _generate_line("</"), _generate_line("think>\n\n"),
         _generate_line("The answer is 42."), _generate_line("", done=True)])
    reply = client.chat(QUESTION, R1, think_min=6, max_extensions=3, max_tokens=100)
    assert reply.thinking == "12 plus 30 is 42.\n\nWait let me check again.\n\nWait 42 it is."
    assert reply.answer == "The answer is 42." and reply.extensions == 2
    assert not reply.budget_hit and any("extended 2 times" in n for n in reply.notes)
    assert reply.stats.thinking_tokens == 7  # 2 + Wait + 2 + Wait + the piece before the tag
    first, second = _bodies(httpserver, "/api/generate")
    head = f"<｜User｜>{QUESTION}<｜Assistant｜><think>\n"
    assert first["prompt"] == f"{head}12 plus 30 is 42.\n\nWait"
    assert second["prompt"] == f"{head}12 plus 30 is 42.\n\nWait let me check again.\n\nWait"
    assert first["raw"] is True and first["stream"] and "system" not in first
    assert (first["options"]["num_predict"], second["options"]["num_predict"]) == (97, 94)
    assert _bodies(httpserver, "/api/chat")[0]["think"] is True


def test_ollama_extends_in_chinese_then_cuts_at_the_budget(httpserver: HTTPServer):
    client = _ollama(
        httpserver,
        [_chat_line(thinking="5加4"), _chat_line(thinking="得9。"), _chat_line(content="9"),
         _chat_line(done=True)],
        [_generate_line(f"想{i}") for i in range(10)],
        [_generate_line("9 个"), _generate_line("", done=True)])
    reply = client.chat(ZH_QUESTION, R1, think_min=4, think_budget=6, max_tokens=100)
    assert reply.extensions == 1 and reply.budget_hit and reply.answer == "9 个"
    assert reply.thinking.startswith("5加4得9。\n\n等等想0想1想2")
    assert reply.thinking.endswith(WRAP_UP["zh"]) and "想3" not in reply.thinking
    extend, answer = _bodies(httpserver, "/api/generate")
    assert extend["prompt"].endswith("<think>\n5加4得9。\n\n等等")
    assert answer["prompt"].endswith(
        f"<think>\n5加4得9。\n\n等等想0想1想2\n\n{WRAP_UP['zh']}\n</think>\n\n")
    assert answer["options"]["num_predict"] == 94


def test_ollama_reasoning_long_enough_is_not_extended(httpserver: HTTPServer):
    client = _ollama(httpserver, [_chat_line(thinking="a "), _chat_line(thinking="b"),
                                  _chat_line(content="42"), _chat_line(done=True)])
    reply = client.chat(QUESTION, R1, think_min=2)
    assert (reply.thinking, reply.answer, reply.extensions) == ("a b", "42", 0)
    assert _bodies(httpserver, "/api/generate") == []


def test_ollama_before_the_think_switch_refuses_a_minimum(httpserver: HTTPServer):
    client = _ollama(httpserver, [], version="0.8.0")
    with pytest.raises(BudgetUnsupported, match=r"0\.9\.0 or later.*extend reasoning.*think_min"):
        client.chat(QUESTION, R1, think_min=16)
    assert _bodies(httpserver, "/api/chat") == []


# --- OpenAI-compatible servers: continue the final assistant message --------------------------

def test_vllm_extends_by_continuing_the_final_assistant_message(httpserver: HTTPServer):
    phase1 = _sse(_delta(reasoning="r0 "), _delta(reasoning="r1"), _delta(content="42"))
    # Without a reasoning parser the continuation's reasoning and answer come as content.
    phase2 = _sse(_delta(content=", r2</think>\n\n"), _delta(content="42", finish="stop"))
    client = _openai(httpserver, "vllm", [phase1, phase2])
    reply = client.chat(QUESTION, "deepseek-r1", think_min=4, max_tokens=50)
    assert reply.thinking == "r0 r1\n\nWait, r2" and reply.answer == "42"
    assert reply.extensions == 1 and not reply.budget_hit
    second = [req.get_json() for req, _ in httpserver.log
              if req.path == "/v1/chat/completions"][1]
    assert second["continue_final_message"] is True and second["add_generation_prompt"] is False
    assert second["messages"][:-1] == [{"role": "user", "content": QUESTION}]
    assert second["messages"][-1] == {"role": "assistant", "content": "<think>\nr0 r1\n\nWait"}
    assert second["max_tokens"] == 47


def test_deepseek_extends_with_prefix_completion(httpserver: HTTPServer):
    httpserver.expect_oneshot_request("/v1/chat/completions", method="POST").respond_with_data(
        _sse(_delta(reasoning="x"), _delta(content="42", finish="stop")),
        content_type="text/event-stream")
    httpserver.expect_oneshot_request("/beta/chat/completions", method="POST") \
        .respond_with_data(_sse(_delta(reasoning=" y z"), _delta(content="42", finish="stop")),
                           content_type="text/event-stream")
    backend = OpenAIBackend(base_url=httpserver.url_for("/v1"), continuation="deepseek")
    reply = ds.connect(backend, set_default=False).chat(ZH_QUESTION, "deepseek-reasoner",
                                                        think_min=3)
    assert reply.thinking == "x\n\n等等 y z" and reply.answer == "42" and reply.extensions == 1
    last = next(req.get_json() for req, _ in httpserver.log
                if req.path == "/beta/chat/completions")["messages"][-1]
    assert last == {"role": "assistant", "content": "", "reasoning_content": "x\n\n等等",
                    "prefix": True}


def test_server_that_cannot_continue_refuses_a_minimum(httpserver: HTTPServer):
    client = _openai(httpserver, "library", [])
    with pytest.raises(BudgetUnsupported, match="extend reasoning to a thinking minimum"):
        client.chat(QUESTION, "deepseek-r1", think_min=16)
    assert not [r for r, _ in httpserver.log if r.path == "/v1/chat/completions"]


# --- compare: a sweep over think_min ----------------------------------------------------------

class _Extending(ScriptedBackend):
    """Replies that say they were extended once whenever the plan has a minimum."""

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        for ev in super().stream(request):
            if isinstance(ev, Done) and request.plan.think_min:
                ev.extensions = 1
            yield ev


def _sweep_client() -> tuple[ds.Client, _Extending]:
    backend = _Extending(["<think>想一想</think>答案是 \\boxed{9}"],
                         details={"fake:1b": {"capabilities": ["thinking"]}})
    return ds.connect(backend, set_default=False), backend


def test_compare_sweeps_think_min_like_a_budget(tmp_path):
    client, backend = _sweep_client()
    out = tmp_path / "rows.csv"
    df = compare("fake:1b", [ZH_QUESTION], client=client, think_min=[0, 64], think_budget=[128],
                 max_extensions=2, extension="等一下", out=out, progress=False)
    assert list(df.columns) == COLUMNS and df["think_min"].tolist() == [0, 64]
    assert df["extensions"].tolist() == [0, 1]
    asked = [(r.plan.budget, r.plan.think_min, r.plan.max_extensions, r.plan.extension)
             for r in backend.requests]
    assert asked == [(128, None, 3, None), (128, 64, 2, "等一下")]  # 0: no minimum
    s = summary(df)
    assert s["think_min"].tolist() == [0, 64] and s["extended"].tolist() == [0, 1]
    shown = for_display(s)
    assert shown["think_min"].tolist() == ["0", "64"] and "extended" in shown
    again = compare("fake:1b", [ZH_QUESTION], client=client, think_min=[0, 64],
                    think_budget=[128], max_extensions=2, extension="等一下", out=out,
                    progress=False)
    assert len(backend.requests) == 2 and again.attrs["skipped"] == 2  # resumed by the key
    with pytest.raises(ConfigurationError, match="above think_budget"):
        compare("fake:1b", [QUESTION], client=client, think_min=[256], think_budget=[128])
    with pytest.raises(ConfigurationError, match="listed twice"):
        compare("fake:1b", [QUESTION], client=client, think_min=[64, 64])
    assert len(backend.requests) == 2  # refused before anything ran
    plain = for_display(summary(compare("fake:1b", [QUESTION], client=client, progress=False)))
    assert "think_min" not in plain and "extended" not in plain


def test_files_written_before_think_min_resume(tmp_path):
    client, backend = _sweep_client()
    df = compare("fake:1b", [QUESTION], client=client, progress=False)
    old = tmp_path / "old.csv"
    df.drop(columns=["think_min", "extensions"]).to_csv(old, index=False)
    rows = ResultsFile(old).read()
    assert len(rows) == 1 and pd.isna(rows[0]["think_min"])
    compare("fake:1b", [QUESTION, ZH_QUESTION], client=client, out=old, progress=False)
    assert len(backend.requests) == 2  # the old row counts as done: only the new prompt ran
    assert list(pd.read_csv(old).columns) == COLUMNS


def test_cli_sweeps_think_min(monkeypatch: pytest.MonkeyPatch):
    from dskit.cli import build_parser
    from dskit.cli import compare as cli_compare

    client, backend = _sweep_client()
    monkeypatch.setattr(cli_compare, "client_for", lambda args: client)
    args = build_parser().parse_args(["compare", "fake:1b", "--prompts", "cup", "--n", "1",
                                      "--think-min", "0,32", "64", "--max-extensions", "1"])
    assert args.think_min == [[0, 32], [64]]
    assert cli_compare.cmd_compare(args) == 0
    assert sorted({r.plan.think_min for r in backend.requests}, key=str) == [32, 64, None]
    assert {r.plan.max_extensions for r in backend.requests if r.plan.think_min} == {1}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["compare", "fake:1b", "--think-min", "-3"])


# --- the chat layer: conversations and the steps of a structured reply ------------------------

def test_a_conversation_carries_the_minimum_and_a_structured_answer_drops_it():
    support = ReasoningSupport(think_switch=True, format_after_reasoning=False)
    backend = ScriptedBackend([Delta("thinking", "张伟，三十五岁。"), Delta("answer", "好的")],
                              [Delta("answer", '{"name": "张伟", "age": 35}')],
                              support=support, details={"fake:1b": {"capabilities": ["thinking"]}})
    client = ds.connect(backend, set_default=False)
    conv = ds.Conversation("fake:1b", client=client, think_min=8, max_extensions=1)
    conv.send("你好")
    assert (backend.requests[0].plan.think_min, backend.requests[0].plan.max_extensions) == (8, 1)
    backend.requests.clear()
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"]}
    reply = ds.chat("提取：张伟今年三十五岁。", client=client, format=schema, think_min=8,
                    think_budget=64)
    probe, answer = backend.requests
    assert (probe.plan.think_min, probe.plan.budget) == (8, 64)
    # The answer request does not reason: a minimum (or budget) there would be refused.
    assert answer.plan.think is False and answer.plan.think_min is answer.plan.budget is None
    assert reply.parsed == {"name": "张伟", "age": 35}
