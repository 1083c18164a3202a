"""Thinking per request (issue 25, parts 3-4): a hybrid model's `think=True/False`, effort
levels and the servers' own thinking budgets, checked against scripted servers that answer in
the shapes the servers' docs give, and the bodies dskit sends checked field by field.

Sources of each shape: docs/thinking.md (Ollama docs/api.md and model/renderers/deepseek3.go;
vLLM features/reasoning_outputs.md and its ChatCompletionRequest; SGLang's thinking-budget and
reasoning-parser docs; llama.cpp tools/server/README.md and server-schema.cpp; DeepSeek's
api-docs guides/thinking_mode).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

import dskit as ds
from dskit.backends.openai import NATIVE_SLACK, OpenAIBackend
from dskit.errors import ConfigurationError, EffortUnsupported
from dskit.reasoning.plan import (
    WRAP_UP,
    ReasoningSupport,
    Traits,
    detect_traits,
    is_hybrid,
    plan_reasoning,
    tools_while_thinking,
)

QUESTION = "小明有 5 个苹果，又买了 4 个。他现在有几个苹果？"
V31_HF = "deepseek-ai/DeepSeek-V3.1"
V31_OLLAMA = "deepseek-v3.1:671b"
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"


# --- which models switch, and the plan -------------------------------------------------------

@pytest.mark.parametrize(("name", "hybrid", "tools"), [
    ("deepseek-v3.1:671b", True, False),
    ("deepseek-v3.1:671b-cloud", True, False),
    ("deepseek-ai/DeepSeek-V3.1-Terminus", True, False),
    ("deepseek-v3.2:cloud", True, True),
    ("deepseek-ai/DeepSeek-V3.2-Exp", True, False),  # V3.2 was the first to (catalog)
    ("deepseek-ai/DeepSeek-V3.2-Speciale", False, None),  # thinks always, no tools
    ("deepseek-chat", True, True),  # retired names: the catalog maps them to V4-Flash
    ("deepseek-reasoner", True, True),
    ("deepseek-v4-flash", True, True),
    ("deepseek-v4-pro", True, True),
    ("deepseek-r1:671b", False, True),  # R1-0528 calls tools, and always thinks
    ("deepseek-r1:7b", False, None),
    ("deepseek-ai/DeepSeek-V3", False, None),
    ("qwen3:8b", False, None),
])
def test_which_models_switch_their_thinking(name: str, hybrid: bool, tools: bool | None):
    assert is_hybrid(name) is hybrid
    assert tools_while_thinking(name) is tools


def test_ollamas_model_info_names_a_hybrid_model_too():
    details = {"model_info": {"general.name": "DeepSeek V3.1"}, "capabilities": ["thinking"]}
    traits = detect_traits("my-deepseek:latest", details)
    assert traits.hybrid and traits.reasoning and not traits.r1


def test_a_hybrid_model_told_not_to_think_gets_no_forced_opening():
    traits = Traits(hybrid=True)
    support = ReasoningSupport(force_prefix=True, hybrid_switch=True)
    off = plan_reasoning(traits, False, support)
    assert off.send_think is False and off.prefix == "" and not off.starts_inside
    on = plan_reasoning(traits, True, support)
    assert on.send_think is True and on.starts_inside and on.hybrid and not on.notes
    left = plan_reasoning(traits, None, support)
    assert left.send_think is None and not left.starts_inside  # the server's own default


def test_effort_asks_for_reasoning_and_is_checked():
    plan = plan_reasoning(Traits(hybrid=True), None, ReasoningSupport(hybrid_switch=True),
                          effort="high")
    assert plan.effort == "high" and plan.think is True and plan.send_think is True
    with pytest.raises(ConfigurationError, match="think=False"):
        plan_reasoning(Traits(), False, ReasoningSupport(), effort="low")
    with pytest.raises(ConfigurationError, match="'low', 'medium', 'high', 'max'"):
        plan_reasoning(Traits(), None, ReasoningSupport(), effort="extreme")


# --- Ollama: `think` on, off, or a level --------------------------------------------------------

SHOW_V31 = {
    "template": "{{ .Prompt }}",
    "details": {"format": "gguf", "family": "deepseek2", "families": ["deepseek2"]},
    "model_info": {"general.architecture": "deepseek2", "general.name": "DeepSeek V3.1"},
    "capabilities": ["completion", "tools", "thinking"],
}
SHOW_QWEN3 = {
    "template": "{{ .Prompt }}",
    "details": {"format": "gguf", "family": "qwen3", "families": ["qwen3"]},
    "model_info": {"general.architecture": "qwen3", "general.name": "Qwen3 8B"},
    "capabilities": ["completion", "tools", "thinking"],
}


def _line(model: str, content: str = "", thinking: str = "", done: bool = False,
          **extra: Any) -> str:
    """One /api/chat stream object (docs/api.md, "Chat request (streaming)")."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    message.update(extra)
    obj: dict[str, Any] = {"model": model, "created_at": "2025-09-01T08:00:00Z",
                           "message": message, "done": done}
    if done:
        obj.update(done_reason="stop", total_duration=10, load_duration=1,
                   prompt_eval_count=9, prompt_eval_duration=2, eval_count=6, eval_duration=5)
    return json.dumps(obj) + "\n"


def _ollama(httpserver: HTTPServer, show: dict[str, Any], replies: list[str],
            version: str = "0.12.11") -> ds.Client:
    httpserver.expect_request("/api/version").respond_with_json({"version": version})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(show)
    httpserver.expect_request("/api/ps").respond_with_json({"models": []})
    for body in replies:
        httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
            body, content_type=NDJSON)
    return ds.connect("ollama", host=httpserver.url_for(""), set_default=False)


def _ollama_bodies(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [req.get_json() for req, _ in httpserver.log if req.path == "/api/chat"]


def test_ollama_v31_think_false_really_turns_thinking_off(httpserver: HTTPServer):
    # Ollama's deepseek3.1 renderer ends the prompt with `</think>` when think is false.
    client = _ollama(httpserver, SHOW_V31, [
        _line(V31_OLLAMA, "他现在有 9 个苹果。") + _line(V31_OLLAMA, done=True)])
    reply = client.chat(QUESTION, V31_OLLAMA, think=False)
    body = _ollama_bodies(httpserver)[0]
    assert body["think"] is False
    assert reply.answer == "他现在有 9 个苹果。" and reply.thinking == "" and not reply.reasoned


def test_ollama_v31_think_true_returns_the_thinking_apart(httpserver: HTTPServer):
    client = _ollama(httpserver, SHOW_V31, [
        _line(V31_OLLAMA, thinking="5 加 4 等于 9。") + _line(V31_OLLAMA, "9 个。")
        + _line(V31_OLLAMA, done=True)])
    reply = client.chat(QUESTION, V31_OLLAMA, think=True)
    assert _ollama_bodies(httpserver)[0]["think"] is True
    assert reply.thinking == "5 加 4 等于 9。" and reply.answer == "9 个。"


def test_ollama_v31_left_alone_keeps_ollamas_default(httpserver: HTTPServer):
    # Ollama thinks by default for a model with the thinking capability (server/routes.go).
    client = _ollama(httpserver, SHOW_V31, [
        _line(V31_OLLAMA, thinking="想一想。") + _line(V31_OLLAMA, "9 个。")
        + _line(V31_OLLAMA, done=True)])
    reply = client.chat(QUESTION, V31_OLLAMA)
    assert "think" not in _ollama_bodies(httpserver)[0]
    assert reply.thinking == "想一想。" and reply.answer == "9 个。"


def test_ollama_sends_an_effort_level_as_think(httpserver: HTTPServer):
    client = _ollama(httpserver, SHOW_QWEN3, [
        _line("qwen3:8b", thinking="嗯。") + _line("qwen3:8b", "9") + _line("qwen3:8b", done=True)],
        version="0.22.0")
    reply = client.chat(QUESTION, "qwen3:8b", effort="max")
    assert _ollama_bodies(httpserver)[0]["think"] == "max"
    assert reply.answer == "9" and reply.options["effort"] == "max"


def test_ollama_levels_follow_its_version(httpserver: HTTPServer):
    client = _ollama(httpserver, SHOW_QWEN3, [], version="0.12.11")
    with pytest.raises(EffortUnsupported, match="'low', 'medium', 'high'") as info:
        client.chat(QUESTION, "qwen3:8b", effort="max")
    assert info.value.available == ("low", "medium", "high")
    assert not _ollama_bodies(httpserver)


def test_ollama_deepseek_models_have_no_levels(httpserver: HTTPServer):
    client = _ollama(httpserver, SHOW_V31, [], version="0.22.0")
    with pytest.raises(EffortUnsupported, match="only as on or off"):
        client.chat(QUESTION, V31_OLLAMA, effort="high")


# --- OpenAI-compatible servers: vLLM, SGLang, llama.cpp, DeepSeek's platform --------------------

def _chunk(reasoning: str = "", content: str = "", finish: str | None = None,
           field: str = "reasoning_content", **delta: Any) -> dict[str, Any]:
    """One chat.completion.chunk; vLLM's reasoning field is `reasoning`, the others'
    `reasoning_content`."""
    d: dict[str, Any] = dict(delta)
    if reasoning:
        d[field] = reasoning
    if content:
        d["content"] = content
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def _sse(*chunks: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def _openai(httpserver: HTTPServer, owner: str | None, replies: list[str | tuple[int, dict]],
            model: str = V31_HF, **kwargs: Any) -> ds.Client:
    """A scripted OpenAI-compatible server; `owner` is what /v1/models says (None: no list)."""
    if owner is not None:
        httpserver.expect_request("/v1/models").respond_with_json(
            {"object": "list", "data": [{"id": model, "object": "model", "owned_by": owner}]})
    for reply in replies:
        handler = httpserver.expect_oneshot_request("/v1/chat/completions", method="POST")
        if isinstance(reply, tuple):
            handler.respond_with_json(reply[1], status=reply[0])
        else:
            handler.respond_with_data(reply, content_type=SSE)
    backend = OpenAIBackend(base_url=httpserver.url_for("/v1"), **kwargs)
    return ds.connect(backend, set_default=False)


def _bodies(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [req.get_json() for req, _ in httpserver.log if req.path == "/v1/chat/completions"]


THINKING = _sse(_chunk("5 加 4 等于 9。", field="reasoning"), _chunk(content="9 个。"),
                _chunk(finish="stop"))
ANSWER = _sse(_chunk(content="9 个。"), _chunk(finish="stop"))


@pytest.mark.parametrize(("think", "kwargs"), [(True, {"thinking": True}),
                                               (False, {"thinking": False})])
def test_vllm_switches_v31_by_its_chat_template_argument(httpserver: HTTPServer, think: bool,
                                                         kwargs: dict[str, bool]):
    client = _openai(httpserver, "vllm", [THINKING if think else ANSWER])
    reply = client.chat(QUESTION, V31_HF, think=think)
    body = _bodies(httpserver)[0]
    assert body["chat_template_kwargs"] == kwargs
    assert reply.answer == "9 个。"
    assert reply.thinking == ("5 加 4 等于 9。" if think else "")


def test_vllm_v31_left_alone_gets_no_switch(httpserver: HTTPServer):
    client = _openai(httpserver, "vllm", [ANSWER])
    reply = client.chat(QUESTION, V31_HF)
    assert "chat_template_kwargs" not in _bodies(httpserver)[0]
    assert reply.answer == "9 个。" and not reply.notes


def test_the_callers_own_template_arguments_go_beside_the_switch(httpserver: HTTPServer):
    client = _openai(httpserver, "vllm", [THINKING])
    client.chat(QUESTION, V31_HF, think=True, options={"chat_template_kwargs": {"x": 1}})
    assert _bodies(httpserver)[0]["chat_template_kwargs"] == {"thinking": True, "x": 1}


def test_sglang_switches_v32_by_thinking_not_enable_thinking(httpserver: HTTPServer):
    model = "deepseek-ai/DeepSeek-V3.2"
    client = _openai(httpserver, "sglang", [_sse(_chunk("想。"), _chunk(content="9"),
                                                 _chunk(finish="stop"))], model=model)
    reply = client.chat(QUESTION, model, think=True)
    assert _bodies(httpserver)[0]["chat_template_kwargs"] == {"thinking": True}
    assert reply.thinking == "想。" and reply.answer == "9"


def test_llama_cpp_switches_by_enable_thinking(httpserver: HTTPServer):
    client = _openai(httpserver, "llamacpp", [ANSWER])
    client.chat(QUESTION, V31_HF, think=False)
    assert _bodies(httpserver)[0]["chat_template_kwargs"] == {"enable_thinking": False}


def test_an_unknown_server_gets_no_guessed_switch_and_a_note(httpserver: HTTPServer):
    client = _openai(httpserver, "someone", [ANSWER])
    reply = client.chat(QUESTION, V31_HF, think=False)
    body = _bodies(httpserver)[0]
    assert "chat_template_kwargs" not in body and "thinking" not in body
    assert any("server='vllm'" in n for n in reply.notes)


def test_server_option_names_a_server_behind_a_proxy(httpserver: HTTPServer):
    client = _openai(httpserver, None, [ANSWER], server="vllm")
    client.chat(QUESTION, V31_HF, think=False)
    assert _bodies(httpserver)[0]["chat_template_kwargs"] == {"thinking": False}
    with pytest.raises(ConfigurationError, match="server="):
        OpenAIBackend(base_url=httpserver.url_for("/v1"), server="tgi")


# DeepSeek's platform, scripted locally (server="deepseek" stands for api.deepseek.com).

@pytest.mark.parametrize("name", ["deepseek-reasoner", "deepseek-chat"])
def test_platform_retired_names_are_refused_with_the_fix(httpserver: HTTPServer, name: str):
    client = _openai(httpserver, None, [ANSWER], server="deepseek")
    with pytest.raises(ConfigurationError, match=r"retired.*deepseek-v4-flash"):
        client.chat(QUESTION, name)
    assert not _bodies(httpserver)  # refused before anything was sent


@pytest.mark.parametrize(("think", "field"), [(False, {"type": "disabled"}),
                                              (True, {"type": "enabled"})])
def test_platform_think_is_the_thinking_parameter(httpserver: HTTPServer, think: bool,
                                                  field: dict[str, str]):
    client = _openai(httpserver, None, [ANSWER], server="deepseek")
    reply = client.chat(QUESTION, "deepseek-v4-flash", think=think)
    body = _bodies(httpserver)[0]
    assert body["model"] == "deepseek-v4-flash" and body["thinking"] == field
    assert reply.answer == "9 个。"


def test_platform_model_left_alone_keeps_the_platforms_default(httpserver: HTTPServer):
    client = _openai(httpserver, None, [THINKING], server="deepseek")
    client.chat(QUESTION, "deepseek-v4-pro")
    body = _bodies(httpserver)[0]
    assert body["model"] == "deepseek-v4-pro"
    assert "thinking" not in body and "reasoning_effort" not in body


def test_platform_effort_is_reasoning_effort(httpserver: HTTPServer):
    client = _openai(httpserver, None, [THINKING], server="deepseek")
    reply = client.chat(QUESTION, "deepseek-v4-pro", effort="max")
    body = _bodies(httpserver)[0]
    assert body["reasoning_effort"] == "max" and body["model"] == "deepseek-v4-pro"
    assert reply.options["effort"] == "max"


def test_platform_effort_levels_are_the_documented_ones(httpserver: HTTPServer):
    client = _openai(httpserver, None, [], server="deepseek")
    with pytest.raises(EffortUnsupported, match="'low', 'high', 'max'") as info:
        client.chat(QUESTION, "deepseek-v4-flash", effort="medium")
    assert info.value.available == ("low", "high", "max")
    assert not _bodies(httpserver)


@pytest.mark.parametrize("owner", ["vllm", "sglang", "llamacpp"])
def test_self_hosted_deepseek_models_have_no_effort_levels(httpserver: HTTPServer, owner: str):
    client = _openai(httpserver, owner, [])
    with pytest.raises(EffortUnsupported, match="read only whether the model thinks"):
        client.chat(QUESTION, V31_HF, effort="high")
    assert not _bodies(httpserver)


def test_effort_for_a_model_that_does_not_reason_is_dropped_with_the_note(
        httpserver: HTTPServer):
    client = _openai(httpserver, "vllm", [ANSWER], model="Qwen/Qwen2.5-7B-Instruct")
    reply = client.chat(QUESTION, "Qwen/Qwen2.5-7B-Instruct", effort="low")
    assert "reasoning_effort" not in _bodies(httpserver)[0]
    assert any("think=True had no effect" in n for n in reply.notes)


# --- the servers' own thinking budgets -----------------------------------------------------------

R1 = "deepseek-ai/DeepSeek-R1-0528"


def _budgeted_reply(pieces: int) -> str:
    """A reply whose reasoning the server stopped after `pieces` pieces (vLLM's shape)."""
    return _sse(*[_chunk(f"第{i}步。", field="reasoning") for i in range(pieces)],
                _chunk(content="答案是 9。"), _chunk(finish="stop"))


def test_vllm_enforces_the_budget_with_thinking_token_budget(httpserver: HTTPServer):
    httpserver.expect_request("/version").respond_with_json({"version": "0.21.0"})
    client = _openai(httpserver, "vllm", [_budgeted_reply(4)], model=R1)
    reply = client.chat(QUESTION, R1, think_budget=4, max_tokens=200)
    bodies = _bodies(httpserver)
    assert len(bodies) == 1 and bodies[0]["thinking_token_budget"] == 4
    assert "continue_final_message" not in bodies[0]
    assert reply.answer == "答案是 9。" and reply.budget_hit
    assert "think_budget=4 enforced by the server (vLLM thinking_token_budget)." in reply.notes
    assert not any("cut at its budget" in n for n in reply.notes)


def test_vllm_refusing_the_field_falls_back_to_the_continuation(httpserver: HTTPServer):
    httpserver.expect_request("/version").respond_with_json({"version": "0.21.0"})
    refusal = {"error": {"message": "thinking_token_budget is set but reasoning_config is not "
                                    "configured. Please set --reasoning-parser and/or "
                                    "--reasoning-config to use thinking_token_budget.",
                         "type": "BadRequestError", "code": 400}}
    phase1 = _sse(*[_chunk(f"r{i} ") for i in range(6)], _chunk(content="late"))
    phase2 = _sse(_chunk(content="答案是 9。", finish="stop"))
    client = _openai(httpserver, "vllm", [(400, refusal), phase1, phase2], model=R1)
    reply = client.chat(QUESTION, R1, think_budget=3, max_tokens=50)
    bodies = _bodies(httpserver)
    assert bodies[0]["thinking_token_budget"] == 3
    assert "thinking_token_budget" not in bodies[1]
    assert bodies[2]["continue_final_message"] is True
    assert bodies[2]["messages"][-1]["content"] == \
        f"<think>\nr0 r1 r2\n\n{WRAP_UP['zh']}\n</think>\n\n"
    assert reply.answer == "答案是 9。" and reply.budget_hit
    assert any("did not take its own budget (vLLM thinking_token_budget" in n
               for n in reply.notes)
    # Not sent again to that model.
    httpserver.expect_oneshot_request("/v1/chat/completions", method="POST").respond_with_data(
        _budgeted_reply(1), content_type=SSE)
    client.chat(QUESTION, R1, think_budget=3, max_tokens=50)
    assert "thinking_token_budget" not in _bodies(httpserver)[3]


def test_an_older_vllm_keeps_dskits_continuation(httpserver: HTTPServer):
    httpserver.expect_request("/version").respond_with_json({"version": "0.11.0"})
    client = _openai(httpserver, "vllm", [_budgeted_reply(2)], model=R1)
    client.chat(QUESTION, R1, think_budget=8)
    assert "thinking_token_budget" not in _bodies(httpserver)[0]


def test_native_budget_false_keeps_dskits_continuation(httpserver: HTTPServer):
    httpserver.expect_request("/version").respond_with_json({"version": "0.21.0"})
    client = _openai(httpserver, "vllm", [_budgeted_reply(2)], model=R1, native_budget=False)
    client.chat(QUESTION, R1, think_budget=8)
    assert "thinking_token_budget" not in _bodies(httpserver)[0]


def test_a_server_that_ignores_the_field_is_cut_and_continued(httpserver: HTTPServer):
    httpserver.expect_request("/version").respond_with_json({"version": "0.21.0"})
    budget = 2
    ignored = _sse(*[_chunk("x ", field="reasoning") for _ in range(budget + NATIVE_SLACK + 5)],
                   _chunk(content="late"))
    client = _openai(httpserver, "vllm", [ignored, _sse(_chunk(content="9", finish="stop"))],
                     model=R1)
    reply = client.chat(QUESTION, R1, think_budget=budget, max_tokens=500)
    bodies = _bodies(httpserver)
    assert bodies[0]["thinking_token_budget"] == budget
    assert bodies[1]["continue_final_message"] is True and "thinking_token_budget" not in bodies[1]
    assert reply.answer == "9" and reply.budget_hit
    assert any("it ignores the field" in n for n in reply.notes)


def test_sglang_strict_thinking_takes_custom_params(httpserver: HTTPServer):
    httpserver.expect_request("/server_info").respond_with_json(
        {"enable_strict_thinking": True, "reasoning_parser": "deepseek-r1",
         "version": "0.5.21"})
    client = _openai(httpserver, "sglang", [_budgeted_reply(3)], model=R1)
    reply = client.chat(QUESTION, R1, think_budget=3)
    body = _bodies(httpserver)[0]
    assert body["custom_params"] == {"thinking_budget": 3}
    assert "custom_logit_processor" not in body
    assert any("SGLang strict thinking" in n for n in reply.notes) and reply.budget_hit


def test_sglang_without_strict_thinking_keeps_dskits_continuation(httpserver: HTTPServer):
    httpserver.expect_request("/server_info").respond_with_json(
        {"enable_strict_thinking": False, "version": "0.5.21"})
    client = _openai(httpserver, "sglang", [_budgeted_reply(2)], model=R1)
    client.chat(QUESTION, R1, think_budget=8)
    assert "custom_params" not in _bodies(httpserver)[0]


def test_llama_cpp_budget_only_when_asked_for(httpserver: HTTPServer):
    client = _openai(httpserver, "llamacpp", [_budgeted_reply(2)], model=R1,
                     native_budget=True)
    reply = client.chat(QUESTION, R1, think_budget=2)
    assert _bodies(httpserver)[0]["reasoning_budget_tokens"] == 2
    assert "think_budget=2 enforced by the server (llama.cpp reasoning_budget_tokens)." \
        in reply.notes


def test_a_budget_on_v31_switches_thinking_on_and_caps_it(httpserver: HTTPServer):
    httpserver.expect_request("/version").respond_with_json({"version": "0.21.0"})
    client = _openai(httpserver, "vllm", [_budgeted_reply(3)])
    reply = client.chat(QUESTION, V31_HF, think_budget=3)
    body = _bodies(httpserver)[0]
    assert body["chat_template_kwargs"] == {"thinking": True}
    assert body["thinking_token_budget"] == 3
    assert reply.thinking.startswith("第0步。") and reply.answer == "答案是 9。"


def test_a_budget_with_a_minimum_stays_dskits(httpserver: HTTPServer):
    httpserver.expect_request("/version").respond_with_json({"version": "0.21.0"})
    client = _openai(httpserver, "vllm", [_budgeted_reply(9)], model=R1)
    client.chat(QUESTION, R1, think_budget=16, think_min=4)
    assert "thinking_token_budget" not in _bodies(httpserver)[0]


# --- tools while thinking ----------------------------------------------------------------------

def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


def test_platform_thinking_with_tools_sends_the_reasoning_back(httpserver: HTTPServer):
    call = {"index": 0, "id": "call_0", "type": "function",
            "function": {"name": "add", "arguments": "{\"a\": 5, \"b\": 4}"}}
    first = _sse(_chunk("需要调用 add。"), _chunk(tool_calls=[call]), _chunk(finish="tool_calls"))
    second = _sse(_chunk("结果是 9。"), _chunk(content="他有 9 个苹果。"), _chunk(finish="stop"))
    client = _openai(httpserver, None, [first, second], server="deepseek")
    reply = client.chat(QUESTION, "deepseek-v4-flash", think=True, tools=[add])
    bodies = _bodies(httpserver)
    assert bodies[0]["tools"][0]["function"]["name"] == "add"
    assert bodies[0]["thinking"] == {"type": "enabled"}
    assistant = bodies[1]["messages"][1]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "call_0"
    assert assistant["reasoning_content"] == "需要调用 add。"
    assert reply.answer == "他有 9 个苹果。" and reply.tool_calls[0].result == 9


def test_other_servers_get_no_reasoning_back(httpserver: HTTPServer):
    call = {"index": 0, "id": "c1", "type": "function",
            "function": {"name": "add", "arguments": "{\"a\": 1, \"b\": 2}"}}
    model = "deepseek-ai/DeepSeek-V3.2"
    client = _openai(httpserver, "vllm", [
        _sse(_chunk("想。"), _chunk(tool_calls=[call]), _chunk(finish="tool_calls")),
        _sse(_chunk(content="3"), _chunk(finish="stop"))], model=model)
    reply = client.chat(QUESTION, model, think=True, tools=[add])
    assistant = _bodies(httpserver)[1]["messages"][1]
    assert "reasoning_content" not in assistant and reply.answer == "3"
    assert _bodies(httpserver)[0]["chat_template_kwargs"] == {"thinking": True}


def test_v31_calls_tools_without_thinking(httpserver: HTTPServer):
    client = _ollama(httpserver, SHOW_V31, [_line(V31_OLLAMA, "9 个。")
                                            + _line(V31_OLLAMA, done=True)])
    reply = client.chat(QUESTION, V31_OLLAMA, tools=[add])
    assert _ollama_bodies(httpserver)[0]["think"] is False
    assert any("only in non-thinking mode" in n for n in reply.notes)
    with pytest.raises(ConfigurationError, match="non-thinking mode"):
        client.chat(QUESTION, V31_OLLAMA, tools=[add], think=True)


# --- the command line -------------------------------------------------------------------------

def test_dskit_chat_takes_an_effort_level():
    from dskit.cli import build_parser
    from dskit.cli.output import chat_kwargs

    args = build_parser().parse_args(["chat", "--effort", "max", "你好"])
    assert chat_kwargs(args)["effort"] == "max"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["chat", "--effort", "extreme", "你好"])
