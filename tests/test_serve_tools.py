"""`dskit serve` with `format` and `tools`: the official `ollama` and `openai` clients, dskit's
own Ollama backend, and raw bodies, against a real server on 127.0.0.1 and the real stand-ins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest

import dskit as ds
from dskit.backends.embedded import EmbeddedBackend
from dskit.errors import ToolsNotSupported
from tests.structured_cases import (
    EXPECTED,
    GREEDY,
    PROFILE,
    QWEN,
    SMALL,
    Person,
    multiply,
)

MULTIPLY = {"type": "function", "function": {
    "name": "multiply", "description": "Multiply two numbers.",
    "parameters": {"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "number", "description": "the first number"},
        "b": {"type": "number", "description": "the second number"}}}}}


@pytest.fixture(scope="module")
def server(embedded: EmbeddedBackend) -> Iterator[ds.serve.Server]:
    srv = ds.serve.start(port=0, backend=embedded)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: ds.serve.Server) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=300)


def test_show_reports_tools_only_for_models_that_have_them(client: ollama.Client) -> None:
    assert "tools" in (client.show(QWEN).capabilities or [])
    assert "tools" not in (client.show(SMALL).capabilities or [])


def test_ollama_client_structured_output_with_a_pydantic_schema(client: ollama.Client) -> None:
    reply = client.chat(QWEN, [{"role": "user", "content": f"提取人物信息：{PROFILE}"}],
                        format=Person.model_json_schema(), options=GREEDY)
    assert Person.model_validate_json(reply.message.content) == EXPECTED


def test_think_and_format_keep_the_reasoning_apart(client: ollama.Client) -> None:
    reply = client.chat(QWEN, [{"role": "user", "content": f"提取人物信息：{PROFILE}"}],
                        format=Person.model_json_schema(), think=True,
                        options={**GREEDY, "num_predict": 300})
    assert reply.message.thinking and "{" not in reply.message.thinking[:1]
    assert Person.model_validate_json(reply.message.content).city == "杭州"


def test_format_json_as_a_string_keeps_the_reasoning_apart(client: ollama.Client) -> None:
    reply = client.chat(QWEN, [{"role": "user", "content": f"用 JSON 写出这个人的城市：{PROFILE}"}],
                        format="json", think=True, options={**GREEDY, "num_predict": 300})
    assert reply.message.thinking and "<think>" not in (reply.message.content or "")
    assert isinstance(json.loads(reply.message.content), dict | list)


def test_tools_with_think_keep_the_reasoning_apart(client: ollama.Client) -> None:
    reply = client.chat(QWEN, [{"role": "user", "content": "123.5 乘以 47 等于多少？"}],
                        tools=[multiply], think=True, options={**GREEDY, "num_predict": 300})
    # The stand-in, asked to reason first, often writes the call inside its reasoning: only a
    # call in the answer is one (a call in the reasoning is text, never run).
    thinking, content = reply.message.thinking or "", reply.message.content or ""
    assert thinking and thinking[:40] not in content and "<tool_call>" not in content
    assert reply.message.tool_calls or content  # a call or an answer, never nothing
    for call in reply.message.tool_calls or []:
        assert call.function.name == "multiply"


def test_ollama_client_tool_round_trip(client: ollama.Client) -> None:
    messages: list[Any] = [{"role": "user", "content": "123.5 乘以 47 等于多少？"}]
    first = client.chat(QWEN, messages, tools=[multiply], options=GREEDY)
    (call,) = first.message.tool_calls or []
    assert call.function.name == "multiply" and dict(call.function.arguments) == {"a": 123.5,
                                                                                  "b": 47}
    result = multiply(**call.function.arguments)
    messages += [first.message, {"role": "tool", "content": str(result),
                                 "tool_name": "multiply"},
                 {"role": "user", "content": "请根据工具结果，用一句话回答我的问题。"}]
    final = client.chat(QWEN, messages, options=GREEDY)
    assert "5804.5" in final.message.content


def test_streamed_tool_calls_arrive_before_the_final_chunk(client: ollama.Client) -> None:
    parts = list(client.chat(QWEN, [{"role": "user", "content": "What is 6 times 7?"}],
                             tools=[MULTIPLY], stream=True, options=GREEDY))
    with_calls = [p for p in parts if p.message.tool_calls]
    assert len(with_calls) == 1 and not with_calls[0].done and parts[-1].done
    assert with_calls[0].message.tool_calls[0].function.name == "multiply"


def test_tools_for_a_model_without_them_is_a_400(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(SMALL, [{"role": "user", "content": "hi"}], tools=[MULTIPLY])
    assert err.value.status_code == 400 and "does not support tools" in str(err.value)
    assert QWEN in str(err.value)


@pytest.mark.parametrize("body, message", [
    ({"format": "yaml"}, 'format must be "json" or a JSON schema'),
    ({"format": {"type": "nonsense"}}, "not a valid JSON schema"),
    ({"tools": [{"type": "function"}]}, "function.name"),
    ({"tools": "multiply"}, '"tools" must be a list'),
])
def test_bad_format_or_tools_are_400(server: ds.serve.Server, body: dict[str, Any],
                                     message: str) -> None:
    r = httpx.post(f"{server.url}/api/chat", json={
        "model": QWEN, "messages": [{"role": "user", "content": "hi"}], **body}, timeout=60)
    assert r.status_code == 400 and message in r.json()["error"]


def test_generate_takes_format_but_no_tools(server: ds.serve.Server) -> None:
    r = httpx.post(f"{server.url}/api/generate", json={
        "model": QWEN, "prompt": "Give a JSON object with a key colour.", "format": "json",
        "stream": False, "options": {**GREEDY, "num_predict": 40}}, timeout=300)
    assert r.status_code == 200 and isinstance(json.loads(r.json()["response"]), dict)
    r = httpx.post(f"{server.url}/api/generate", json={
        "model": QWEN, "prompt": "hi", "tools": [MULTIPLY]}, timeout=60)
    assert r.status_code == 400 and "/api/chat" in r.json()["error"]


def test_openai_client_structured_output_and_tools(server: ds.serve.Server) -> None:
    oa = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=300)
    parsed = oa.chat.completions.parse(
        model=QWEN, messages=[{"role": "user", "content": f"提取人物信息：{PROFILE}"}],
        response_format=Person, temperature=0, seed=1)
    assert parsed.choices[0].message.parsed == EXPECTED

    messages: list[Any] = [{"role": "user", "content": "123.5 乘以 47 等于多少？"}]
    first = oa.chat.completions.create(model=QWEN, messages=messages, tools=[MULTIPLY],
                                       temperature=0, seed=1)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    args = json.loads(call.function.arguments)
    assert call.function.name == "multiply" and args == {"a": 123.5, "b": 47}
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": str(multiply(**args))},
                 {"role": "user", "content": "请根据工具结果，用一句话回答我的问题。"}]
    final = oa.chat.completions.create(model=QWEN, messages=messages, temperature=0, seed=1)
    assert "5804.5" in (final.choices[0].message.content or "")


def test_openai_streamed_tool_calls(server: ds.serve.Server) -> None:
    oa = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=300)
    chunks = list(oa.chat.completions.create(
        model=QWEN, messages=[{"role": "user", "content": "What is 6 times 7?"}],
        tools=[MULTIPLY], stream=True, temperature=0, seed=1))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls and calls[0].function.name == "multiply" and calls[0].index == 0
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_dskit_through_its_own_server(server: ds.serve.Server) -> None:
    """ds.chat on the Ollama backend: format and tools go over the wire and come back."""
    client = ds.connect("ollama", host=server.url, set_default=False)
    reply = ds.chat(f"从这段文字中提取人物信息：{PROFILE}", QWEN, client=client, format=Person,
                    **GREEDY)
    assert reply.parsed == EXPECTED
    assert any("Ollama constrained the answer" in n for n in reply.notes)
    reply = ds.chat("123.5 乘以 47 等于多少？", QWEN, client=client, tools=[multiply],
                    max_tokens=120, **GREEDY)
    assert reply.tool_calls[0].result == 5804.5 and "5804.5" in reply.answer
    with pytest.raises(ToolsNotSupported, match=SMALL):
        ds.chat("hi", SMALL, client=client, tools=[multiply])
