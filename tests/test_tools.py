"""Tools: schemas from functions, validated calls, errors returned, the markup read back."""

from __future__ import annotations

from typing import Literal

import pytest

from dskit.errors import ConfigurationError
from dskit.tools import Tool, Toolbox, ToolCall, ToolMarkup, ToolRequest, parse_docstring


def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: The first number
        b (int): The second number,
            two when left out

    Returns:
        The sum.
    """
    return a + b


def convert(amount: float, unit: Literal["km", "mi"], note=None) -> str:
    """Convert a distance.

    :param amount: how far
    :param unit: the unit of `amount`
    """
    return f"{amount * (1.609 if unit == 'mi' else 1):.1f} km"


def test_schema_from_signature_hints_and_docstring() -> None:
    tool = Tool.from_function(add)
    assert tool.name == "add" and tool.description == "Add two numbers."
    params = tool.parameters
    assert params["type"] == "object" and params["required"] == ["a"]
    assert params["properties"]["a"] == {"type": "integer", "description": "The first number"}
    assert params["properties"]["b"]["description"] == "The second number, two when left out"
    assert params["properties"]["b"]["default"] == 2
    assert tool.spec() == {"type": "function", "function": {
        "name": "add", "description": "Add two numbers.", "parameters": params}}


def test_sphinx_docstrings_literals_and_untyped_parameters() -> None:
    params = Tool.from_function(convert).parameters
    assert params["properties"]["unit"]["enum"] == ["km", "mi"]
    assert params["properties"]["amount"] == {"type": "number", "description": "how far"}
    assert params["properties"]["note"]["type"] == "string"  # no hint: a string
    assert params["required"] == ["amount", "unit"]


def test_docstring_parser_keeps_summary_apart() -> None:
    summary, params = parse_docstring("Look it up.\n\nMore detail.\n\nArgs:\n  q: the query\n")
    assert summary == "Look it up. More detail." and params == {"q": "the query"}


def test_a_call_validates_then_runs_and_times() -> None:
    box = Toolbox([add, convert])
    call = box.run(ToolRequest("add", {"a": 3, "b": "4"}, id="c1"))
    assert (call.ok, call.result, call.id) == (True, 7, "c1")
    assert call.seconds >= 0 and call.content() == "7"
    assert call.text().startswith("add(a=3, b='4') → 7")


@pytest.mark.parametrize("request_, error", [
    (ToolRequest("add", {"a": "three"}), "invalid arguments: a: Input should be a valid integer"),
    (ToolRequest("add", {"a": 1, "c": 2}), "invalid arguments: c: Extra inputs are not permitted"),
    (ToolRequest("add", {}), "invalid arguments: a: Field required"),
    (ToolRequest("add", '{"a": 1'), "the arguments are not a JSON object"),
    (ToolRequest("os.system", {"command": "rm -rf /"}), "there is no tool named 'os.system'"),
    (ToolRequest("__import__", {"name": "os"}), "there is no tool named '__import__'"),
])
def test_bad_calls_never_run_and_say_why(request_: ToolRequest, error: str) -> None:
    ran: list[dict[str, object]] = []

    def spy(a: int, b: int = 2) -> int:
        """Record the call."""
        ran.append({"a": a, "b": b})
        return a + b

    tool = Tool.from_function(spy)
    box = Toolbox([Tool("add", tool.description, tool.parameters, spy, tool.arguments_model)])
    call = box.run(request_)
    assert not call.ok and call.error is not None and call.error.startswith(error)
    assert ran == [] and call.content().startswith("error: ")


def test_a_tool_that_raises_returns_its_error() -> None:
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    call = Toolbox([divide]).run(ToolRequest("divide", {"a": 1, "b": 0}))
    assert call.error == "ZeroDivisionError: float division by zero"
    assert call.content() == "error: ZeroDivisionError: float division by zero"


def test_results_go_back_as_json_text_in_chinese() -> None:
    call = ToolCall("find", {}, result={"城市": "杭州", "温度": 85})
    assert call.content() == '{"城市": "杭州", "温度": 85}'


@pytest.mark.parametrize("bad", [[], [lambda x: x], [add, add], ["add"]])
def test_bad_tool_lists_are_refused(bad: list[object]) -> None:
    with pytest.raises(ConfigurationError):
        Toolbox(bad)  # type: ignore[arg-type]


def test_varargs_cannot_be_checked_so_they_are_refused() -> None:
    def anything(*args: int) -> int:
        return sum(args)

    with pytest.raises(ConfigurationError, match="named parameters only"):
        Tool.from_function(anything)


@pytest.mark.parametrize("cuts", [1, 2, 3, 5, 7, 100])
def test_markup_is_held_back_and_read_at_any_cut(cuts: int) -> None:
    text = ('好的。<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>\n'
            '<tool_call>\n{"name": "add", "arguments": "{\\"a\\": 5}"}\n</tool_call>')
    markup = ToolMarkup()
    shown = "".join(markup.feed(text[i:i + cuts]) for i in range(0, len(text), cuts))
    tail, calls = markup.finish()
    assert shown + tail == "好的。"
    assert [(c.name, c.arguments) for c in calls] == [("add", {"a": 1, "b": 2}), ("add", {"a": 5})]


def test_plain_text_with_a_lone_angle_bracket_passes() -> None:
    markup = ToolMarkup()
    shown = markup.feed("a <tool") + markup.feed("box> b")
    assert shown + markup.finish()[0] == "a <toolbox> b"


def test_broken_markup_becomes_a_call_the_loop_refuses() -> None:
    markup = ToolMarkup()
    markup.feed('<tool_call>\n{"name": "add", "arguments": {"a": 1}\n</tool_call>')
    _, calls = markup.finish()
    assert calls[0].name == "add" and isinstance(calls[0].arguments, str)
    assert "not a JSON object" in (Toolbox([add]).run(calls[0]).error or "")


@pytest.mark.parametrize("text", [
    '{"name": "add", "arguments": {"a": 1, "b": 2}}',
    '```json\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n```',
    '[{"name": "add", "arguments": {"a": 1, "b": 2}}]',
    '{"name": "add", "arguments": {"a": 1, "b": 2}}\n{"name": "add", "parameters": {"a": 3}}',
])
def test_bare_json_calls_of_small_models_are_read(text: str) -> None:
    markup = ToolMarkup()
    shown = "".join(markup.feed(text[i:i + 4]) for i in range(0, len(text), 4))
    tail, calls = markup.finish()
    assert shown + tail == ""
    assert calls[0].name == "add" and calls[0].arguments == {"a": 1, "b": 2}


@pytest.mark.parametrize("text", ['{"answer": 42}', "{not json", "`code` is shown"])
def test_json_that_is_no_call_stays_text(text: str) -> None:
    markup = ToolMarkup()
    shown = markup.feed(text)
    tail, calls = markup.finish()
    assert (shown + tail, calls) == (text, [])


def test_complete_bare_calls_before_a_cut_off_one_count() -> None:
    markup = ToolMarkup()
    markup.feed('{"name": "add", "arguments": {"a": 1}}\n{"name": "add", "argum')
    tail, calls = markup.finish()
    assert tail == "" and [(c.name, c.arguments) for c in calls] == [("add", {"a": 1})]


def test_parameter_names_pydantic_reserves_still_reach_the_function():
    def lookup(_key: str, model_config: str = "默认", schema: int = 1) -> dict:
        """Look a key up.

        Args:
            _key: the key
        """
        return {"key": _key, "config": model_config, "schema": schema}

    tool = Tool.from_function(lookup)
    assert set(tool.parameters["properties"]) == {"_key", "model_config", "schema"}
    assert tool.parameters["required"] == ["_key"]
    call = tool(ToolRequest("lookup", {"_key": "茶", "model_config": "x"}))
    assert call.ok and call.result == {"key": "茶", "config": "x", "schema": 1}


def test_a_result_that_is_not_json_goes_back_as_an_error_text():
    def loop() -> dict:
        """Return a dict that holds itself."""
        d: dict = {}
        d["self"] = d
        return d

    call = Tool.from_function(loop)(ToolRequest("loop", {}))
    assert call.content().startswith("error: the tool's result cannot be written as JSON")


def test_a_parameter_type_pydantic_cannot_check_is_a_typed_error():
    class Opaque:
        pass

    def use(thing):  # type: ignore[no-untyped-def]
        """Use a thing."""
        return "ok"

    use.__annotations__ = {"thing": Opaque}  # as a notebook without postponed annotations has
    with pytest.raises(ConfigurationError, match="tool use: its parameters cannot be checked"):
        Tool.from_function(use)


def test_a_tool_that_hangs_ends_the_wait_and_the_model_is_told():
    import threading

    release = threading.Event()

    def stall(city: str) -> str:
        """Wait for a network that never answers."""
        release.wait(30)
        return "late"

    box = Toolbox([stall], timeout=0.5)
    call = box.run(ToolRequest("stall", {"city": "杭州"}))
    release.set()
    assert not call.ok and "did not return within 0.5 s" in call.error
    assert call.content().startswith("error:")
    with pytest.raises(ConfigurationError, match="tool_timeout"):
        Toolbox([stall], timeout=0)
