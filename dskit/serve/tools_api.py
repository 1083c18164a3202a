"""`format` and `tools` on the wire: the request fields of Ollama's and OpenAI's APIs read into
dskit's values, and the calls a model asked for written back in each API's shape."""

from __future__ import annotations

import json
import secrets
from typing import Any

from ..errors import ConfigurationError
from ..structured import check_schema
from ..tools import CALL_CLOSE, CALL_OPEN, ToolRequest, decode_arguments
from .errors import ApiError


def _schema(raw: Any, where: str) -> dict[str, Any]:
    """A client's schema, checked as `ds.chat(format=...)` checks one (invalid, too deep, a
    reference outside it or to nothing, a reference loop): a 400 naming the field otherwise."""
    try:
        check_schema(raw)
    except ConfigurationError as exc:
        raise ApiError(400, f"{where}: {exc}") from None
    return dict(raw)


def parse_format(raw: Any) -> str | dict[str, Any] | None:
    """Ollama's `format`: "json" or a JSON schema (None or "" for free text)."""
    if raw is None or raw == "":
        return None
    if raw == "json":
        return "json"
    if isinstance(raw, dict):
        return _schema(raw, "format")
    raise ApiError(400, 'format must be "json" or a JSON schema object')


def parse_response_format(raw: Any) -> str | dict[str, Any] | None:
    """OpenAI's `response_format`: text, json_object or json_schema."""
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise ApiError(400, "response_format json_schema needs json_schema.schema (an "
                           "object)")
        return _schema(spec["schema"], "response_format.json_schema.schema")
    raise ApiError(400, "response_format.type must be text, json_object or json_schema")


def parse_tools(raw: Any, choice: Any = None) -> list[dict[str, Any]] | None:
    """`tools` (function specs, the same in both APIs) and OpenAI's `tool_choice`."""
    if raw is None or raw == [] or choice == "none":
        return None
    if choice not in (None, "auto"):
        raise ApiError(400, 'tool_choice must be "auto" or "none": dskit serve lets the model '
                       "decide whether to call a tool")
    if not isinstance(raw, list):
        raise ApiError(400, "tools must be a list of {\"type\": \"function\", \"function\": "
                       "{\"name\", \"description\", \"parameters\"}}")
    specs: list[dict[str, Any]] = []
    for tool in raw:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ApiError(400, "each tool needs type \"function\" and function.name")
        if tool.get("type", "function") != "function":
            raise ApiError(400, f"tool type {str(tool.get('type'))[:20]!r} is not supported: "
                           "only \"function\"")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise ApiError(400, f"tool {fn['name']}: parameters must be a JSON schema object")
        params = _schema(params, f"tool {fn['name'][:40]!r} parameters")
        specs.append({"type": "function", "function": {
            "name": fn["name"], "description": str(fn.get("description") or ""),
            "parameters": params}})
    return specs


def message_extras(m: dict[str, Any]) -> dict[str, Any]:
    """The tool fields of one request message in dskit's shape (see `ChatRequest`)."""
    extras: dict[str, Any] = {}
    calls = m.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            raise ApiError(400, "tool_calls must be a list")
        out = []
        for i, call in enumerate(calls):
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise ApiError(400, "each tool call needs function.name")
            out.append({"id": str(call.get("id") or f"call_{i}"), "name": fn["name"],
                        "arguments": decode_arguments(fn.get("arguments") or {})})
        extras["tool_calls"] = out
    if m.get("role") == "tool":
        name = m.get("tool_name") or m.get("name")
        if isinstance(name, str) and name:
            extras["name"] = name
        if isinstance(m.get("tool_call_id"), str):
            extras["tool_call_id"] = m["tool_call_id"]
    return extras


def unreadable(calls: list[ToolRequest]) -> str:
    """Calls whose arguments are not a JSON object, as the text the model wrote: neither API
    can carry them as calls, and dropping them would hide what the model did."""
    return "".join(f"{CALL_OPEN}\n{c.arguments}\n{CALL_CLOSE}" for c in calls
                   if not isinstance(c.arguments, dict))


def ollama_tool_calls(calls: list[ToolRequest]) -> list[dict[str, Any]]:
    """Ollama's `message.tool_calls`."""
    return [{"function": {"index": i, "name": c.name, "arguments": c.arguments}}
            for i, c in enumerate(c for c in calls if isinstance(c.arguments, dict))]


def openai_tool_calls(calls: list[ToolRequest], streaming: bool = False) -> list[dict[str, Any]]:
    """OpenAI's `tool_calls` (arguments as a JSON string; `index` when streamed)."""
    out = []
    for i, c in enumerate(c for c in calls if isinstance(c.arguments, dict)):
        call: dict[str, Any] = {"id": c.id or f"call_{secrets.token_hex(8)}", "type": "function",
                                "function": {"name": c.name, "arguments": json.dumps(
                                    c.arguments, ensure_ascii=False)}}
        out.append({"index": i, **call} if streaming else call)
    return out
