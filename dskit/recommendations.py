"""DeepSeek-R1 usage recommendations, applied by default to R1-family models."""

from __future__ import annotations

import copy

from .backends.base import Options
from .reasoning.plan import Traits
from .reasoning.think import split_think

R1_TEMPERATURE = 0.6
R1_TOP_P = 0.95

FOLD_NOTE = (
    "DeepSeek recommends no system prompt for R1: the system prompt was moved into the "
    "user turn."
)


def apply_recommendations(
    messages: list[dict[str, str]], options: Options, traits: Traits
) -> tuple[list[dict[str, str]], Options, list[str]]:
    """Return messages and options with DeepSeek's recommendations applied, plus notes."""
    notes: list[str] = []
    options = copy.deepcopy(options)
    if traits.r1:
        if options.temperature is None:
            options.temperature = R1_TEMPERATURE
        if options.top_p is None:
            options.top_p = R1_TOP_P
    messages = strip_reasoning(messages)
    if traits.r1 and not traits.system_prompt_ok:
        messages, folded = fold_system_prompt(messages)
        if folded:
            notes.append(FOLD_NOTE)
    return messages, options, notes


def fold_system_prompt(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], bool]:
    """Move system messages into the first user turn; returns (messages, whether any moved)."""
    system = [m["content"] for m in messages if m.get("role") == "system" and m.get("content")]
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    if not system:
        return rest, False
    prefix = "\n\n".join(system)
    for m in rest:
        if m.get("role") == "user":
            m["content"] = f"{prefix}\n\n{m['content']}"
            break
    else:
        rest.insert(0, {"role": "user", "content": prefix})
    return rest, True


def strip_reasoning(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Drop reasoning from earlier assistant turns: R1 must never see its old `<think>` blocks.

    A turn that called tools keeps its `thinking` apart (never in its content): DeepSeek's
    thinking mode needs it back (api-docs.deepseek.com/guides/thinking_mode, "Tool Calls"),
    and the backends of servers that do not, leave it out.
    """
    out: list[dict[str, str]] = []
    for m in messages:
        keep = ("thinking",) if m.get("role") == "assistant" and m.get("tool_calls") else ()
        m = {k: v for k, v in m.items()
             if k not in ("thinking", "reasoning_content") or k in keep}
        if m.get("role") == "assistant" and "</think>" in m.get("content", ""):
            m["content"] = split_think(m["content"], start_in_thinking=True)[1]
        out.append(m)
    return out
