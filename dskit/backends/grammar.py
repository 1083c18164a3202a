"""llama.cpp grammars for a format ("json" or a JSON schema), in a form llama.cpp can take.

llama-cpp-python turns a schema into GBNF with a port of an older llama.cpp converter, which
writes a bounded repetition (a string's `maxLength`, an array's `maxItems`, a pattern's
`{m,n}`) as one nested optional group per allowed item: `(c (c (c)?)?)?`. For a plain
`Field(max_length=5000)` llama.cpp's parser refused that grammar ("number of rules … exceeds
sane defaults") and llama-cpp-python added the missing grammar sampler anyway: the process
died (a segmentation fault, not an exception). llama.cpp's grammars have `{m,n}` repetition,
which its parser expands into rules iteratively, and llama.cpp's own converter writes that form
today; so while dskit converts a schema, the port's repetition builder is replaced by one that
writes `{m,n}` (the same language, a flat text).

Two more limits are llama.cpp's own and are met by relaxing the grammar rather than refusing
the schema: its parser refuses a repetition whose rules times bound exceed 2,000 (and
llama-cpp-python then crashes on the missing grammar, so every grammar is tried on the model's
vocabulary first), and each alternative of an enum is a stack it advances for every candidate
token (measured on qwen2.5-coder:0.5b for 12 tokens: no enum 0.8 s, 1,000 values 5.2 s,
10,000 values 38.7 s). A relaxed grammar drops repetition bounds and turns long enums into
their type; the reply is still validated against the whole schema afterwards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from ..structured import check_depth

#: Enums with more values than this are constrained by their type only in a relaxed grammar.
MAX_ENUM = 256
#: The largest grammar text used as it is (about 1,500 short enum values); larger ones are
#: relaxed, and a relaxed one still larger is refused.
MAX_GRAMMAR_CHARS = 32_000

_convert_lock = threading.Lock()


def _repetition(item_rule: str, min_items: int, max_items: int | None,
                separator_rule: str | None = None, item_rule_is_literal: bool = False) -> str:
    """`item_rule` repeated `min_items` to `max_items` times (None: no upper bound), with
    `separator_rule` between items, in llama.cpp's `{m,n}` form (flat, whatever the bounds)."""
    del item_rule_is_literal  # a literal is repeated by the same operator as any other item
    if max_items == 0:
        return ""
    if min_items == 0 and max_items == 1:
        return f"{item_rule}?"
    if not separator_rule:
        if min_items == 1 and max_items is None:
            return f"{item_rule}+"
        if min_items == 0 and max_items is None:
            return f"{item_rule}*"
        upper = "" if max_items is None else str(max_items)
        if upper == str(min_items):
            return f"{item_rule}{{{min_items}}}"
        return f"{item_rule}{{{min_items},{upper}}}"
    rest = _repetition(f"({separator_rule} {item_rule})", max(min_items - 1, 0),
                       None if max_items is None else max_items - 1)
    result = f"{item_rule} {rest}".rstrip()
    return f"({result})?" if min_items == 0 else result


def to_gbnf(fmt: str | dict[str, Any], accepts: Callable[[str], bool] = lambda _: True,
            ) -> tuple[str, bool]:
    """The GBNF text for "json" or a JSON schema, and whether it had to be relaxed.

    `accepts(text)` says whether llama.cpp takes a grammar. `ConfigurationError` when even the
    relaxed grammar cannot be made, is too large, or is refused.
    """
    from llama_cpp import llama_grammar

    if not isinstance(fmt, dict):
        return llama_grammar.JSON_GBNF, False
    check_depth(fmt)  # the converter recurses once per level
    gbnf = convert(fmt, relaxed=False)
    if len(gbnf) <= MAX_GRAMMAR_CHARS and accepts(gbnf):
        return gbnf, False
    gbnf = convert(_relax(fmt), relaxed=True)
    if len(gbnf) > MAX_GRAMMAR_CHARS:
        raise _refused(f"its grammar is {len(gbnf):,} characters even relaxed, over the "
                       f"{MAX_GRAMMAR_CHARS:,} this backend takes (many alternatives); use "
                       "plain string fields and check their values after the reply")
    if not accepts(gbnf):
        raise _refused("llama.cpp's grammar parser refused it (its message is on stderr)")
    return gbnf, True


def convert(schema: dict[str, Any], relaxed: bool) -> str:
    """llama-cpp-python's conversion with dskit's repetition builder (see the module doc)."""
    from llama_cpp import llama_grammar

    text = json.dumps(schema)
    build = _unbounded if relaxed else _repetition
    # The port looks its repetition builder up by name at each call: replaced for this call
    # only, under a lock, and put back however the conversion ends.
    with _convert_lock:
        original = llama_grammar._build_repetition
        llama_grammar._build_repetition = build
        try:
            return llama_grammar.json_schema_to_gbnf(text)
        except RecursionError:
            raise _refused("it is too large or nests too deeply for the converter") from None
        except (ValueError, RuntimeError, KeyError, TypeError, AssertionError, IndexError,
                AttributeError, NotImplementedError) as exc:
            raise _refused(str(exc)[:200] or type(exc).__name__) from None
        finally:
            llama_grammar._build_repetition = original


def _unbounded(item_rule: str, min_items: int, max_items: int | None,
               separator_rule: str | None = None, item_rule_is_literal: bool = False) -> str:
    """A repetition without its bounds (at most one required item): the relaxed grammar's."""
    if max_items == 0:
        return ""
    if max_items == 1:
        return _repetition(item_rule, min_items, 1, separator_rule)
    return _repetition(item_rule, min(min_items, 1), None, separator_rule)


def _relax(node: Any) -> Any:
    """A copy of a schema with long enums replaced by the types of their values."""
    if isinstance(node, list):
        return [_relax(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _relax(v) for k, v in node.items()}
    values = out.get("enum")
    if isinstance(values, list) and len(values) > MAX_ENUM:
        del out["enum"]
        kinds = sorted({_JSON_TYPE.get(type(v), "string") for v in values})
        out.setdefault("type", kinds[0] if len(kinds) == 1 else kinds)
    return out


_JSON_TYPE = {str: "string", int: "integer", float: "number", bool: "boolean",
              type(None): "null", list: "array", dict: "object"}


def _refused(why: str) -> ConfigurationError:
    return ConfigurationError(f"llama.cpp cannot constrain a reply to this schema: {why}. "
                              "Simplify the schema (plain objects, arrays, strings, numbers, "
                              "short enums)")
