"""`ds.chat(format=..., tools=...)`: the real stand-in for what a model does, the scripted
backend for protocol edge cases (a reply that fails validation, a server without the fix)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, field_validator

import dskit as ds
from dskit.backends.base import Delta, Done
from dskit.conversation.steps import REPEAT_NOTE, TWO_STEP_NOTE
from dskit.errors import ConfigurationError, StructuredOutputError, ToolsNotSupported
from dskit.reasoning.plan import ReasoningSupport
from dskit.tools import ToolRequest
from tests.structured_cases import (
    EXPECTED,
    GREEDY,
    PROFILE,
    QWEN,
    SMALL,
    Person,
    multiply,
)

# --- the real stand-in --------------------------------------------------------------------

def test_fields_from_chinese_text_into_a_pydantic_model(embedded_client: Any) -> None:
    reply = ds.chat(f"从这段文字中提取人物信息：{PROFILE}", QWEN, client=embedded_client,
                    format=Person, max_tokens=120, **GREEDY)
    assert reply.parsed == EXPECTED
    assert any("llama.cpp grammar" in n for n in reply.notes)
    assert reply.status == "ok" and not reply.thinking


def test_reasoning_runs_free_and_only_the_answer_is_constrained(embedded_client: Any) -> None:
    reply = ds.chat(f"从这段文字中提取人物信息：{PROFILE}", QWEN, client=embedded_client,
                    format=Person, think=True, max_tokens=300, **GREEDY)
    # The reasoning is prose, not JSON: the grammar held only for the answer.
    assert reply.thinking and not reply.thinking.lstrip().startswith("{")
    assert isinstance(reply.parsed, Person) and reply.parsed.city == "杭州"
    assert TWO_STEP_NOTE not in reply.notes  # one request: llama.cpp runs the phases itself


def test_a_json_schema_dict_and_plain_json(embedded_client: Any) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"]}
    reply = ds.chat("What is 6 times 7?", QWEN, client=embedded_client, format=schema,
                    max_tokens=40, **GREEDY)
    assert isinstance(reply.parsed, dict) and isinstance(reply.parsed["answer"], int)
    reply = ds.chat("List three colours as a JSON array of strings.", QWEN,
                    client=embedded_client, format="json", max_tokens=60, **GREEDY)
    assert isinstance(reply.parsed, (list, dict))


def test_output_that_never_validates_raises_with_raw_text_and_errors(
        embedded_client: Any) -> None:
    class Even(BaseModel):
        number: int

        @field_validator("number")
        @classmethod
        def even_and_large(cls, v: int) -> int:
            if v % 2 or v < 10**9:
                raise ValueError("must be an even number above one billion")
            return v

    with pytest.raises(StructuredOutputError) as err:
        ds.chat("Give me the number 7.", QWEN, client=embedded_client, format=Even, retries=1,
                max_tokens=30, **GREEDY)
    exc = err.value
    assert exc.attempts == 2 and exc.raw.strip().startswith("{")
    assert any("one billion" in e for e in exc.errors)
    assert exc.reply is not None and exc.reply.answer == exc.raw


def test_the_stand_in_calls_a_tool_for_real(embedded_client: Any) -> None:
    reply = ds.chat("123.5 乘以 47 等于多少？", QWEN, client=embedded_client,
                    tools=[multiply], max_tokens=120, **GREEDY)
    assert [c.name for c in reply.tool_calls][:1] == ["multiply"]
    first = reply.tool_calls[0]
    assert first.ok and first.arguments == {"a": 123.5, "b": 47} and first.result == 5804.5
    assert first.seconds >= 0
    # The stand-in repeats its call instead of answering; the loop guard gets the answer.
    assert "5804.5" in reply.answer.replace(",", "")
    assert REPEAT_NOTE in reply.notes
    assert "multiply(a=123.5, b=47) → 5804.5" in reply.text()
    assert "dskit-tool-call" in reply._repr_html_()


def test_a_model_without_tool_support_gets_a_clear_error(embedded_client: Any) -> None:
    with pytest.raises(ToolsNotSupported) as err:
        ds.chat("What is 2 times 3?", SMALL, client=embedded_client, tools=[multiply])
    message = str(err.value)
    assert SMALL in message and "Qwen3" in message and "0528" in message


# --- protocol edge cases on the scripted backend -----------------------------------------

def test_a_refused_answer_is_shown_its_errors_and_asked_again(scripted: Any) -> None:
    client = scripted(['{"name": "张伟", "city": "杭州", "age": "三十五"}'],
                      ['{"name": "张伟", "city": "杭州", "age": 35}'])
    reply = ds.chat(f"提取：{PROFILE}", client=client, format=Person, retries=2)
    assert reply.parsed == EXPECTED
    second = client.backend.requests[1].messages
    assert second[-2] == {"role": "assistant",
                          "content": '{"name": "张伟", "city": "杭州", "age": "三十五"}'}
    assert second[-1]["role"] == "user" and "age: Input should be a valid integer" in \
        second[-1]["content"] and second[-1]["content"].startswith("这个回答无效")
    assert any("attempt 2" in n for n in reply.notes)


def test_without_retries_the_first_failure_raises(scripted: Any) -> None:
    client = scripted(["I think the answer is 42."])
    with pytest.raises(StructuredOutputError) as err:
        ds.chat("What is 6 x 7?", client=client, format=Person)
    assert err.value.raw == "I think the answer is 42." and err.value.attempts == 1
    assert len(client.backend.requests) == 1


def test_a_server_that_would_constrain_the_reasoning_gets_two_requests(scripted: Any) -> None:
    # An Ollama before 0.12.4: a think switch, but format would apply to the reasoning too.
    support = ReasoningSupport(think_switch=True, format_after_reasoning=False)
    client = scripted([Delta("thinking", "张伟，三十五岁，杭州。"), Delta("answer", "好的")],
                      [Delta("answer", '{"name": "张伟", "city": "杭州", "age": 35}')],
                      support=support, details={"fake:1b": {"capabilities": ["thinking"]}})
    reply = ds.chat(f"提取：{PROFILE}", client=client, format=Person)
    first, second = client.backend.requests
    assert first.format is None and first.plan.send_think is True
    assert second.format == Person.model_json_schema() and second.plan.send_think is False
    assert "张伟，三十五岁，杭州。" in second.messages[-1]["content"]
    assert reply.thinking == "张伟，三十五岁，杭州。" and reply.parsed.age == 35
    assert TWO_STEP_NOTE in reply.notes


def test_a_server_with_the_fix_gets_format_and_think_together(scripted: Any) -> None:
    support = ReasoningSupport(think_switch=True, format_after_reasoning=True)
    client = scripted([Delta("thinking", "想一想"),
                       Delta("answer", '{"name": "张伟", "city": "杭州", "age": 35}')],
                      support=support, details={"fake:1b": {"capabilities": ["thinking"]}})
    reply = ds.chat(f"提取：{PROFILE}", client=client, format=Person)
    (only,) = client.backend.requests
    assert only.format == Person.model_json_schema() and only.plan.send_think is True
    assert reply.thinking == "想一想" and reply.parsed.name == "张伟"


def test_tool_errors_and_unknown_tools_go_back_to_the_model(scripted: Any) -> None:
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    client = scripted(
        [Done(tool_calls=[ToolRequest("divide", {"a": 1, "b": 0}),
                          ToolRequest("shell", {"cmd": "ls"})])],
        ["1 cannot be divided by 0."])
    reply = ds.chat("1/0?", client=client, tools=[divide])
    assert reply.answer == "1 cannot be divided by 0."
    assert [(c.name, c.ok) for c in reply.tool_calls] == [("divide", False), ("shell", False)]
    sent = client.backend.requests[1].messages
    assert sent[-3]["tool_calls"][0]["name"] == "divide"
    assert sent[-2] == {"role": "tool", "name": "divide", "tool_call_id": "call_1_0",
                        "content": "error: ZeroDivisionError: float division by zero"}
    assert sent[-1]["content"].startswith("error: there is no tool named 'shell'")
    assert client.backend.requests[0].tools[0]["function"]["name"] == "divide"


def test_at_max_steps_the_answer_comes_from_the_results_so_far(scripted: Any) -> None:
    steps = [[Done(tool_calls=[ToolRequest("multiply", {"a": i, "b": 2})])] for i in range(3)]
    client = scripted(*steps, ["2 乘以 2 等于 4。"])
    reply = ds.chat("一直乘下去：1 乘以 2，再乘以 2……", client=client, tools=[multiply],
                    max_steps=3)
    assert len(client.backend.requests) == 4  # three with tools, then one without
    last = client.backend.requests[-1]
    assert not last.tools and "不要再调用工具" in last.messages[-1]["content"]
    assert "multiply(a=0, b=2) = 0" in last.messages[-1]["content"]
    assert "multiply(a=1, b=2) = 2" in last.messages[-1]["content"]
    assert [c.result for c in reply.tool_calls] == [0, 2, None]
    assert reply.tool_calls[-1].error == "not run: max_steps reached"
    assert reply.answer == "2 乘以 2 等于 4。" and reply.done_reason == "max_steps"
    assert reply.status.startswith("answered from the tool results so far")
    assert any("max_steps (3) reached" in n and "2 results" in n for n in reply.notes)


def test_max_steps_with_no_result_yet_has_no_answer(scripted: Any) -> None:
    steps = [[Done(tool_calls=[ToolRequest("multiply", {"a": i, "b": 2})])] for i in range(2)]
    client = scripted(*steps)
    reply = ds.chat("Keep multiplying.", client=client, tools=[multiply], max_steps=1)
    assert len(client.backend.requests) == 1
    assert [c.error for c in reply.tool_calls] == ["not run: max_steps reached"]
    assert reply.done_reason == "max_steps" and reply.status.startswith("no answer: max_steps")


def test_format_and_tools_together_validate_the_final_answer(scripted: Any) -> None:
    client = scripted([Done(tool_calls=[ToolRequest("multiply", {"a": 6, "b": 7})])],
                      ["It is 42."],
                      ['{"answer": 42}'])
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"]}
    reply = ds.chat("6 x 7?", client=client, tools=[multiply], format=schema)
    assert reply.parsed == {"answer": 42} and reply.tool_calls[0].result == 42
    last = client.backend.requests[-1]
    assert last.format == schema and last.tools is None  # constrained, and no more calls


@pytest.mark.parametrize("kwargs, match", [
    ({"format": Person, "stream": True}, "stream=True"),
    ({"format": 42}, "format must be"),
    ({"format": {"type": "nonsense"}}, "not a valid JSON schema"),
    ({"retries": 2}, "pass format="),
    ({"format": "json", "retries": -1}, "retries"),
    ({"tools": [multiply], "max_steps": 0}, "max_steps"),
])
def test_bad_arguments_are_refused(scripted: Any, kwargs: dict[str, Any], match: str) -> None:
    client = scripted(["{}"])
    with pytest.raises(ConfigurationError, match=match):
        ds.chat("hi", client=client, **kwargs)
    assert client.backend.requests == []


def test_a_conversation_points_to_ds_chat_for_format_and_tools(scripted: Any) -> None:
    conv = ds.Conversation(client=scripted(["{}"]))
    with pytest.raises(ConfigurationError, match=r"ds\.chat"):
        conv.send("hi", format="json")


def test_tool_timeout_without_tools_is_harmless(scripted: Any) -> None:
    client = scripted([Delta("answer", "好的。"), Done()])
    assert ds.chat("你好", "fake:1b", client=client, tool_timeout=5).answer == "好的。"
