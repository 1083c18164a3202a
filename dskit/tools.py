"""Tools a model may call: schemas from Python functions, validated calls, and their records.

Safety: only registered functions run; arguments are validated against the function's schema
before the call; a tool that raises returns its error to the model; nothing from the model's
text is ever evaluated. The tools of MCP servers (`mcp_tools`) join a `Toolbox` as `Tool`s
described by their JSON schemas, checked and timed the same way.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError, DskitError, redact

#: Longest tool result sent back to the model (a huge result would fill its context).
MAX_RESULT_CHARS = 8000

_ARG_LINE = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^\s*:param\s+(?:[\w\[\], ]+\s+)?(\w+)\s*:\s*(.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Yields|Raises|Example|Examples|"
                      r"Note|Notes)\s*:?\s*$", re.I)


@dataclass
class ToolRequest:
    """A call a model asked for: the tool's name and its arguments (a dict, or text that was
    not valid JSON), with the server's id for it when it gave one."""

    name: str
    arguments: Any
    id: str = ""


@dataclass
class ToolCall:
    """One tool call the loop ran (or refused): what was asked, what came back, how long."""

    name: str
    arguments: Any
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    id: str = ""
    #: Where the tool ran: "" for a Python function, else the name of its MCP server.
    source: str = ""

    @property
    def ok(self) -> bool:
        """Whether the tool ran and returned."""
        return self.error is None

    def content(self) -> str:
        """What goes back to the model: the result (JSON unless it is text) or the error."""
        if self.error is not None:
            return f"error: {self.error}"
        try:
            text = self.result if isinstance(self.result, str) else json.dumps(
                self.result, ensure_ascii=False, default=str)
        except (ValueError, TypeError, RecursionError) as exc:  # circular, or nested too deeply
            return f"error: the tool's result cannot be written as JSON ({exc}); return plain " \
                "values"
        return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "…"

    def text(self) -> str:
        """One line: `name(arguments) → result · 0.01 s` (or `✗ error`)."""
        args = (", ".join(f"{k}={v!r}" for k, v in self.arguments.items())
                if isinstance(self.arguments, dict) else repr(self.arguments))
        outcome = f"✗ {self.error}" if self.error is not None else f"→ {self.content()}"
        where = f" · MCP {self.source}" if self.source else ""
        return f"{self.name}({args}) {outcome} · {self.seconds:.2f} s{where}"


def timeout_message(timeout: float) -> str:
    """What the model is told of a call that did not return in time."""
    return f"the tool did not return within {timeout:g} s (tool_timeout); it may still be running"


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google- or Sphinx-style docstring."""
    if not doc:
        return "", {}
    summary: list[str] = []
    params: dict[str, str] = {}
    section = ""
    last = ""
    for line in inspect.cleandoc(doc).splitlines():
        head = _SECTION.match(line)
        if head:
            section, last = head.group(1).lower(), ""
            continue
        sphinx = _SPHINX.match(line)
        if sphinx:
            last = sphinx.group(1)
            params[last] = sphinx.group(2).strip()
            continue
        if line.strip().startswith(":"):
            continue  # :returns:, :raises: and the like
        if section in ("args", "arguments", "parameters"):
            arg = _ARG_LINE.match(line)
            if arg and not line.startswith(" " * 8):
                last = arg.group(1)
                params[last] = arg.group(3).strip()
            elif last and line.strip():
                params[last] = f"{params[last]} {line.strip()}".strip()
        elif not section:
            summary.append(line.strip())
    return " ".join(s for s in summary if s).strip(), params


def _strip_titles(schema: Any) -> Any:
    """The schema without Pydantic's generated `title`s (noise in a small model's prompt)."""
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items()
                if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


@dataclass(frozen=True)
class Tool:
    """A function a model may call, with the JSON schema of its parameters: a Python function,
    or (`from_schema`) one that calls a tool elsewhere, such as on an MCP server."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any] = field(repr=False)
    #: The Pydantic model the arguments are validated with (built from the signature); None for
    #: a tool described by a JSON schema, whose arguments are validated against `parameters`.
    arguments_model: Any = field(repr=False, default=None)
    #: Where the tool runs: "" for a Python function, else the name of its MCP server.
    source: str = ""

    @classmethod
    def from_function(cls, fn: Callable[..., Any]) -> Tool:
        """Build the schema from `fn`'s signature, type hints and docstring."""
        from pydantic import ConfigDict, Field, create_model  # heavy: only when tools are used

        if not callable(fn) or not getattr(fn, "__name__", None) or fn.__name__ == "<lambda>":
            raise ConfigurationError(f"tools must be named Python functions, not {fn!r}")
        description, docs = parse_docstring(inspect.getdoc(fn))
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the signature of tool {fn.__name__}: {exc}") \
                from None
        try:
            hints = inspect.get_annotations(fn, eval_str=True)
        except (NameError, TypeError):
            hints = {}
        fields: dict[str, Any] = {}
        for i, (name, p) in enumerate(signature.parameters.items()):
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise ConfigurationError(
                    f"tool {fn.__name__} takes *{name}: tools need named parameters only, so "
                    "the model's arguments can be checked against them")
            if p.kind is p.POSITIONAL_ONLY:
                raise ConfigurationError(f"tool {fn.__name__}: parameter {name} is "
                                         "positional-only; make it a named parameter")
            # Like ollama-python: a parameter without a type hint is a string.
            annotation = hints.get(name, str)
            default = ... if p.default is p.empty else p.default
            # Stored under a neutral name with the parameter's as its alias: Pydantic refuses a
            # field named `_x` and lets one named `model_config` replace the model's settings.
            fields[f"p{i}"] = (annotation, Field(default, alias=name,
                                                 description=docs.get(name) or None))
        try:
            model = create_model("arguments", __config__=ConfigDict(extra="forbid"), **fields)
            schema = _strip_titles(model.model_json_schema(by_alias=True))
        except Exception as exc:  # Pydantic's errors for a type hint it cannot check
            raise ConfigurationError(f"tool {fn.__name__}: its parameters cannot be checked "
                                     f"({type(exc).__name__}: {str(exc)[:200]}); use plain "
                                     "types (str, int, float, bool, lists, dicts, Pydantic "
                                     "models)") from None
        schema.setdefault("properties", {})
        schema.setdefault("required", [])
        return cls(name=fn.__name__, description=description or fn.__name__.replace("_", " "),
                   parameters=schema, function=fn, arguments_model=model)

    @classmethod
    def from_schema(cls, name: str, description: str, schema: dict[str, Any],
                    function: Callable[..., Any], source: str) -> Tool:
        """A tool described by a JSON schema (an MCP server's); `function(**arguments)` runs it
        once the arguments validate against the schema."""
        parameters = _strip_titles(schema)
        if parameters.get("type", "object") == "object":
            parameters = {"type": "object", **parameters}
            parameters.setdefault("properties", {})
        return cls(name=name, description=description or name.replace("_", " "),
                   parameters=parameters, function=function, source=source)

    def check(self, arguments: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(the keyword arguments to call with, the problems that forbid the call)."""
        if self.arguments_model is None:
            return arguments, schema_problems(self.parameters, arguments)
        from pydantic import ValidationError

        try:
            checked = self.arguments_model.model_validate(arguments)
        except ValidationError as exc:
            return {}, [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                        for e in exc.errors()]
        return {f.alias or name: getattr(checked, name)
                for name, f in type(checked).model_fields.items()}, []

    def spec(self) -> dict[str, Any]:
        """The tool as Ollama and OpenAI-compatible servers take it."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def __call__(self, request: ToolRequest, timeout: float = 60.0) -> ToolCall:
        """Validate the arguments, then run the function; every failure becomes `error`."""
        call = ToolCall(self.name, request.arguments, id=request.id, source=self.source)
        if not isinstance(request.arguments, dict):
            call.error = ("the arguments are not a JSON object: "
                          f"{str(request.arguments)[:200]!r}")
            return call
        kwargs, problems = self.check(request.arguments)
        if problems:
            call.error = "invalid arguments: " + "; ".join(problems)
            return call
        t0 = time.perf_counter()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = self.function(**kwargs)
            except Exception as exc:  # the model gets the error and may try again
                outcome["error"] = exc

        # In a thread of its own, so that a tool that hangs (a stalled network call) ends the
        # wait after `timeout` seconds instead of holding the reply for ever; Python cannot
        # stop the thread, which finishes (or not) on its own.
        worker = threading.Thread(target=run, daemon=True, name=f"dskit-tool:{self.name}")
        worker.start()
        worker.join(timeout)
        call.seconds = time.perf_counter() - t0
        if worker.is_alive():
            call.error = timeout_message(timeout)
        elif "error" in outcome:
            failure = outcome["error"]
            # Exceptions quote URLs and headers: a key in one must not reach the model. dskit's
            # own errors (an MCP server's) say what happened without their class name.
            call.error = redact(str(failure) if isinstance(failure, DskitError)
                                else f"{type(failure).__name__}: {failure}")
        else:
            call.result = outcome.get("result")
        return call


#: Longest validation message quoted per problem (a message can quote a whole argument).
MAX_PROBLEM_CHARS = 200


def schema_problems(schema: dict[str, Any], arguments: Any) -> list[str]:
    """What is wrong with `arguments` for a JSON schema, in the words of Pydantic's checks
    (`path: message`); none when the schema itself cannot be used (the tool's server still
    checks what it receives)."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    try:
        kind = validator_for(schema, default=Draft202012Validator)
        kind.check_schema(schema)
        found = sorted(kind(schema).iter_errors(arguments), key=lambda e: list(e.absolute_path))
    except Exception:
        # An invalid schema, one nested too deeply, or a $ref to nowhere (the referencing
        # library's errors share no narrower base): the server's to fix, and it checks what it
        # receives, so the call is not refused for it.
        return []
    return [f"{'.'.join(str(p) for p in e.absolute_path) or 'arguments'}: "
            f"{e.message[:MAX_PROBLEM_CHARS]}" for e in found]


#: Seconds a tool may run before the model is told it did not return.
DEFAULT_TOOL_TIMEOUT = 60.0


class Toolbox:
    """The registered tools of one chat: only these can ever be called.

    Python functions are tools at once; MCP servers (`ds.mcp_stdio`, `ds.mcp_http`, or an
    `mcpServers` entry) add theirs when the box is opened (`with box:`), and are closed with it.
    """

    def __init__(self, functions: Any, timeout: float = DEFAULT_TOOL_TIMEOUT) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
                not 0 < timeout < 86_400:
            raise ConfigurationError(f"tool_timeout={timeout!r}: give seconds, more than 0")
        self.timeout = float(timeout)
        items = list(functions) if isinstance(functions, (list, tuple)) else [functions]
        self.tools: dict[str, Tool] = {}
        #: The MCP servers whose tools join when the box opens.
        self.servers: list[Any] = []
        self.sessions: Any = None
        for item in items:
            if callable(item):
                self.add(item if isinstance(item, Tool) else Tool.from_function(item))
            else:
                # mcp_tools builds on this module (Tool, ToolCall): imported here, so that the
                # modules import each other in one direction only.
                from .mcp_tools import servers_of

                self.servers += servers_of(item)
        names = [s.name for s in self.servers]
        if len(set(names)) < len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise ConfigurationError(f"two MCP servers are named {twice!r}: give one of them "
                                     "another name (name=, or its key in mcpServers)")
        if not self.tools and not self.servers:
            raise ConfigurationError("tools= is empty: pass a list of Python functions or MCP "
                                     "servers (ds.mcp_stdio, ds.mcp_http)")

    def add(self, tool: Tool) -> None:
        """Register one tool; a name already taken is refused, naming both tools' origins."""
        if tool.name in self.tools:
            if not tool.source and not self.tools[tool.name].source:
                raise ConfigurationError(f"two tools are named {tool.name!r}: names must be "
                                         "unique")
            raise ConfigurationError(
                f"two tools are named {tool.name!r}: {_origin(self.tools[tool.name])} and "
                f"{_origin(tool)}. Names must be unique: rename the Python function, or give "
                "an MCP server a prefix for its tools (ds.mcp_stdio(..., prefix='x_'))")
        self.tools[tool.name] = tool

    def open(self) -> Toolbox:
        """Start (or reach) the MCP servers and add their tools; a failure closes them all."""
        if not self.servers or self.sessions is not None:
            return self
        from .mcp_tools import McpSessions  # see __init__: one-way imports

        self.sessions = McpSessions(self.servers, self.timeout)
        try:
            for tool in self.sessions.open():
                self.add(tool)
            if not self.tools:
                raise ConfigurationError(
                    "tools=: the MCP servers list no tools ("
                    f"{', '.join(s.name for s in self.servers)}); pass servers that have some")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Close every MCP session and server process (their tools leave the box)."""
        sessions, self.sessions = self.sessions, None
        if sessions is None:
            return
        self.tools = {n: t for n, t in self.tools.items() if not t.source}
        sessions.close()

    def __enter__(self) -> Toolbox:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def specs(self) -> list[dict[str, Any]]:
        """Every tool's spec, for the request."""
        return [t.spec() for t in self.tools.values()]

    def run(self, request: ToolRequest) -> ToolCall:
        """Run one requested call; an unknown name is refused, never looked up elsewhere."""
        tool = self.tools.get(request.name)
        if tool is None:
            return ToolCall(request.name, request.arguments, id=request.id,
                            error=f"there is no tool named {request.name!r}; the tools are: "
                                  f"{', '.join(self.tools)}")
        return tool(request, self.timeout)


def _origin(tool: Tool) -> str:
    return f"one of the MCP server {tool.source!r}" if tool.source else \
        f"the Python function {tool.function.__name__}"


def decode_arguments(raw: Any) -> Any:
    """Arguments as a dict when they are a JSON object (OpenAI sends them as a string)."""
    if isinstance(raw, str):
        try:
            value = json.loads(raw) if raw.strip() else {}
        except (json.JSONDecodeError, RecursionError, ValueError):
            # Not JSON, nested too deeply, or an integer of more digits than Python reads:
            # kept as the text the model (or client) wrote.
            return raw
        return value
    return raw


#: The tool-call markup of Hermes-style chat templates (Qwen2.5, Qwen3): the model writes
#: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` and the server reads it out.
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_NAME = re.compile(r'"name"\s*:\s*"([^"]{1,128})"')


class ToolMarkup:
    """Splits streamed text into what may be shown and the tool calls written in it.

    Text before a `<tool_call>` goes out as it arrives (a possible start of the tag is held
    back); everything from the first tag on is kept and read as calls at the end. A reply that
    opens with `{`, `[` or a code fence is held whole: small models (Qwen2.5-Coder) often write the
    call's JSON without the tags; it is a call if it reads as `{"name", "arguments"}`, and
    text otherwise.
    """

    def __init__(self) -> None:
        self._held = ""
        self._calls: str | None = None  # the text from the first `<tool_call>` on
        self._bare: bool | None = None  # None until the first visible character decides

    def feed(self, text: str) -> str:
        """The part of `text` that is plain answer text."""
        if self._calls is not None:
            self._calls += text
            return ""
        buf = self._held + text
        if self._bare is None and buf.strip():
            self._bare = buf.lstrip()[0] in "{[`"
        if self._bare is not False:
            self._held = buf
            return ""
        at = buf.find(CALL_OPEN)
        if at >= 0:
            self._held, self._calls = "", buf[at:]
            return buf[:at]
        keep = next((n for n in range(min(len(CALL_OPEN) - 1, len(buf)), 0, -1)
                     if buf.endswith(CALL_OPEN[:n])), 0)
        self._held = buf[len(buf) - keep:] if keep else ""
        return buf[:len(buf) - keep] if keep else buf

    def finish(self) -> tuple[str, list[ToolRequest]]:
        """(held-back text, the calls), once the output is complete."""
        tail, self._held = self._held, ""
        if self._calls is None:
            if self._bare and CALL_OPEN in tail:
                shown, _, rest = tail.partition(CALL_OPEN)
                return shown, _read_calls(CALL_OPEN + rest)
            bare = _bare_calls(tail) if self._bare else []
            return ("", bare) if bare else (tail, [])
        return tail, _read_calls(self._calls)


def _request(data: Any) -> ToolRequest | None:
    """A call from one decoded `{"name", "arguments"}` object (None if it is not one)."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    if "arguments" not in data and "parameters" not in data:
        return None
    args = data.get("arguments", data.get("parameters"))
    return ToolRequest(data["name"], decode_arguments(args if args is not None else {}))


def _read_calls(text: str) -> list[ToolRequest]:
    """The calls in `<tool_call>…</tool_call>` blocks; an unreadable one keeps its raw text."""
    requests: list[ToolRequest] = []
    for block in text.split(CALL_OPEN)[1:]:
        body = block.split(CALL_CLOSE, 1)[0].strip()
        try:
            found = _request(json.loads(body))
        except json.JSONDecodeError:
            found = None
        if found is None:
            name = _NAME.search(body)
            found = ToolRequest(name.group(1) if name else "", body)
        requests.append(found)
    return requests


def _bare_calls(text: str) -> list[ToolRequest]:
    """Calls written as bare JSON (one object, a list of them, or one per line)."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").strip()
        body = body[4:].lstrip() if body.lower().startswith("json") else body
    decoder = json.JSONDecoder()
    values: list[Any] = []
    i = 0
    while i < len(body):
        try:
            value, end = decoder.raw_decode(body, i)
        except json.JSONDecodeError:
            # Calls cut off by the token limit: the complete ones before still count.
            if not values:
                return []
            break
        values += value if isinstance(value, list) else [value]
        i = end
        while i < len(body) and body[i] in " \t\r\n,":
            i += 1
    found = [_request(v) for v in values]
    return [f for f in found if f is not None] if found and all(found) else []
