"""Reasoning helpers: the streaming `<think>` splitter, `\\boxed{}` extraction, math directive."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

#: DeepSeek's recommended directive for mathematical problems.
MATH_DIRECTIVE = "Please reason step by step, and put your final answer within \\boxed{}."

Kind = Literal["thinking", "answer"]


@dataclass(frozen=True)
class Chunk:
    """A piece of streamed output, tagged as reasoning (`thinking`) or final `answer`."""

    kind: Kind
    text: str

    def __str__(self) -> str:
        return self.text


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class StrayTags:
    """Drops `<think>` tags written inside a reasoning, whatever the chunking: small models
    repeat the tag between their steps and at the end, and a reasoning block does not nest, so
    the tag is markup, not thought (it showed as a literal `<think>` in the reasoning)."""

    def __init__(self) -> None:
        self._held = ""  # a possible start of the tag, decided by the next piece

    def feed(self, text: str) -> str:
        """The reasoning in `text` that is now certain, without the tags."""
        text = self._held + text
        while OPEN_TAG in text:  # removing one may join the pieces of another
            text = text.replace(OPEN_TAG, "")
        keep = _partial_suffix(text, OPEN_TAG)
        self._held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def finish(self) -> str:
        """What was held back at the end of the reasoning (not a tag after all)."""
        rest, self._held = self._held, ""
        return rest


class ThinkSplitter:
    """Turn a token stream into `thinking` and `answer` chunks, whatever the chunking.

    Hand-written because no library does streaming tag splitting with a held-back partial tag.
    `start_in_thinking=True` is for outputs whose opening tag was injected by the chat template
    or forced as a prefix: text counts as reasoning until `</think>` (a repeated `<think>` at the
    very start is consumed). With `False`, reasoning is recognised only when the output opens
    with `<think>` (after whitespace); otherwise everything is answer. A `<think>` inside the
    reasoning is dropped (`StrayTags`), also from reasoning a backend gives apart (`apart`).
    """

    def __init__(self, start_in_thinking: bool = False) -> None:
        self._state: Literal["start", "thinking", "answer_start", "answer"] = "start"
        self._start_in_thinking = start_in_thinking
        self._buf = ""
        self._stray = StrayTags()  # in the raw reasoning
        self._given = StrayTags()  # in the reasoning a backend gives apart
        self.saw_reasoning = start_in_thinking
        self.opened = False  # whether a literal `<think>` was seen
        self.closed = False  # whether `</think>` was seen

    @property
    def in_thinking(self) -> bool:
        """True while the stream is inside the reasoning block."""
        if self._state == "start":
            return self._start_in_thinking
        return self._state == "thinking"

    @property
    def holding(self) -> bool:
        """Whether text fed is held back, not yet certain (a possible tag, leading space),
        whether fed as raw text or given apart."""
        return bool(self._buf) or bool(self._given._held)

    def feed(self, text: str) -> list[Chunk]:
        """Consume one piece of raw output and return the chunks that are now certain."""
        self._buf += text
        out: list[Chunk] = []
        while True:
            if self._state == "start":
                stripped = self._buf.lstrip()
                if not stripped or (OPEN_TAG.startswith(stripped) and stripped != OPEN_TAG):
                    return out  # undecided: wait for more text
                if stripped.startswith(OPEN_TAG):
                    self._buf = stripped[len(OPEN_TAG):]
                    self._state = "thinking"
                    self.saw_reasoning = self.opened = True
                elif self._start_in_thinking:
                    self._state = "thinking"
                else:
                    self._buf = stripped
                    self._state = "answer"
                continue
            if self._state == "thinking":
                idx = self._buf.find(CLOSE_TAG)
                if idx >= 0:
                    text = self._stray.feed(self._buf[:idx]) + self._stray.finish()
                    if text:
                        out.append(Chunk("thinking", text))
                    self._buf = self._buf[idx + len(CLOSE_TAG):]
                    self._state = "answer_start"
                    self.closed = True
                    continue
                keep = _partial_suffix(self._buf, CLOSE_TAG)
                emit = self._stray.feed(self._buf[: len(self._buf) - keep])
                self._buf = self._buf[len(self._buf) - keep:]
                if emit:
                    out.append(Chunk("thinking", emit))
                return out
            if self._state == "answer_start":
                self._buf = self._buf.lstrip()
                if not self._buf:
                    return out
                self._state = "answer"
                continue
            # answer: no tags are interpreted once the answer has begun
            if self._buf:
                out.append(Chunk("answer", self._buf))
                self._buf = ""
            return out

    def apart(self, kind: str, text: str) -> list[Chunk]:
        """Reasoning (`kind` "thinking") or answer (any other kind) a backend gives apart, not
        as text to split; stray tags are dropped from the reasoning."""
        if kind == "thinking":
            return [Chunk("thinking", self._given.feed(text))]
        held = self._given.finish()
        return [Chunk("thinking", held), Chunk("answer", text)] if held else \
            [Chunk("answer", text)]

    def finish(self) -> list[Chunk]:
        """Flush what is held back at the end of the stream."""
        given = self._given.finish()
        out = [Chunk("thinking", given)] if given else []
        rest, self._buf = self._buf, ""
        if self._state == "thinking" or (self._state == "start" and self._start_in_thinking):
            rest = self._stray.feed(rest) + self._stray.finish()
            return [*out, Chunk("thinking", rest)] if rest.strip() else out
        if not rest:
            return out
        if self._state == "start":
            return [*out, Chunk("answer", rest.lstrip())] if rest.strip() else out
        if self._state == "answer_start":
            return out
        return [*out, Chunk("answer", rest)]


def split_stream(pieces: Iterable[str], start_in_thinking: bool = False) -> Iterator[Chunk]:
    """Split an iterable of raw text pieces into tagged chunks."""
    splitter = ThinkSplitter(start_in_thinking)
    for piece in pieces:
        yield from splitter.feed(piece)
    yield from splitter.finish()


def split_think(text: str, start_in_thinking: bool = False) -> tuple[str, str]:
    """Split a complete output into `(thinking, answer)`, both stripped."""
    thinking: list[str] = []
    answer: list[str] = []
    for chunk in split_stream([text], start_in_thinking):
        (thinking if chunk.kind == "thinking" else answer).append(chunk.text)
    return "".join(thinking).strip(), "".join(answer).strip()


def math_prompt(question: str) -> str:
    """Append DeepSeek's math directive to a question."""
    return f"{question.rstrip()}\n{MATH_DIRECTIVE}"


def extract_boxed(text: str) -> str | None:
    """Return the content of the last `\\boxed{...}` (nested braces allowed), or None."""
    found = boxes(text)
    return found[-1][1] if found else None


def boxes(text: str) -> list[tuple[int, str]]:
    """Every closed `\\boxed{...}` in `text`, in order: (where it ends, its content)."""
    found: list[tuple[int, str]] = []
    start = 0
    while True:
        idx = text.find("\\boxed", start)
        if idx < 0:
            return found
        pos = idx + len("\\boxed")
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos >= len(text) or text[pos] != "{":
            start = pos
            continue
        depth = 0
        for end in range(pos, len(text)):
            ch = text[end]
            if ch == "\\" and end + 1 < len(text) and text[end + 1] in "{}":
                continue
            if ch == "{" and text[end - 1] != "\\":
                depth += 1
            elif ch == "}" and text[end - 1] != "\\":
                depth -= 1
                if depth == 0:
                    found.append((end + 1, text[pos + 1 : end].strip()))
                    start = end + 1
                    break
        else:
            return found  # unbalanced: the last box never closed
