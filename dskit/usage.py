"""DeepSeek-R1 usage recommendations, applied by default to R1-family models."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .backends.base import Options

R1_TEMPERATURE = 0.6
R1_TOP_P = 0.95
THINK_PREFIX = "<think>\n"

FOLD_NOTE = (
    "DeepSeek recommends no system prompt for R1: the system prompt was moved into the "
    "user turn."
)


@dataclass(frozen=True)
class Traits:
    """How a model should be prompted."""

    reasoning: bool = False  # emits a <think> block
    r1: bool = False  # DeepSeek-R1 family: apply the usage recommendations
    system_prompt_ok: bool = True  # R1-0528 and later accept a system prompt
    force_think: bool = False  # start the reply with "<think>\n"


def _detail_text(details: dict[str, Any]) -> str:
    """Lower-cased text of the identifying fields of Ollama's /api/show answer."""
    parts: list[str] = []
    info = details.get("model_info") or {}
    for key in ("general.name", "general.basename", "general.finetune", "general.version",
                "general.architecture"):
        if info.get(key):
            parts.append(str(info[key]))
    det = details.get("details") or {}
    parts.append(str(det.get("family", "")))
    parts.extend(str(f) for f in det.get("families") or [])
    return " ".join(parts).lower()


def detect_traits(model: str, details: dict[str, Any] | None = None) -> Traits:
    """Decide how to prompt `model`, preferring the server's model details over the name."""
    details = details or {}
    name = model.lower()
    text = _detail_text(details)
    caps = [str(c).lower() for c in details.get("capabilities") or []]
    r1 = "deepseek-r1" in name or "deepseek r1" in text or "deepseek-r1" in text \
        or ("r1" in text.split() and "deepseek" in text)
    reasoning = r1 or "thinking" in caps or bool(details.get("reasoning"))
    if not r1:
        return Traits(reasoning=reasoning)
    # R1-0528 (and the Qwen3-8B distill Ollama serves as deepseek-r1:8b today) accepts a system
    # prompt and starts its reasoning by itself; the original R1 and its distills do not.
    newer = "0528" in name or "0528" in text or "qwen3" in text
    return Traits(reasoning=True, r1=True, system_prompt_ok=newer, force_think=not newer)


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
    """Drop reasoning from earlier assistant turns: R1 must never see its old `<think>` blocks."""
    from .reasoning import split_think

    out: list[dict[str, str]] = []
    for m in messages:
        m = {k: v for k, v in m.items() if k not in ("thinking", "reasoning_content")}
        if m.get("role") == "assistant" and "</think>" in m.get("content", ""):
            m["content"] = split_think(m["content"], start_in_thinking=True)[1]
        out.append(m)
    return out
