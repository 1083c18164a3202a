"""Whether and how one reply reasons, decided in one place for `ds.chat`, the backends and
`dskit serve` alike.

The rules (the same defaults everywhere):
- A reasoning model (DeepSeek-R1, or one whose server lists the `thinking` capability) reasons
  unless `think=False`; other models reason only when asked (`think=True`).
- DeepSeek recommends starting R1's reply with "<think>\\n" so it never skips its reasoning:
  done where the backend can force the start of a reply (llama.cpp in process).
- A model that does not reason by itself, asked to (`think=True`), is prompted to reason first
  and then answer with its reasoning in context, where the backend can run those two phases
  (the embedded stand-ins); elsewhere a note says `think=True` had no effect.
- Servers with a `think` switch (Ollama >= 0.9) get it and return the reasoning apart. For a
  model that does not reason, the server decides: Ollama refuses `think: true` (the backend
  then answers without it and says so), `dskit serve` prompts a stand-in to reason first.
- Raw output of an R1 model is read as starting inside its reasoning block: the chat template
  or the forced prefix opened it.
- A thinking budget (`think_budget=N`) asks for reasoning and caps it, the way budget forcing
  does: after N tokens the reasoning is cut, closed with a short wrap-up line, `</think>` and a
  blank line, and the model answers with that reasoning in context. `think_budget=0` answers
  without reasoning (an empty think block). Without a budget nothing changes. Each backend
  carries the cut out its own way (llama.cpp with a stopping criterion on the one pass, then
  the answer from the model's own tokens; prompted reasoning in two phases; Ollama through a raw
  `/api/generate`, OpenAI-compatible servers by continuing a final assistant message).
- Early exits (`exit_at=[0, 64, 256]`) read one trace at several budgets: the reasoning is
  generated once, then closed at each checkpoint exactly as a budget closes it and only the
  answer is generated from there. The plan reasons as with a budget (the same forced opening),
  and the backend keeps the trace to close it (`backends.base.EarlyExits`).
- A thinking minimum (`think_min=N`) is the other half of s1's budget forcing (Muennighoff et
  al. 2025, "s1: Simple test-time scaling"): when the model closes its reasoning before N
  tokens, the close is replaced by an extension word ("Wait", "等等" for a Chinese question) and
  the reasoning goes on, at most `max_extensions` times. It asks for reasoning like a budget
  does, and works beside one (extended up to the minimum, cut at the budget). llama.cpp
  continues from its cached prefix; Ollama and OpenAI-compatible servers are sent the prompt
  and the reasoning so far, ending in the word, the way a budget's answer is continued.
- A hybrid model (DeepSeek-V3.1/V3.2, DeepSeek's platform names) reasons or not per request:
  `think=True/False` is sent the way its server expects (Ollama's `think`, a chat-template
  argument on vLLM, SGLang and llama.cpp, the platform's model name or `thinking` parameter),
  never by a forced prefix. Its default (think=None) is the server's own.
- An effort level (`effort="low" | "medium" | "high" | "max"`) asks for reasoning like a budget
  does; the backend sends it where the server documents a field for it, else refuses it
  (`EffortUnsupported`, naming the levels that server has).
- A server with its own per-request thinking budget (vLLM's `thinking_token_budget`, SGLang's
  strict thinking, llama.cpp's `reasoning_budget_tokens`) enforces `think_budget` itself and
  the reply says so; dskit's cut and continuation stay the fallback (docs/thinking.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..language import is_chinese

#: DeepSeek's recommended start of an R1 reply.
THINK_PREFIX = "<think>\n"

NO_REASONING_NOTE = ("think=True had no effect: this model does not reason by itself and this "
                     "backend cannot ask it to reason first.")

#: The line that closes reasoning cut by a budget, in the language of the question (budget
#: forcing: the model is told its time is up, then the block is closed for it).
WRAP_UP = {
    "en": "Time is up: I have to give the answer now, based on the reasoning so far.",
    "zh": "时间到了，我必须根据以上的思考直接给出答案。",
}
#: What follows the reasoning once it is closed: `</think>` and a blank line.
CLOSE = "\n</think>\n\n"
#: The closed empty block of an answer without reasoning (`think_budget=0`).
EMPTY_THINK = "<think>\n\n</think>\n\n"
#: The word that replaces an early close of the reasoning (`think_min`), in the language of the
#: question: s1's "Wait", which makes a model go on and check its reasoning.
EXTENSION = {"en": "Wait", "zh": "等等"}
#: How many times reasoning closed too early is extended by default.
DEFAULT_MAX_EXTENSIONS = 3
#: The longest extension text accepted (it is sent back to the model each time).
MAX_EXTENSION_CHARS = 200
#: Free reasoning (no budget) leaves a quarter of `max_tokens`, at most this many tokens, to
#: the answer where the backend runs the phases itself: the reasoning ate the whole limit and
#: the chat widget's replies ended without an answer (issue 27).
ANSWER_ROOM = 256
#: Below this `max_tokens` nothing is kept back: too few to share; the limit note says why.
ROOM_FROM = 64
#: The effort levels `effort=` takes; each server takes some of them (docs/thinking.md).
EFFORTS = ("low", "medium", "high", "max")


@dataclass(frozen=True)
class Traits:
    """How a model should be prompted."""

    reasoning: bool = False  # emits a <think> block
    r1: bool = False  # DeepSeek-R1 family: apply the usage recommendations
    system_prompt_ok: bool = True  # R1-0528 and later accept a system prompt
    force_think: bool = False  # start the reply with "<think>\n"
    hybrid: bool = False  # thinks or not per request (DeepSeek-V3.1/V3.2): `is_hybrid`


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


#: DeepSeek-V3.1 and V3.2 as Ollama tags (deepseek-v3.1:671b), Hugging Face names
#: (deepseek-ai/DeepSeek-V3.1-Terminus) or Ollama's model_info ("DeepSeek V3.1").
_V3_HYBRID = re.compile(r"deepseek[-_ ]?v3\.([12])(?![0-9])")
#: DeepSeek's former platform names, the non-thinking and the thinking mode of one model,
#: retired on 2026-07-24 (DeepSeek's change log; `dskit.models.family.RETIRED_PLATFORM_NAMES`).
PLATFORM_MODES = ("deepseek-chat", "deepseek-reasoner")


def _v3_version(model: str, details: dict[str, Any] | None = None) -> str:
    """"1" or "2" for DeepSeek-V3.1 / V3.2 (by name, else Ollama's model details), else ""."""
    text = f"{model.lower()} {_detail_text(details or {})}"
    # V3.2-Speciale thinks always and calls no tools: not a model that switches.
    match = _V3_HYBRID.search(text)
    return "" if match is None or "speciale" in text else match.group(1)


def _catalog_spec(model: str) -> Any:
    """The DeepSeek catalog's row for `model` (`dskit.models.family.spec_for`), or None."""
    # Upward on purpose, inside the function: the catalog (layer 6) is where each model's
    # thinking facts are kept with their sources; this layer only reads them.
    from ..models.family import spec_for

    return spec_for(model)


def is_hybrid(model: str, details: dict[str, Any] | None = None) -> bool:
    """Whether `model` thinks or not per request: the catalog's `ModelSpec.hybrid`
    (DeepSeek-V3.1, V3.2, V4 by Ollama tag, Hugging Face or platform name); for a name it does
    not know, DeepSeek-V3.1/V3.2 recognised by name or Ollama's model details."""
    spec = _catalog_spec(model)
    if spec is not None and spec.deepseek:
        return bool(spec.hybrid)
    return bool(_v3_version(model, details))


def tools_while_thinking(model: str, details: dict[str, Any] | None = None) -> bool | None:
    """Whether `model` may call tools while it thinks: the catalog's
    `ModelSpec.tool_calls_while_thinking` (False for DeepSeek-V3.1: "Toolcall is supported in
    non-thinking mode"), else False for a V3.1 and True for a V3.2 recognised by name, None
    when dskit does not know (the server decides)."""
    spec = _catalog_spec(model)
    if spec is not None and spec.deepseek and (spec.hybrid or spec.tool_calls_while_thinking):
        return bool(spec.tool_calls_while_thinking)
    version = _v3_version(model, details)
    return {"1": False, "2": True}.get(version)


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
        # A hybrid model reasons by default where its server says so (Ollama lists `thinking`
        # and thinks by default; deepseek-reasoner is the thinking mode); else only when asked.
        return Traits(reasoning=reasoning, hybrid=is_hybrid(model, details))
    # R1-0528 (and the Qwen3-8B distill Ollama serves as deepseek-r1:8b today) accepts a system
    # prompt and starts its reasoning by itself; the original R1 and its distills do not.
    newer = "0528" in name or "0528" in text or "qwen3" in text
    return Traits(reasoning=True, r1=True, system_prompt_ok=newer, force_think=not newer)


@dataclass(frozen=True)
class ReasoningSupport:
    """What a backend can do about reasoning (each says so in `reasoning_support()`)."""

    #: Takes Ollama's `think` switch and returns the reasoning apart from the answer.
    think_switch: bool = False
    #: Can make the reply start with given text (the forced "<think>\n").
    force_prefix: bool = False
    #: Can ask a model to reason, close the block itself, then let it answer.
    two_phase: bool = False
    #: Applies a `format` to the answer only, after free reasoning (llama.cpp in phases,
    #: Ollama >= 0.12.4). Without it a reasoning reply with a format takes two requests:
    #: reason first, then the constrained answer with that reasoning in context.
    format_after_reasoning: bool = False
    #: Switches a hybrid model's thinking per request the way its server expects (a
    #: chat-template argument, DeepSeek's model names or `thinking` parameter).
    hybrid_switch: bool = False


@dataclass(frozen=True)
class ReasoningPlan:
    """How one reply reasons; backends carry it out, the chat layer reads the output by it."""

    #: True: the reply reasons; False: asked not to; None: a model that does not reason.
    think: bool | None = None
    #: The `think` field for servers that take one (None: send none).
    send_think: bool | None = None
    #: Text the reply is forced to start with ("" for none).
    prefix: str = ""
    #: Prompted reasoning in two phases for a model that does not reason by itself.
    two_phase: bool = False
    #: Raw output starts inside the reasoning block (its opening tag is not in the output).
    starts_inside: bool = False
    #: What the user should know about the plan (shown on the reply).
    notes: tuple[str, ...] = ()
    #: Thinking budget in tokens: cut the reasoning there and let the model answer (None: none).
    budget: int | None = None
    #: Early-exit checkpoints: the one trace is also closed and answered at each (ascending).
    exits: tuple[int, ...] = ()
    #: Thinking minimum in tokens: reasoning closed before it is extended (None: none).
    think_min: int | None = None
    #: At most this many extensions per reply.
    max_extensions: int = DEFAULT_MAX_EXTENSIONS
    #: The extension word (None: "Wait" or "等等" by the language of the question).
    extension: str | None = None
    #: A hybrid model: `send_think` switches its thinking (the backend sends it its own way).
    hybrid: bool = False
    #: The effort level asked for (`EFFORTS`; the backend sends it or refuses it).
    effort: str | None = None

    def extends(self, thought: int, extensions: int) -> bool:
        """Whether reasoning that closed after `thought` tokens, already extended `extensions`
        times, is extended once more (never past the budget)."""
        return (self.think_min is not None and thought < self.think_min
                and extensions < self.max_extensions
                and (self.budget is None or thought < self.budget))


def check_budget(budget: object) -> int | None:
    """`think_budget` as given: None, or a whole number of tokens >= 0."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or not 0 <= budget < 2**31:
        shown = repr(budget) if not isinstance(budget, int) or budget < 10**12 else "a number " \
            "that large"
        raise ConfigurationError(
            f"think_budget={shown}: give a whole number of tokens from 0 (answer without "
            f"reasoning) to {2**31 - 1:,}, or None for no budget")
    return budget


def check_exits(exits: object) -> tuple[int, ...]:
    """`exit_at` as given: checkpoints in tokens (None, the full trace, is always read)."""
    given = list(exits) if isinstance(exits, (list, tuple, range)) else [exits]
    for e in given:
        if e is not None and (isinstance(e, bool) or not isinstance(e, int)
                              or not 0 <= e < 2**31):
            raise ConfigurationError(f"exit_at: {e!r} is not a checkpoint: give whole numbers "
                                     "of tokens from 0 (answer without reasoning), e.g. "
                                     "exit_at=[0, 64, 128, 256]")
    kept = sorted({e for e in given if isinstance(e, int)})
    if not kept:
        raise ConfigurationError(f"exit_at={exits!r}: give at least one checkpoint in tokens, "
                                 "e.g. exit_at=[0, 64, 128, 256]")
    if len(kept) != len([e for e in given if e is not None]):
        raise ConfigurationError(f"a checkpoint is listed twice in exit_at={given}")
    return tuple(kept)


def check_think_min(think_min: object) -> int | None:
    """`think_min` as given: None or 0 (no minimum), or a whole number of tokens >= 1."""
    if think_min is None:
        return None
    if isinstance(think_min, bool) or not isinstance(think_min, int) or \
            not 0 <= think_min < 2**31:
        shown = repr(think_min) if not isinstance(think_min, int) or think_min < 10**12 else \
            "a number that large"
        raise ConfigurationError(
            f"think_min={shown}: give a whole number of tokens from 1 to {2**31 - 1:,} (the "
            "reasoning is extended until it is that long), or None (or 0) for no minimum")
    return think_min


def check_extensions(max_extensions: object, extension: object) -> tuple[int, str | None]:
    """`max_extensions` (a whole number >= 0) and `extension` (None, or a short word) as
    given."""
    if isinstance(max_extensions, bool) or not isinstance(max_extensions, int) or \
            not 0 <= max_extensions <= 1000:
        raise ConfigurationError(
            f"max_extensions={max_extensions!r}: give a whole number from 0 (never extend) to "
            f"1000; the default is {DEFAULT_MAX_EXTENSIONS}")
    if extension is not None and (not isinstance(extension, str) or not extension.strip()
                                  or len(extension) > MAX_EXTENSION_CHARS
                                  or "<think>" in extension or "</think>" in extension):
        shown = repr(extension)[:60]
        raise ConfigurationError(
            f"extension={shown}: give a short text (at most {MAX_EXTENSION_CHARS} characters, "
            "no <think> tags) that makes the model go on reasoning, e.g. 'Wait' or '等等'; "
            "or None for the default in the question's language")
    return max_extensions, extension.strip() if isinstance(extension, str) else None


def check_effort(effort: object) -> str | None:
    """`effort` as given: None, or one of `EFFORTS`."""
    if effort is None or (isinstance(effort, str) and effort in EFFORTS):
        return effort
    raise ConfigurationError(f"effort={effort!r}: give one of {', '.join(map(repr, EFFORTS))} "
                             "(each server takes some of them), or None for the server's own")


def plan_reasoning(traits: Traits, think: bool | None, support: ReasoningSupport,
                   budget: int | None = None, think_min: int | None = None,
                   max_extensions: int = DEFAULT_MAX_EXTENSIONS,
                   extension: str | None = None, exits: object = None,
                   effort: str | None = None) -> ReasoningPlan:
    """The plan for a reply of a model with `traits`, asked `think`, on a backend with `support`.

    A `budget` asks for reasoning (think=None becomes True) and caps it; `think=False` with a
    budget above 0 contradicts it and is refused. A `think_min` above 0 asks for reasoning too
    (refused with think=False, or above the budget) and extends it to that many tokens, at most
    `max_extensions` times, with `extension` (None: by the question's language). Early-exit
    checkpoints (`exits`) ask for reasoning the same way; each is a budget already, so they take
    neither a budget nor a minimum beside them. An `effort` level asks for reasoning too (refused
    with think=False). A hybrid model on a backend that switches it is never "asked but cannot".
    """
    budget = check_budget(budget)
    think_min = check_think_min(think_min) or None  # 0 is no minimum
    max_extensions, extension = check_extensions(max_extensions, extension)
    points = check_exits(exits) if exits is not None else ()
    effort = check_effort(effort)
    if effort is not None:
        if think is False:
            raise ConfigurationError(
                f"effort={effort!r} sets how hard the model reasons, but think=False turns "
                "reasoning off: drop one of them")
        think = True
    if points:
        if budget is not None or think_min is not None:
            setting = f"think_budget={budget}" if budget is not None else f"think_min={think_min}"
            raise ConfigurationError(
                f"exit_at={list(points)} and {setting}: each checkpoint reads the one trace at "
                "a budget; give exit_at alone")
        if think is False:
            raise ConfigurationError(
                "exit_at closes the reasoning at checkpoints, but think=False turns it off: "
                "drop one of them")
        think = True
    if think_min is not None:
        if think is False:
            raise ConfigurationError(
                f"think_min={think_min} extends reasoning, but think=False turns it off: drop "
                "one of them")
        if budget is not None and think_min > budget:
            raise ConfigurationError(
                f"think_min={think_min} is above think_budget={budget}: the reasoning cannot "
                "be both at least and at most that long; lower think_min or raise the budget")
        think = True
    if budget is not None:
        if think is False and budget > 0:
            raise ConfigurationError(
                f"think_budget={budget} caps reasoning, but think=False turns it off: drop one "
                "of them (think_budget=0 also answers without reasoning)")
        if think is False:
            budget = None  # think=False and a zero budget say the same thing
        else:
            think = True
    asked = think  # as asked for (a budget, minimum or effort asks), before the default below
    if think is None and traits.reasoning:
        think = True
    # A hybrid model's thinking is switched per request by a server that can (Ollama's `think`
    # or the OpenAI-compatible servers' own ways): asked to think, it does.
    switchable = traits.hybrid and (support.hybrid_switch or support.think_switch)
    asked_but_cannot = think is True and not traits.reasoning and not switchable
    two_phase = asked_but_cannot and support.two_phase
    cannot_at_all = asked_but_cannot and not (support.two_phase or support.think_switch)
    notes = (NO_REASONING_NOTE,) if cannot_at_all else ()
    send_think = think if (support.think_switch or switchable) and not two_phase else None
    if switchable:
        send_think = asked  # a hybrid model left alone keeps its server's default
    # A budget, a minimum or checkpoints need to know where the reasoning starts: R1 gets the
    # forced opening then too.
    bounded = budget is not None or think_min is not None or bool(points)
    prefix = THINK_PREFIX if ((traits.force_think or (bounded and traits.r1))
                              and think is not False and support.force_prefix) else ""
    if cannot_at_all:
        # nothing reasons, so there is nothing to cut, extend, close or spend effort on
        budget, think_min, points, effort = None, None, (), None
    # A hybrid model asked to think is prompted into its reasoning block by its template
    # (V3.1's `<think>` after `<｜Assistant｜>`), so raw output starts inside it, as R1's does;
    # left to its server's default, its output says itself where reasoning is.
    inside = (traits.r1 and think is not False) or (traits.hybrid and asked is True)
    return ReasoningPlan(think=think, send_think=send_think, prefix=prefix, two_phase=two_phase,
                         starts_inside=inside, notes=notes,
                         budget=budget, think_min=think_min, max_extensions=max_extensions,
                         extension=extension, exits=points, hybrid=traits.hybrid,
                         effort=effort)


def wrap_up(messages: list[dict[str, str]]) -> str:
    """The wrap-up line for a cut, in the language of the last user turn."""
    last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    return WRAP_UP["zh" if is_chinese(str(last)) else "en"]


def budget_outcome(budget: int | None, hit: bool) -> str:
    """What a thinking budget did to one reply, in words: "thinking off (think_budget=0)",
    "reasoning cut at its budget", "reasoning within its budget of 24 tokens", or
    "" without one. A zero budget allows no reasoning at all, so nothing was cut (its replies
    still count as `budget_hit`: the budget, not the model, ended the reasoning)."""
    if budget == 0:
        return "thinking off (think_budget=0)"
    if hit:
        return "reasoning cut at its budget"  # how far, the reply's note says
    return f"reasoning within its budget of {budget} tokens" if budget is not None else ""


def budget_note(budget: int) -> str:
    """What a reply says when its reasoning was cut."""
    if budget == 0:
        return "think_budget=0: the model answered without reasoning (an empty think block)."
    return (f"The reasoning was cut at its budget of {budget} tokens (think_budget) and closed "
            "with a wrap-up line; the answer was written with that reasoning in context.")


def native_budget_note(budget: int, how: str) -> str:
    """What a reply says when its server enforced the thinking budget itself (`how`: the
    server and its field, e.g. "vLLM thinking_token_budget")."""
    return f"think_budget={budget} enforced by the server ({how})."


def native_fallback_note(budget: int, how: str, why: str) -> str:
    """What a reply says when the server's own budget could not be used and dskit's cut and
    continuation carried the budget out instead."""
    return (f"think_budget={budget}: the server did not take its own budget ({how}: {why}); "
            "dskit cut the reasoning and continued it itself.")


def answer_room(max_tokens: int) -> int:
    """Tokens of `max_tokens` kept for the answer after reasoning without a budget (0: none)."""
    return 0 if max_tokens < ROOM_FROM else min(ANSWER_ROOM, max_tokens // 4)


def room_note(thought: int, max_tokens: int) -> str:
    """What a reply says when its free reasoning was closed to leave the answer room."""
    return (f"The reasoning was closed after {thought} tokens with a wrap-up line, to leave "
            f"{max_tokens - thought} of max_tokens={max_tokens} for the answer; raise max_tokens "
            "(or set think_budget) for longer reasoning.")


def extension_word(plan: ReasoningPlan, messages: list[dict[str, str]]) -> str:
    """The text that replaces an early close: the plan's word, else "Wait" or "等等" by the
    language of the last user turn, after a blank line."""
    if plan.extension is not None:
        return f"\n\n{plan.extension}"
    last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    return f"\n\n{EXTENSION['zh' if is_chinese(str(last)) else 'en']}"


def extension_note(extensions: int, think_min: int) -> str:
    """What a reply says when its reasoning was extended."""
    times = "once" if extensions == 1 else f"{extensions} times"
    return (f"The reasoning closed before its minimum of {think_min} tokens (think_min) and was "
            f"extended {times} with an extension word (s1's budget forcing).")


def shown_after(shown: str, word: str) -> str:
    """What to show after reasoning already shown as `shown` so that it reads as `shown`
    without its trailing whitespace, then `word` (the newlines shown already are not
    repeated)."""
    gap = shown[len(shown.rstrip()):]
    return word[len(gap):] if gap and word.startswith(gap) else word
