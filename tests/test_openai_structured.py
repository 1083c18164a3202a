"""The OpenAI-compatible backend with `format` and `tools`, against a real HTTP server replaying
the shapes of chat completions (streamed tool calls, a server that refuses response_format)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

import dskit as ds
from dskit.client import Client, connect
from dskit.errors import ToolsNotSupported

MODEL = "deepseek-reasoner"


class Person(BaseModel):
    name: str
    age: int


def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + \
        "data: [DONE]\n\n"


@pytest.fixture
def server(httpserver_ipv4: Any) -> Any:
    return httpserver_ipv4


def stream_once(server: Any, body: str) -> None:
    server.expect_oneshot_request("/v1/chat/completions", method="POST").respond_with_data(
        body, content_type="text/event-stream")


def client(server: Any) -> Client:
    return connect("openai", base_url=server.url_for("/v1"), model=MODEL, set_default=False)


def bodies(server: Any) -> list[dict[str, Any]]:
    return [json.loads(req.get_data()) for req, _ in server.log
            if req.path == "/v1/chat/completions"]


ANSWER = sse(chunk({"reasoning_content": "张伟，35。"}), chunk({"content": '{"name": "张伟", '}),
             chunk({"content": '"age": 35}'}), chunk({}, "stop"))


def test_format_goes_as_response_format_json_schema(server: Any) -> None:
    stream_once(server, ANSWER)
    reply = ds.chat("张伟今年三十五岁。", client=client(server), format=Person)
    (body,) = bodies(server)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "Person", "schema": Person.model_json_schema()}}
    assert reply.parsed == Person(name="张伟", age=35) and reply.thinking == "张伟，35。"
    assert any("response_format (json_schema)" in n for n in reply.notes)


def test_a_refused_response_format_falls_back_to_the_prompt_once(server: Any) -> None:
    server.expect_oneshot_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": "This response_format type is unavailable now",
                   "type": "invalid_request_error"}}, status=400)
    stream_once(server, ANSWER)
    stream_once(server, ANSWER)
    c = client(server)
    reply = ds.chat("张伟今年三十五岁。", client=c, format="json")
    assert reply.parsed == {"name": "张伟", "age": 35}
    assert any("refused response_format" in n for n in reply.notes)
    ds.chat("张伟今年三十五岁。", client=c, format="json")
    refused, retried, later = bodies(server)
    assert refused["response_format"] == {"type": "json_object"}
    assert "response_format" not in retried and "response_format" not in later
    assert "JSON" in retried["messages"][-1]["content"]  # asked for in words instead


def test_streamed_tool_calls_are_assembled_and_results_sent_back(server: Any) -> None:
    stream_once(server, sse(
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_9", "type": "function",
             "function": {"name": "multiply", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 6, '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"b": 7}'}}]}),
        chunk({}, "tool_calls")))
    stream_once(server, sse(chunk({"content": "42"}), chunk({}, "stop")))
    reply = ds.chat("6 × 7?", client=client(server), tools=[multiply])
    call = reply.tool_calls[0]
    assert (call.id, call.arguments, call.result, reply.answer) == ("call_9", {"a": 6, "b": 7},
                                                                    42, "42")
    first, second = bodies(server)
    assert first["tools"][0]["function"]["name"] == "multiply"
    assert second["messages"][-2]["tool_calls"] == [{"id": "call_9", "type": "function",
                                                    "function": {"name": "multiply",
                                                                 "arguments": '{"a": 6, "b": 7}'}}]
    assert second["messages"][-1] == {"role": "tool", "content": "42.0",
                                      "tool_call_id": "call_9"}


def test_a_server_without_tools_for_the_model_raises_the_typed_error(server: Any) -> None:
    server.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        {"error": {"message": f"registry.ollama.ai/library/{MODEL} does not support tools",
                   "type": "api_error"}}, status=400)
    with pytest.raises(ToolsNotSupported) as err:
        ds.chat("6 × 7?", client=client(server), tools=[multiply])
    assert MODEL in str(err.value) and "Qwen3" in str(err.value)
