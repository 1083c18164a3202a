"""Structured output: the requested format (a Pydantic model, a JSON schema or "json"), how a
model is asked for it, and how its reply is validated."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError, StructuredOutputError
from .language import is_chinese

#: Any JSON value, no schema (Ollama's `format: "json"`).
JSON = "json"

_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```\s*$", re.S)

ASK = {
    "en": "Reply with JSON only, matching this JSON schema:\n{schema}",
    "zh": "只用 JSON 回答，并符合这个 JSON schema：\n{schema}",
}
ASK_ANY = {"en": "Reply with JSON only.", "zh": "只用 JSON 回答。"}
RETRY = {
    "en": "That reply is not valid: {errors}. Reply again with corrected JSON only.",
    "zh": "这个回答无效：{errors}。请只用修正后的 JSON 再回答一次。",
}
#: The second request of the reason-then-answer fallback: the reasoning goes back as context.
FROM_REASONING = {
    "en": "Your reasoning about this question was:\n{reasoning}\n\nNow give only the final "
          "answer.",
    "zh": "你对这个问题的思考过程是：\n{reasoning}\n\n现在只给出最终答案。",
}


def language_of(text: str) -> str:
    """"zh" for Chinese text, else "en" (the language dskit's own words take)."""
    return "zh" if is_chinese(text) else "en"


@dataclass(frozen=True)
class OutputFormat:
    """What a reply must be: JSON matching `schema` (any JSON when None), read into `model`."""

    schema: dict[str, Any] | None = None
    #: A Pydantic model class: replies validate into an instance of it.
    model: Any = None

    @classmethod
    def of(cls, fmt: Any) -> OutputFormat:
        """A Pydantic model class, a JSON-schema dict or "json"; anything else is refused."""
        if isinstance(fmt, OutputFormat):
            return fmt
        if fmt == JSON:
            return cls()
        if isinstance(fmt, type) and hasattr(fmt, "model_json_schema"):
            return cls(schema=fmt.model_json_schema(), model=fmt)
        if isinstance(fmt, dict):
            check_schema(fmt)
            return cls(schema=dict(fmt))
        raise ConfigurationError(
            f"format must be a Pydantic model class, a JSON-schema dict or \"json\", not "
            f"{fmt!r}")

    @property
    def wire(self) -> str | dict[str, Any]:
        """What servers take as `format`: the schema, or "json"."""
        return self.schema if self.schema is not None else JSON

    def instruction(self, question: str) -> str:
        """The words that ask for this format, in the language of the question."""
        lang = language_of(question)
        if self.schema is None:
            return ASK_ANY[lang]
        return ASK[lang].format(schema=json.dumps(self.schema, ensure_ascii=False))

    def retry_message(self, errors: list[str], question: str) -> str:
        """The user turn that shows the model why its reply was refused."""
        return RETRY[language_of(question)].format(errors="; ".join(errors))

    def parse(self, text: str) -> Any:
        """The validated value of `text` (a model instance, or the JSON value).

        Raises `StructuredOutputError` with the raw text and every validation message.
        """
        try:
            data = extract_json(text)
        except ValueError as exc:
            raise StructuredOutputError(text, [str(exc)]) from None
        if self.model is not None:
            from pydantic import ValidationError  # pydantic models only

            try:
                return self.model.model_validate(data)
            except ValidationError as exc:
                raise StructuredOutputError(text, [
                    f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                    for e in exc.errors()]) from None
        if self.schema is not None:
            from jsonschema import Draft202012Validator

            try:
                problems = sorted(Draft202012Validator(self.schema).iter_errors(data),
                                  key=lambda e: list(e.absolute_path))
            except RecursionError:
                raise StructuredOutputError(text, ["value: nested too deeply to check"]) \
                    from None
            if problems:
                raise StructuredOutputError(text, [
                    f"{'.'.join(str(p) for p in e.absolute_path) or 'value'}: {e.message}"
                    for e in problems])
        return data


#: Places in a reply where a JSON value is looked for when the whole text is not one: each try
#: reads to the end of the text, so trying every "[" of a long run of them took minutes.
MAX_STARTS = 16


def extract_json(text: str) -> Any:
    """The JSON value in a reply: the whole text, a fenced block, or an object/array starting
    at one of the first `MAX_STARTS` brackets; ValueError otherwise."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body:
        raise ValueError("the reply is empty: no JSON in it")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        first = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        first = "nested too deeply"
    # A model asked in words (no grammar) may wrap its JSON in a sentence.
    decoder = json.JSONDecoder()
    starts = (i for i, ch in enumerate(body) if ch in "{[")
    for i in itertools.islice(starts, MAX_STARTS):
        try:
            return decoder.raw_decode(body, i)[0]
        except (json.JSONDecodeError, RecursionError):
            continue
    raise ValueError(f"not JSON: {first}")


#: How deep a schema may nest (Pydantic's schemas use $defs and stay shallow).
MAX_SCHEMA_DEPTH = 64
#: The keywords whose subschemas apply to the same value (no step into the data): a cycle
#: through them alone never ends.
_IN_PLACE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref")


def check_schema(schema: dict[str, Any]) -> None:
    """Refuse, with a `ConfigurationError` that says why, a schema no validator or grammar can
    use: invalid, nested over `MAX_SCHEMA_DEPTH`, a `$ref` outside the schema (a file or a URL
    is never read) or to nothing, or references that lead back to themselves without a step
    into the data."""
    check_depth(schema)
    from jsonschema import Draft202012Validator, SchemaError  # only when a dict is given

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ConfigurationError(f"format is not a valid JSON schema: {exc.message}") from None
    except RecursionError:
        raise ConfigurationError("format nests too deeply to check") from None
    for node in _nodes(schema):
        _follow_refs(schema, node)


def check_depth(schema: Any) -> None:
    """Refuse a schema nested over `MAX_SCHEMA_DEPTH` (walked without recursion)."""
    stack = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            raise ConfigurationError(f"format nests more than {MAX_SCHEMA_DEPTH} levels deep: "
                                     "use $defs for repeated parts")
        children = node.values() if isinstance(node, dict) else node \
            if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _nodes(schema: Any) -> list[dict[str, Any]]:
    """Every subschema (every dict) of `schema`."""
    out, stack = [], [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _resolve(schema: dict[str, Any], ref: Any) -> Any:
    """The subschema a local `$ref` ("#", "#/$defs/x") points at."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise ConfigurationError(f"format refers to {str(ref)[:80]!r}: only references inside "
                                 "the schema (\"#/$defs/...\") are followed, never a file or "
                                 "a URL")
    node: Any = schema
    for part in [p for p in ref[1:].split("/") if p]:
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise ConfigurationError(f"format refers to {ref[:80]!r}, which is not in the "
                                     "schema")
    return node


def _follow_refs(schema: dict[str, Any], start: dict[str, Any]) -> None:
    """Follow the in-place references from `start`; refuse one that comes back to itself."""
    seen: set[int] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if id(node) in seen:
            if node is start:
                raise ConfigurationError("format refers to itself without a step into the "
                                         "data ($ref, allOf, anyOf... around a loop): it can "
                                         "never be checked")
            continue
        seen.add(id(node))
        for key in _IN_PLACE:
            if key not in node:
                continue
            if key == "$ref":
                stack.append(_resolve(schema, node["$ref"]))
            elif isinstance(node[key], list):
                stack.extend(node[key])
            else:
                stack.append(node[key])


def with_instruction(messages: list[dict[str, Any]], fmt: OutputFormat) -> list[dict[str, Any]]:
    """The messages with the format's instruction added to the last user turn.

    Servers that constrain decoding still get it: a grammar fixes the syntax, the words tell the
    model what each field means (Ollama's documentation advises the same).
    """
    return add_to_question(messages, fmt.instruction(last_question(messages)))


def add_to_question(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """A copy of `messages` with `text` added to the last user turn, after a blank line."""
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m.get("role") == "user":
            m["content"] = f"{m['content']}\n\n{text}"
            break
    return out


def last_question(messages: list[dict[str, Any]]) -> str:
    """The text of the last user turn ("" when there is none)."""
    return next((str(m.get("content") or "") for m in reversed(messages)
                 if m.get("role") == "user"), "")
