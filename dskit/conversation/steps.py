"""Chats that take more than one request: structured answers and the tool loop.

- `format`: the answer is JSON, validated into `reply.parsed`. Reasoning runs first and free;
  only the answer is constrained. Where the backend can constrain the answer alone
  (`ReasoningSupport.format_after_reasoning`: llama.cpp in phases, Ollama >= 0.12.4) one request
  does it; elsewhere a reasoning reply takes two: reason without constraint, then the
  constrained answer with that reasoning in context. `retries=n` shows the validation errors
  to the model and asks again.
- `tools`: the model may ask for calls; only the registered functions (and the tools of the
  MCP servers given, started for this reply and closed after it) run, with arguments validated
  first; their results (or errors) go back to the model until it answers or `max_steps`
  requests were made.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from ..client import Client
from ..errors import ConfigurationError, StructuredOutputError, ToolsNotSupported
from ..reasoning.plan import tools_while_thinking
from ..reply import Reply
from ..structured import (
    FROM_REASONING,
    OutputFormat,
    add_to_question,
    language_of,
    last_question,
    with_instruction,
)
from ..tools import DEFAULT_TOOL_TIMEOUT, Toolbox, ToolCall
from .stream import ChatStream, Messages, build_request

TWO_STEP_NOTE = ("This backend would constrain the reasoning too, so the model reasoned first "
                 "and a second request asked for the structured answer with that reasoning in "
                 "context.")
REPEAT_NOTE = ("The model asked again for calls whose results it already had (small models "
               "loop like this): dskit listed the results and asked for the answer, without "
               "tools.")
#: The last turn of that request, in the language of the question.
ANSWER_FROM_RESULTS = {
    "en": "Tool results:\n{results}\nNow answer my question in one sentence, using these "
          "results. Do not call a tool again.",
    "zh": "工具结果：\n{results}\n现在请用一句话回答我的问题，使用这些结果，不要再调用工具。",
}
MAX_STEPS_NOTE = ("max_steps ({n}) reached while the model was still calling tools: raise "
                  "max_steps, or ask a question that needs fewer calls.")
MAX_STEPS_ANSWER_NOTE = ("max_steps ({n}) reached while the model was still calling tools: dskit "
                         "listed the {k} result{s} it had and asked for the answer, without "
                         "tools (raise max_steps if it needed more calls).")
NO_TOOLS_WHILE_THINKING_NOTE = ("tools: {model} calls tools only in non-thinking mode "
                                "(DeepSeek-V3.1), so it answered without thinking (think=False).")


def check_tool_support(client: Client, model: str) -> None:
    """Refuse tools for a model whose server lists its capabilities without `tools`."""
    caps = client.backend.model_details(model).get("capabilities")
    if isinstance(caps, list) and caps and "tools" not in caps:
        raise ToolsNotSupported(model, f"the {client.name} backend",
                                f"it reports only: {', '.join(map(str, caps))}")


def thinking_with_tools(client: Client, model: str, settings: dict[str, Any]
                        ) -> tuple[dict[str, Any], str]:
    """The settings of a tool loop and a note: a hybrid model that calls tools only without
    thinking (DeepSeek-V3.1: vLLM's reasoning-outputs docs, "DeepSeek-V3.1 tool calling is
    supported in non-thinking mode") runs with think=False when thinking was not asked for,
    and asking for it is refused; every other model keeps its settings (V3.2 and DeepSeek's
    platform call tools while thinking)."""
    if not client.traits(model).hybrid or \
            tools_while_thinking(model, client.backend.model_details(model)) is not False:
        return settings, ""
    asked = [f"{k}={settings[k]!r}" for k in ("think", "think_budget", "think_min", "effort")
             if settings.get(k) not in (None, False, 0)]
    if asked:
        raise ConfigurationError(
            f"{model} calls tools only in non-thinking mode (DeepSeek-V3.1), but "
            f"{', '.join(asked)} asks it to think: leave that out (or pass think=False) to use "
            "tools, or use DeepSeek-V3.2 or DeepSeek's platform, which call tools while thinking")
    return {**settings, "think": False}, NO_TOOLS_WHILE_THINKING_NOTE.format(model=model)


class _Steps:
    """One user call's requests, all with the same model and settings."""

    def __init__(self, client: Client, model: str, settings: dict[str, Any]) -> None:
        self.client, self.model, self.settings = client, model, settings

    def stream(self, messages: Messages, **changes: Any) -> ChatStream:
        """A stream for `messages`; `changes` set ChatRequest fields or override settings."""
        fields = {k: changes.pop(k) for k in ("format", "tools") if k in changes}
        request, notes = build_request(self.client, messages, self.model,
                                       **{**self.settings, **changes})
        return ChatStream(self.client, replace(request, **fields), notes)

    # --- structured answers ---------------------------------------------------------------

    def structured(self, messages: Messages, output: OutputFormat, retries: int) -> Reply:
        """The answer validated against `output`, asking again up to `retries` times."""
        attempt = 0
        while True:
            attempt += 1
            reply = self.structured_once(messages, output)
            try:
                reply.parsed = output.parse(reply.answer)
            except StructuredOutputError as exc:
                if attempt > retries:
                    raise StructuredOutputError(exc.raw, exc.errors, attempt, reply) from None
                messages = [*messages, {"role": "assistant", "content": reply.answer},
                            {"role": "user", "content": output.retry_message(
                                exc.errors, last_question(messages))}]
                continue
            if attempt > 1:
                reply.notes.append(f"The answer validated on attempt {attempt} (the earlier "
                                   "ones were shown their errors).")
            return reply

    def structured_once(self, messages: Messages, output: OutputFormat) -> Reply:
        """One structured answer: in one request where the backend allows it, else two."""
        first = self.stream(messages, format=output.wire)
        support = self.client.backend.reasoning_support()
        if not first.request.plan.think or support.format_after_reasoning:
            return first.collect()
        # Reason first, without the format; only the reasoning is needed from this request.
        probe = self.stream(messages)
        chunks = iter(probe)
        for chunk in chunks:
            if chunk.kind == "answer":
                break
        close = getattr(chunks, "close", None)  # a generator: ends the generation at once
        if close is not None:
            close()
        reasoning = probe.reply.thinking.strip()
        lang = language_of(last_question(messages))
        answer_messages = add_to_question(
            messages, FROM_REASONING[lang].format(reasoning=reasoning)) if reasoning else messages
        # The answer request does not reason: a budget or minimum of the reasoning is not its.
        reply = self.stream(answer_messages, format=output.wire, think=False, think_budget=None,
                            think_min=None, effort=None).collect()
        reply.thinking, reply.reasoned = reasoning, bool(reasoning) or reply.reasoned
        reply.notes = [*probe.reply.notes, *reply.notes, TWO_STEP_NOTE]
        reply.stats.total_time = (reply.stats.total_time or 0.0) + (
            probe.reply.stats.total_time or 0.0)
        reply.stats.ttft = probe.reply.stats.ttft
        return reply

    # --- tools ----------------------------------------------------------------------------

    def answer_from(self, messages: Messages, calls: list[ToolCall]) -> Reply:
        """Ask for the answer without tools, the results so far listed in the last turn."""
        results = "\n".join(f"{c.name}({_args(c.arguments)}) = {c.content()}"
                             for c in calls)
        nudge = ANSWER_FROM_RESULTS[language_of(last_question(messages))]
        return self.stream([*messages, {"role": "user", "content": nudge.format(
            results=results)}]).collect()

    def tool_loop(self, messages: Messages, box: Toolbox,
                  max_steps: int) -> tuple[Reply, Messages]:
        """Ask, run the calls the model wants, feed the results back; until an answer."""
        calls: list[ToolCall] = []
        seen: set[str] = set()
        reasoning: list[str] = []
        spent = 0.0
        requests = 0
        for step in range(1, max_steps + 1):
            requests += 1
            stream = self.stream(messages, tools=box.specs())
            reply = stream.collect()
            spent += reply.stats.total_time or 0.0
            if reply.thinking:
                reasoning.append(reply.thinking)
            asked = stream.done.tool_calls
            if not asked:
                break
            if all(_key(r.name, r.arguments) in seen for r in asked):
                reply = self.answer_from(messages, calls)
                requests += 1
                spent += reply.stats.total_time or 0.0
                reply.notes.append(REPEAT_NOTE)
                break
            if step == max_steps:
                # Small models keep calling with new arguments after they have what they need:
                # an answer from the results so far (LangChain's "generate" early stopping)
                # beats none, and done_reason still says the loop was cut.
                if any(c.ok for c in calls):
                    reply = self.answer_from(messages, calls)
                    requests += 1
                    spent += reply.stats.total_time or 0.0
                    reply.notes.append(MAX_STEPS_ANSWER_NOTE.format(
                        n=max_steps, k=len(calls), s="" if len(calls) == 1 else "s"))
                else:
                    reply.notes.append(MAX_STEPS_NOTE.format(n=max_steps))
                calls += [ToolCall(r.name, r.arguments, id=r.id,
                                   error="not run: max_steps reached") for r in asked]
                reply.done_reason = "max_steps"
                break
            ran = [box.run(r) for r in asked]
            for i, call in enumerate(ran):
                call.id = call.id or f"call_{step}_{i}"
                seen.add(_key(call.name, call.arguments))
            calls += ran
            # The turn's reasoning rides along: a server that needs it back in a tool loop
            # (DeepSeek's thinking mode) sends it; the others leave it out.
            thought = {"thinking": reply.thinking} if stream.request.plan.think else {}
            messages = [
                *messages,
                {"role": "assistant", "content": reply.answer, **thought, "tool_calls": [
                    {"id": c.id, "name": c.name, "arguments": c.arguments} for c in ran]},
                *({"role": "tool", "content": c.content(), "name": c.name,
                   "tool_call_id": c.id} for c in ran),
            ]
        reply.tool_calls = calls
        reply.thinking = "\n\n".join(reasoning)
        reply.stats.total_time = spent
        if requests > 1:
            reply.notes.append(f"{requests} requests: the model called tools {len(calls)} "
                               f"time{'s' if len(calls) != 1 else ''} before answering.")
        return reply, messages


def _key(name: str, arguments: Any) -> str:
    """A call's identity: its name and arguments, whatever their order."""
    return f"{name}:{json.dumps(arguments, sort_keys=True, default=str)}"


def _args(arguments: Any) -> str:
    if isinstance(arguments, dict):
        return ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return repr(arguments)


def run_steps(client: Client, messages: Messages, model: str | None, *, fmt: Any,
              tools: Any, max_steps: int = 5, retries: int = 0,
              tool_timeout: float = DEFAULT_TOOL_TIMEOUT, **settings: Any) -> Reply:
    """`ds.chat` with `format=` and/or `tools=` (see the module docstring)."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(f"retries must be a whole number >= 0, not {retries!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigurationError(f"max_steps must be a whole number >= 1, not {max_steps!r}")
    output = OutputFormat.of(fmt) if fmt is not None else None
    if retries and output is None:
        raise ConfigurationError("retries= asks again for a format: pass format= too")
    box = Toolbox(tools, tool_timeout) if tools is not None else None
    model = model or client.default_model
    steps = _Steps(client, model, settings)
    if output is not None:
        messages = with_instruction(messages, output)
    if box is None:
        assert output is not None
        return steps.structured(messages, output, retries)
    check_tool_support(client, model)
    steps.settings, tools_note = thinking_with_tools(client, model, settings)
    # MCP servers start here and close when the loop ends: at an answer, on an error, or on
    # KeyboardInterrupt (a notebook's Stop).
    with box:
        reply, messages = steps.tool_loop(messages, box, max_steps)
    if tools_note:
        reply.notes.append(tools_note)
    if output is None or reply.done_reason == "max_steps":
        return reply
    try:
        reply.parsed = output.parse(reply.answer)
        return reply
    except StructuredOutputError:
        # Constraining every step would forbid the calls: the answer is asked for again, with
        # the format and the tool results in context, and without tools.
        final = steps.structured(messages, output, retries)
    final.tool_calls = reply.tool_calls
    final.thinking = "\n\n".join(t for t in (reply.thinking, final.thinking) if t)
    final.notes = [*reply.notes, *final.notes]
    return final
