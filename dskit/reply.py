"""`Reply`: the result of a chat as a plain value (its `Stats` are the seam's: backends/base)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .backends.base import LOW_CONFIDENCE, Stats, Token
from .confidence_view import confidence_html
from .display import reply_html
from .documents import page_html, reply_markdown, reply_section_html
from .errors import ConfigurationError
from .evals.anatomy import REFLECTION_MARKERS, Anatomy, anatomy
from .evals.confidence import PAPER_WINDOW, Confidence, measure
from .evals.grading import Verdict, is_missing, parse_number, verdict
from .reasoning.plan import budget_outcome
from .reasoning.think import Chunk, extract_boxed
from .tools import ToolCall
from .weights.files import STANDINS


@dataclass
class Source:
    """A passage a knowledge-base answer was given, cited in the answer as `[n]`."""

    n: int
    source: str
    location: str
    score: float
    text: str
    doc_id: str = ""

    def label(self) -> str:
        """`[n] file (location) · score`."""
        where = f" ({self.location})" if self.location else ""
        return f"[{self.n}] {self.source}{where} · score {self.score:.3f}"


#: A citation marker, `[n]`, in an answer built from numbered sources.
CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass
class Reply:
    """One model reply: reasoning apart from the answer, plus where it came from and stats."""

    thinking: str = ""
    answer: str = ""
    model: str = ""
    backend: str = ""
    done_reason: str | None = None
    stats: Stats = field(default_factory=Stats)
    notes: list[str] = field(default_factory=list)
    #: Whether the output contained a reasoning block at all.
    reasoned: bool = False
    #: Whether the stream ended while the model was still reasoning.
    unfinished_reasoning: bool = False
    #: The knowledge-base passages the answer was given (`kb.ask`); `[n]` cites `sources[n-1]`.
    sources: list[Source] = field(default_factory=list)
    #: Whether the answer is right, once `grade()` was called with the expected answer.
    verdict: Verdict | None = None
    #: Whether the reasoning was cut at its thinking budget (`think_budget`) before the answer.
    budget_hit: bool = False
    #: How many times reasoning that closed before its minimum (`think_min`) was extended.
    extensions: int = 0
    #: The validated answer when a `format` was asked for (a Pydantic model instance or JSON).
    parsed: Any = None
    #: The tool calls run on the way to this answer (`tools=`), in order.
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: The settings the request went out with (temperature, top_p, max_tokens, …).
    options: dict[str, Any] = field(default_factory=dict)
    #: The generated tokens with their log-probabilities and alternatives, reasoning and
    #: answer (`Token.phase`), when asked for with `logprobs=True`; see `confidence()`.
    tokens: list[Token] = field(default_factory=list)
    #: Why the answer is no real answer though it has text ("" when it may be one): an earlier
    #: answer repeated, a bare number or punctuation, a loop (`reasoning.answer_check`).
    degenerate: str = ""

    @property
    def citations(self) -> list[int]:
        """The source numbers cited as `[n]` in the answer that exist in `sources`, in order."""
        seen = dict.fromkeys(int(m) for m in CITATION.findall(self.answer))
        return [n for n in seen if 1 <= n <= len(self.sources)]

    @property
    def budget_outcome(self) -> str:
        """What the thinking budget did, in words ("thinking off (think_budget=0)", "reasoning
        cut at its budget", …); "" without a budget. Read this, not `budget_hit`,
        to tell a reader: a zero budget counts as hit though nothing was cut."""
        return budget_outcome(self.options.get("think_budget"), self.budget_hit)

    @property
    def no_answer(self) -> bool:
        """True when the model produced no answer (for example it stopped while reasoning)."""
        return not self.answer.strip()

    @property
    def status(self) -> str:
        """`ok`, or why there is no usable answer (a user's Stop is never blamed on the model)."""
        if self.done_reason == "stopped":
            if not self.no_answer:
                return "stopped by you"
            return ("stopped by you while it was still reasoning: no answer yet" if self.reasoned
                    else "stopped by you before any answer")
        if self.done_reason == "repetition":
            if self.no_answer:
                return "no answer: stopped repeating itself (loop guard)"
            return "looped: stopped repeating itself (loop guard)"
        if self.done_reason == LOW_CONFIDENCE:
            if self.no_answer:
                return "no answer: stopped early, its confidence fell below the threshold"
            return "stopped early: its confidence fell below the threshold"
        if self.unfinished_reasoning:
            return "no answer: stopped while still reasoning"
        if self.done_reason == "max_steps":
            if self.no_answer:
                return "no answer: max_steps reached while the model was still calling tools"
            return "answered from the tool results so far: max_steps reached while calling tools"
        if self.no_answer:
            return ("no answer after its reasoning" if self.reasoned
                    else "no answer: the model returned an empty answer")
        if self.degenerate:
            return f"no answer: {self.degenerate}"
        if self.done_reason == "length":
            return "truncated: hit the token limit"
        return "ok"

    @property
    def boxed(self) -> str | None:
        """The last `\\boxed{}` content of the answer, else of the reasoning."""
        return extract_boxed(self.answer) or extract_boxed(self.thinking)

    def grade(self, expected: Any, kind: str | None = None, grader: Any = None) -> Reply:
        """Set `verdict`: is the answer right? Returns the reply, so a cell shows both.

        `expected` is the answer (`7`, `"on the bed"`) or a `ds.prompts.Prompt`, which
        brings its own kind and grader (`reply.grade(ds.prompts.cup_puzzle("zh"))`).
        """
        if hasattr(expected, "expected") and hasattr(expected, "grader"):
            kind, grader, expected = expected.kind, expected.grader, expected.expected
        # "[1]" cites a source: it is not an answer of 1.
        answer = CITATION.sub(lambda m: "" if 1 <= int(m[1]) <= len(self.sources) else m[0],
                              self.answer)
        self.verdict = verdict(answer, expected, kind, grader, thinking=self.thinking)
        return self

    def anatomy(self, expected: Any, kind: str | None = None, grader: Any = None, *,
                markers: Sequence[str] = REFLECTION_MARKERS) -> Anatomy:
        """The reasoning measured against `expected` (an answer, or a `ds.prompts.Prompt` that
        brings its kind and grader, as in `grade`): candidate answers as the trace grows, where
        a right one first appears and where it settles, tokens after it, found-then-lost,
        reflection markers (`dskit.evals.anatomy`). Positions are thinking tokens, scaled to
        `stats.thinking_tokens` when the backend counted them."""
        if hasattr(expected, "expected") and hasattr(expected, "grader"):
            kind, grader, expected = expected.kind, expected.grader, expected.expected
        if kind is None:  # as `grade` decides it: a number is graded by value
            kind = "math" if not is_missing(expected) and parse_number(expected) is not None \
                else "text"
        return anatomy(self.thinking, self.answer, expected, kind=kind, grader=grader,
                       thinking_tokens=self.stats.thinking_tokens, markers=markers)

    def confidence(self, *, window: int = PAPER_WINDOW, tail: int = PAPER_WINDOW,
                   phase: str | None = None) -> Confidence | None:
        """DeepConf's confidence measures over the reply's tokens (`logprobs=True`): mean,
        lowest and bottom-10 % group confidence over `window`-token groups, tail over the
        last `tail` tokens (`dskit.evals.confidence`); only the "thinking" or "answer"
        tokens with `phase`. None when the reply has no tokens."""
        if not self.tokens:
            if "top_logprobs" not in self.options:
                raise ConfigurationError("this reply has no log-probabilities: ask with "
                                         "logprobs=True (ds.chat, Conversation, compare)")
            return None
        return measure(self.tokens, window=window, tail=tail, phase=phase)

    def confidence_html(self, *, window: int = 32) -> str:
        """The reply as HTML with each token shaded by its confidence, alternatives on hover
        and the least confident `window`-token stretch marked (`dskit.display`)."""
        return confidence_html(self, window=window)

    def add(self, chunk: Chunk) -> None:
        """Append a streamed chunk to the right part."""
        if chunk.kind == "thinking":
            self.thinking += chunk.text
            self.reasoned = True
        else:
            self.answer += chunk.text

    def footer(self, with_status: bool = False) -> str:
        """`backend:model · 42.1 tok/s · …`; led by the status when asked and it is not ok."""
        where = f"{self.backend}:{self.model}" if self.backend else self.model
        if self.model in STANDINS:
            where += " (a stand-in, not DeepSeek)"
        parts = [self.status if with_status and self.status != "ok" else "", where,
                 self.stats.summary(), self.budget_outcome if self.budget_hit else "",
                 f"reasoning extended ×{self.extensions}" if self.extensions else ""]
        return " · ".join(p for p in parts if p)

    def text(self, show_thinking: bool = True) -> str:
        """Plain-text rendering for terminals and logs."""
        lines: list[str] = []
        if self.tool_calls:
            lines += ["[tool calls]", *(f"  {c.text()}" for c in self.tool_calls), ""]
        if show_thinking and self.thinking.strip():
            lines += ["[thinking]", self.thinking.strip(), "[/thinking]", ""]
        elif self.reasoned and show_thinking:
            lines += ["[thinking: empty]", ""]
        if self.no_answer:
            lines.append(f"[{self.status}]")
        else:
            lines.append(self.answer.strip())
            if self.status != "ok":
                lines.append(f"[{self.status}]")
        if self.verdict is not None:
            lines.append(str(self.verdict))
        if self.sources:
            lines += ["", "Sources:"] + [f"  {s.label()}" for s in self.sources]
        lines.extend(f"[note] {n}" for n in self.notes)
        lines.append(f"-- {self.footer()}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The reply as Markdown: model, backend, options and stats in a header table, the
        reasoning folded in `<details>`, the answer as Markdown (its raw HTML shown as text)."""
        return reply_markdown(self, f"{self.model} ({self.backend})" if self.backend
                              else self.model)

    def to_html(self) -> str:
        """The reply as a standalone, self-contained HTML page (nothing in it can run)."""
        return page_html(f"dskit · {self.model}", reply_section_html(self, self.model, level=1))

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return reply_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())
