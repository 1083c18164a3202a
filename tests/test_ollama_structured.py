"""The Ollama backend with `format` and `tools`, against a real HTTP server replaying the shapes
of Ollama's API (versions before and after the think+format fix of 0.12.4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel
from pytest_httpserver import HTTPServer

import dskit as ds
from dskit.backends.ollama import THINK_FORMAT_SINCE, supports_think
from dskit.client import Client, connect
from dskit.conversation.steps import TWO_STEP_NOTE
from dskit.errors import ToolsNotSupported

MODEL = "deepseek-r1:8b"
NDJSON = "application/x-ndjson"
SHOW = {"details": {"format": "gguf", "family": "qwen3", "families": ["qwen3"]},
        "model_info": {"general.architecture": "qwen3",
                       "general.basename": "DeepSeek-R1-0528-Qwen3"},
        "capabilities": ["completion", "thinking"]}
SHOW_TOOLS = {**SHOW, "capabilities": ["completion", "thinking", "tools"]}
FINAL = {"total_duration": 5_000_000_000, "load_duration": 0, "prompt_eval_count": 26,
         "prompt_eval_duration": 130_000_000, "eval_count": 120,
         "eval_duration": 3_000_000_000}


class Person(BaseModel):
    name: str
    age: int


def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


def chunk(content: str = "", thinking: str | None = None,
          tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {"model": MODEL, "created_at": "2025-10-10T08:00:00Z", "message": message,
            "done": False}


def final() -> dict[str, Any]:
    return {"model": MODEL, "created_at": "2025-10-10T08:00:01Z",
            "message": {"role": "assistant", "content": ""}, "done": True,
            "done_reason": "stop", **FINAL}


def ndjson(*objs: dict[str, Any]) -> str:
    return "\n".join(json.dumps(o, ensure_ascii=False) for o in objs) + "\n"


def serve(httpserver: HTTPServer, version: str, *chats: str,
          show: dict[str, Any] | None = None) -> Client:
    httpserver.expect_request("/api/version").respond_with_json({"version": version})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(show or SHOW)
    for body in chats:
        httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
            body, content_type=NDJSON)
    return connect("ollama", host=httpserver.url_for(""), set_default=False)


def sent(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [req.get_json() for req, _ in httpserver.log if req.path == "/api/chat"]


@pytest.mark.parametrize("version, fixed", [("0.9.0", False), ("0.12.3", False),
                                            ("0.12.4", True), ("0.13.1", True),
                                            ("0.0.0-dev", False)])
def test_the_think_format_fix_is_decided_by_version(version: str, fixed: bool) -> None:
    assert supports_think(version, THINK_FORMAT_SINCE) is fixed


def test_fixed_server_gets_format_and_think_in_one_request(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.12.4", ndjson(
        chunk(thinking="张伟，三十五岁。"), chunk('{"name": "张伟", "age": 35}'), final()))
    reply = ds.chat("张伟今年三十五岁。提取姓名和年龄。", MODEL, client=client, format=Person)
    (body,) = sent(httpserver)
    assert body["think"] is True and body["format"] == Person.model_json_schema()
    assert "JSON schema" in body["messages"][-1]["content"]  # the fields are named in words too
    assert reply.thinking == "张伟，三十五岁。" and reply.parsed == Person(name="张伟", age=35)
    assert any("0.12.4" in n and "only the answer" in n for n in reply.notes)


def test_older_server_reasons_first_then_gets_the_format(httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.9.6",
                   ndjson(chunk(thinking="张伟，三十五岁。"), chunk("姓名张伟"), final()),
                   ndjson(chunk('{"name": "张伟", "age": 35}'), final()))
    reply = ds.chat("张伟今年三十五岁。提取姓名和年龄。", MODEL, client=client, format=Person)
    first, second = sent(httpserver)
    assert "format" not in first and first["think"] is True
    assert second["format"] == Person.model_json_schema() and second["think"] is False
    assert "张伟，三十五岁。" in second["messages"][-1]["content"]
    assert reply.parsed == Person(name="张伟", age=35) and reply.thinking == "张伟，三十五岁。"
    assert TWO_STEP_NOTE in reply.notes


def test_tool_calls_are_read_and_results_sent_in_ollamas_shape(httpserver: HTTPServer) -> None:
    call = {"function": {"name": "multiply", "arguments": {"a": 6, "b": 7}}}
    client = serve(httpserver, "0.12.4",
                   ndjson(chunk(thinking="I should multiply."), chunk(tool_calls=[call]),
                          final()),
                   ndjson(chunk(thinking="42."), chunk("6 × 7 = 42"), final()),
                   show=SHOW_TOOLS)
    reply = ds.chat("6 × 7?", MODEL, client=client, tools=[multiply])
    assert reply.answer == "6 × 7 = 42" and reply.tool_calls[0].result == 42
    first, second = sent(httpserver)
    assert first["tools"][0]["function"]["name"] == "multiply"
    assert second["messages"][-2]["tool_calls"] == [call]
    assert second["messages"][-1] == {"role": "tool", "content": "42.0",
                                     "tool_name": "multiply"}
    assert reply.thinking == "I should multiply.\n\n42."


def test_a_model_listed_without_tools_is_refused_before_any_request(
        httpserver: HTTPServer) -> None:
    client = serve(httpserver, "0.12.4")
    with pytest.raises(ToolsNotSupported) as err:
        ds.chat("6 × 7?", MODEL, client=client, tools=[multiply])
    assert "deepseek-r1:1.5b" in str(err.value) and "completion, thinking" in str(err.value)
    assert sent(httpserver) == []


def test_the_servers_own_refusal_is_the_same_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.5.7"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(
        {"details": {"family": "qwen2"}, "model_info": {}})  # old: no capabilities listed
    httpserver.expect_request("/api/chat", method="POST").respond_with_json(
        {"error": f"registry.ollama.ai/library/{MODEL} does not support tools"}, status=400)
    client = connect("ollama", host=httpserver.url_for(""), set_default=False)
    with pytest.raises(ToolsNotSupported, match="does not support tools"):
        ds.chat("6 × 7?", MODEL, client=client, tools=[multiply])
