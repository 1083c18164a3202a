"""Formats: schemas no validator or grammar can use are refused with a typed error before any
request (nothing outside the schema is ever read), and JSON is found in a reply in bounded
time."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from dskit.errors import ConfigurationError, StructuredOutputError
from dskit.structured import MAX_SCHEMA_DEPTH, OutputFormat, extract_json

TREE = {"$defs": {"node": {"type": "object", "properties": {
    "名字": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
    "$ref": "#/$defs/node"}


@pytest.mark.parametrize(("schema", "says"), [
    ({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "refers to itself"),
    ({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
      "$ref": "#/$defs/a"}, "refers to itself"),
    ({"properties": {"x": {"$ref": "#/$defs/missing"}}}, "not in the schema"),
    ({"$ref": "file:///etc/passwd"}, "never a file or a URL"),
    (json.loads('{"type": "array", "items": ' * 150 + "{}" + "}" * 150), "levels deep"),
    ({"type": 5}, "not a valid JSON schema"),
])
def test_an_unusable_schema_is_refused_with_the_reason(schema: dict[str, Any], says: str):
    with pytest.raises(ConfigurationError, match=says):
        OutputFormat.of(schema)


def test_a_remote_reference_is_never_fetched(httpserver: HTTPServer):
    httpserver.expect_request("/schema.json").respond_with_json({"type": "integer"})
    schema = {"type": "object", "properties": {"n": {"$ref": httpserver.url_for("/schema.json")}}}
    with pytest.raises(ConfigurationError, match="never a file or a URL"):
        OutputFormat.of(schema)
    assert httpserver.log == []  # refused before any request


def test_a_recursive_data_structure_is_a_valid_schema():
    fmt = OutputFormat.of(TREE)
    assert fmt.parse('{"名字": "根", "children": [{"名字": "叶", "children": []}]}')["名字"] == "根"
    with pytest.raises(StructuredOutputError):
        fmt.parse('{"名字": 1}')
    assert MAX_SCHEMA_DEPTH >= 32


@pytest.mark.parametrize("text", ["[" * 1_000_000, "好 " + "{" * 200_000,
                                  "说明：" + '{"a": ' * 5000, "[" * 100_000 + "]" * 100_000])
def test_a_hostile_reply_is_not_json_and_says_so(text: str):
    """Each used to take minutes (every bracket tried) or raise RecursionError; pytest-timeout
    bounds the time, the error must be the typed one."""
    with pytest.raises(ValueError, match="not JSON"):
        extract_json(text)


def test_json_inside_a_sentence_is_still_found():
    assert extract_json('答案如下：{"城市": "杭州"} 就这些') == {"城市": "杭州"}
    assert extract_json("[" * 500 + "]" * 500)  # deep but readable


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
              st.sampled_from(["#", "#/$defs/a", "#/properties", "http://127.0.0.1:9/x",
                               "object", "array", "string", "integer"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["type", "$ref", "$defs", "a", "properties", "items",
                                         "allOf", "anyOf", "oneOf", "not", "enum",
                                         "maxLength", "required", "const"]),
                        inner, max_size=4)),
    max_leaves=25))
def test_any_schema_is_accepted_or_refused_typed(schema: Any):
    if not isinstance(schema, dict):
        schema = {"anyOf": [schema]} if isinstance(schema, list) else {"const": schema}
    try:
        fmt = OutputFormat.of(schema)
    except ConfigurationError:
        return
    with contextlib.suppress(StructuredOutputError):
        fmt.parse('{"a": [1, "二"]}')
