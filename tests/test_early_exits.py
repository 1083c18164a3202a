"""Early exits from one trace (`exit_at`): each checkpoint closes the same reasoning exactly as
`think_budget` would, and only the answer is generated again — on the real embedded model, on
Ollama's and vLLM's shapes from a local HTTP server, and through `compare` and the CLI."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

import dskit as ds
from dskit.backends.embedded import EmbeddedBackend
from dskit.backends.openai import OpenAIBackend
from dskit.errors import BudgetUnsupported, ComparisonFailed, ConfigurationError
from dskit.evals.prompts import Prompt
from dskit.reasoning.plan import WRAP_UP, ReasoningSupport, Traits, check_exits, plan_reasoning
from tests.test_think_budget import FINAL, _delta, _sse

QWEN = "qwen2.5-coder:0.5b"
R1 = "deepseek-r1:7b"
NDJSON = "application/x-ndjson"
QUESTION = "What is 12 + 30? Think it through."
ZH_QUESTION = "小明有 5 个苹果，又买了 4 个。他现在有几个苹果？"


# --- the plan ---------------------------------------------------------------------------------

def test_checkpoints_are_sorted_and_checked():
    assert check_exits([256, 0, 64]) == (0, 64, 256)
    assert check_exits([None, 32]) == (32,)  # None, the whole trace, is always read
    for bad in ([-1], [1.5], ["64"], [True], []):
        with pytest.raises(ConfigurationError, match="exit_at"):
            check_exits(bad)
    with pytest.raises(ConfigurationError, match="twice"):
        check_exits([64, 64])


def test_exits_ask_for_reasoning_like_a_budget():
    plan = plan_reasoning(Traits(), None, ReasoningSupport(two_phase=True), exits=[0, 64])
    assert plan.think is True and plan.two_phase and plan.exits == (0, 64)
    assert plan.budget is None
    r1 = plan_reasoning(Traits(reasoning=True, r1=True, system_prompt_ok=True), None,
                        ReasoningSupport(force_prefix=True), exits=[32])
    assert r1.prefix == "<think>\n"  # where the reasoning starts is known, as with a budget
    with pytest.raises(ConfigurationError, match="think=False"):
        plan_reasoning(Traits(), False, ReasoningSupport(two_phase=True), exits=[64])
    with pytest.raises(ConfigurationError, match="give exit_at alone"):
        plan_reasoning(Traits(), None, ReasoningSupport(two_phase=True), 64, exits=[64])
    with pytest.raises(ConfigurationError, match="think_min=32"):
        plan_reasoning(Traits(), None, ReasoningSupport(two_phase=True), think_min=32,
                       exits=[64])


def test_chat_points_to_early_exits(scripted: Any):
    with pytest.raises(ConfigurationError, match="early_exits"):
        ds.chat(QUESTION, client=scripted(["42"]), exit_at=[0, 64])


def test_a_backend_that_cannot_continue_says_so(scripted: Any):
    client = scripted(["<think>a</think>42"], support=ReasoningSupport(two_phase=True))
    with pytest.raises(BudgetUnsupported, match="exit_at"):
        ds.early_exits(QUESTION, exit_at=[0, 8], client=client)
    with pytest.raises(ComparisonFailed) as failed:
        ds.compare("scripted", [QUESTION], client=client, exit_at=[0, 8], progress=False)
    rows = failed.value.rows
    assert rows["error"].str.contains("BudgetUnsupported").all() and len(rows) == 3


# --- Ollama: /api/chat once, then raw continuations of the same prefix --------------------------

SHOW_R1 = {
    "template": "{{- range $i, $_ := .Messages }}{{- if eq .Role \"user\" }}<｜User｜>"
                "{{ .Content }}{{ end }}{{ end }}<｜Assistant｜>",
    "details": {"format": "gguf", "family": "qwen2", "families": ["qwen2"]},
    "model_info": {"general.architecture": "qwen2",
                   "general.basename": "DeepSeek-R1-Distill-Qwen"},
    "capabilities": ["completion", "thinking"],
}

def _line(done: bool = False, **fields: Any) -> str:
    body: dict[str, Any] = {"model": R1, "created_at": "2025-06-01T08:00:00Z", "done": done,
                            **fields}
    if done:
        body.update(done_reason="stop", **FINAL)
    return json.dumps(body)


def _chat(thinking: str = "", content: str = "", done: bool = False) -> str:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        msg["thinking"] = thinking
    return _line(done, message=msg)


def _ollama(httpserver: HTTPServer, steps: int, answers: list[str]) -> ds.Client:
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.9.0"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(SHOW_R1)
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
        "\n".join([*(_chat(thinking=f"s{i} ") for i in range(steps)),
                   _chat(content="Final: 42"), _chat(done=True)]) + "\n", content_type=NDJSON)
    for answer in answers:
        httpserver.expect_oneshot_request("/api/generate", method="POST").respond_with_data(
            _line(response=answer) + "\n" + _line(True, response="") + "\n",
            content_type=NDJSON)
    return ds.connect("ollama", host=httpserver.url_for(""), set_default=False)


def _bodies(httpserver: HTTPServer, path: str) -> list[dict[str, Any]]:
    return [req.get_json() for req, _ in httpserver.log if req.path == path]


def test_ollama_generates_the_reasoning_once_and_continues_each_checkpoint(
        httpserver: HTTPServer):
    client = _ollama(httpserver, steps=6, answers=["at 4: 40", "at 2: 41", "at 0: 7"])
    replies = ds.early_exits(QUESTION, R1, exit_at=[0, 2, 4, 8], client=client, max_tokens=100)
    assert list(replies) == [None, 8, 4, 2, 0]
    assert replies[None].answer == "Final: 42" and not replies[None].budget_hit
    assert replies[8] is replies[None]  # the reasoning ended before 8: the whole reply
    assert [replies[c].answer for c in (4, 2, 0)] == ["at 4: 40", "at 2: 41", "at 0: 7"]
    assert all(replies[c].budget_hit for c in (4, 2, 0))
    assert replies[4].thinking == f"s0 s1 s2 s3 \n\n{WRAP_UP['en']}"  # as the budget shows it
    assert replies[4].stats.thinking_tokens == 4 and replies[0].stats.thinking_tokens == 0
    chats = _bodies(httpserver, "/api/chat")
    assert len(chats) == 1 and chats[0]["think"] is True  # one reasoning generation
    prompts = [b["prompt"] for b in _bodies(httpserver, "/api/generate")]
    start = f"<｜User｜>{QUESTION}<｜Assistant｜>"
    assert prompts == [
        f"{start}<think>\ns0 s1 s2 s3\n\n{WRAP_UP['en']}\n</think>\n\n",
        f"{start}<think>\ns0 s1\n\n{WRAP_UP['en']}\n</think>\n\n",
        f"{start}<think>\n\n</think>\n\n",
    ]
    generate = _bodies(httpserver, "/api/generate")
    assert all(b["raw"] is True and b["think"] is False for b in generate)
    assert [b["options"]["num_predict"] for b in generate] == [96, 98, 100]


def test_ollama_compare_rows_carry_the_checkpoint_as_their_budget(httpserver: HTTPServer):
    client = _ollama(httpserver, steps=6, answers=["40", "7"])
    rows = ds.compare(R1, [Prompt("add", QUESTION, "42", "math")],
                      client=client, exit_at=[0, 3, 64], progress=False)
    assert sorted(rows["think_budget"].fillna(-1).tolist()) == [-1, 0, 3, 64]
    by = {(None if pd.isna(r["think_budget"]) else int(r["think_budget"])): r
          for r in rows.to_dict("records")}
    assert by[None]["correct"] and by[64]["correct"] and not by[64]["budget_hit"]
    assert by[3]["final"] == "40" and by[3]["correct"] is False and by[3]["budget_hit"]
    assert by[0]["thinking_tokens"] == 0
    assert len(_bodies(httpserver, "/api/chat")) == 1
    table = ds.compare.summary(rows)
    assert sorted(table["think_budget"].fillna(-1).tolist()) == [-1, 0, 3, 64]
    assert rows.attrs["settings"]["exit_at"] == [0, 3, 64]


def test_ollama_before_the_think_switch_refuses(httpserver: HTTPServer):
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.6.0"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(SHOW_R1)
    client = ds.connect("ollama", host=httpserver.url_for(""), set_default=False)
    with pytest.raises(BudgetUnsupported, match="think"):
        ds.early_exits(QUESTION, R1, exit_at=[0, 16], client=client)
    assert _bodies(httpserver, "/api/chat") == []


# --- OpenAI-compatible servers: the final assistant message continued -------------------------

def test_vllm_continues_the_final_assistant_message_at_each_checkpoint(httpserver: HTTPServer):
    httpserver.expect_request("/v1/models").respond_with_json(
        {"data": [{"id": "deepseek-r1", "owned_by": "vllm"}]})
    replies = [_sse(*[_delta(reasoning=f"r{i} ") for i in range(5)],
                    _delta(content="42", finish="stop")),
               _sse(_delta(content="40", finish="stop")),
               _sse(_delta(content="9", finish="stop"))]
    for body in replies:
        httpserver.expect_oneshot_request("/v1/chat/completions", method="POST") \
            .respond_with_data(body, content_type="text/event-stream")
    client = ds.connect(OpenAIBackend(base_url=httpserver.url_for("/v1")), set_default=False)
    out = ds.early_exits(ZH_QUESTION, "deepseek-r1", exit_at=[0, 3], client=client,
                         max_tokens=50)
    assert [out[c].answer for c in (None, 3, 0)] == ["42", "40", "9"]
    bodies = [req.get_json() for req, _ in httpserver.log
              if req.path == "/v1/chat/completions"]
    assert len(bodies) == 3 and "continue_final_message" not in bodies[0]
    third, second = bodies[2], bodies[1]
    assert second["continue_final_message"] is True and second["add_generation_prompt"] is False
    assert second["messages"][-1] == {  # the cached prefix: the reasoning so far, in Chinese
        "role": "assistant", "content": f"<think>\nr0 r1 r2\n\n{WRAP_UP['zh']}\n</think>\n\n"}
    assert third["messages"][-1]["content"] == "<think>\n\n</think>\n\n"
    assert second["max_tokens"] == 47


def test_a_server_that_cannot_continue_fails_before_generating(httpserver: HTTPServer):
    httpserver.expect_request("/v1/models").respond_with_json(
        {"data": [{"id": "deepseek-r1", "owned_by": "library"}]})
    client = ds.connect(OpenAIBackend(base_url=httpserver.url_for("/v1")), set_default=False)
    with pytest.raises(BudgetUnsupported, match="continue_final_message"):
        ds.early_exits(QUESTION, "deepseek-r1", exit_at=[0, 16], client=client)
    assert not [r for r, _ in httpserver.log if r.path == "/v1/chat/completions"]


# --- the CLI ----------------------------------------------------------------------------------

def test_cli_reads_checkpoints_separated_by_commas():
    from dskit.cli.compare import checkpoints_arg
    assert checkpoints_arg("0,64,128, 256") == [0, 64, 128, 256]
    import argparse
    for bad in ("a,1", "-1", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            checkpoints_arg(bad)


# --- embedded: one trace, the same answers as budgets -------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("question", [QUESTION, ZH_QUESTION])
def test_embedded_checkpoints_answer_as_the_budgets_do(embedded_client: ds.Client,
                                                       embedded: EmbeddedBackend,
                                                       question: str):
    """At temperature 0, each checkpoint's reply is the `think_budget` reply of that size,
    from a trace whose reasoning was generated once."""
    kwargs: dict[str, Any] = {"max_tokens": 160, "temperature": 0}
    llm = embedded.load(QWEN).llm
    evaluated: list[int] = []
    real_eval = llm.eval
    llm.eval = lambda tokens: (evaluated.append(len(tokens)), real_eval(tokens))[1]
    try:
        llm.reset()  # from an empty cache, as the budget replies below
        exits = ds.early_exits(question, QWEN, exit_at=[0, 4, 8, 4000], client=embedded_client,
                               **kwargs)
        decoded = sum(1 for n in evaluated if n == 1)  # one id per generated token
    finally:
        llm.eval = real_eval
    whole = exits[None]
    assert whole.thinking and whole.stats.thinking_tokens > 8
    generated = whole.stats.eval_tokens + sum(exits[c].stats.answer_tokens for c in (0, 4, 8))
    # The reasoning was decoded once: the trace and the three answers, nothing more.
    assert decoded <= generated + 4
    for checkpoint in (0, 4, 8, 4000):
        llm.reset()
        budget = embedded_client.chat(question, QWEN, think_budget=checkpoint, **kwargs)
        got = exits[checkpoint]
        assert (got.answer, got.budget_hit) == (budget.answer, budget.budget_hit), checkpoint
        assert got.stats.thinking_tokens == budget.stats.thinking_tokens
    assert exits[4000] is whole and exits[8].thinking.endswith(
        WRAP_UP["zh" if question == ZH_QUESTION else "en"])


@pytest.mark.slow
def test_embedded_compare_with_exits(embedded_client: ds.Client, tmp_path: Any):
    out = tmp_path / "exits.csv"
    prompts = [Prompt("mul", "What is 6 * 7?", "42", "math"),
               Prompt("apples", "3 个苹果加 4 个苹果是几个？", "7", "math")]
    rows = ds.compare(QWEN, prompts, client=embedded_client, exit_at=[0, 16], max_tokens=200,
                      temperature=0, out=out, progress=False)
    assert len(rows) == 6 and rows["error"].isna().all()
    assert sorted(rows["think_budget"].fillna(-1).astype(int).tolist()) == [-1, -1, 0, 0, 16, 16]
    assert (rows[rows["think_budget"] == 0]["thinking_tokens"] == 0).all()
    table = ds.compare.summary(rows)
    assert len(table) == 3
    again = ds.compare(QWEN, prompts, client=embedded_client, exit_at=[0, 16], max_tokens=200,
                       temperature=0, out=out, progress=False)
    assert again.attrs["skipped"] == 6  # resumed from the file, nothing asked again
