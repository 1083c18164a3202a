"""The streaming <think> splitter, \\boxed{} extraction and the math directive."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dskit.reasoning.think import (
    MATH_DIRECTIVE,
    Chunk,
    ThinkSplitter,
    extract_boxed,
    math_prompt,
    split_stream,
    split_think,
)

# Text that contains no complete tag (but may contain '<', '/', 'think' fragments), incl. Chinese.
free_text = st.lists(
    st.sampled_from([*"ab <>/thinkTK\n 推理答案。,!?", "</", "<th", "think>", "</think", "<think"]),
    max_size=30,
).map("".join).filter(lambda s: "<think>" not in s and "</think>" not in s)


def chunkings(text: str):
    """Strategy: every way to cut `text` into consecutive pieces."""
    return st.lists(st.integers(0, len(text)), max_size=12).map(
        lambda cuts: [text[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(text)],
                                                strict=True)]
    )


def joined(chunks: list[Chunk], kind: str) -> str:
    return "".join(c.text for c in chunks if c.kind == kind)


def run(pieces: list[str], start_in_thinking: bool = False) -> list[Chunk]:
    return list(split_stream(pieces, start_in_thinking))


@settings(max_examples=300, deadline=None)
@given(st.data(), free_text, free_text, st.sampled_from(["", " ", "\n", "\n\n "]))
def test_tagged_output_any_chunking(data, thinking, answer, lead):
    text = f"{lead}<think>{thinking}</think>{answer}"
    pieces = data.draw(chunkings(text))
    out = run(pieces)
    assert joined(out, "thinking") == thinking
    assert joined(out, "answer") == answer.lstrip()


@settings(max_examples=300, deadline=None)
@given(st.data(), free_text, free_text)
def test_injected_opening_tag_any_chunking(data, thinking, answer):
    # The chat template injected "<think>\n": the output only closes the block.
    text = f"{thinking}</think>{answer}"
    out = run(data.draw(chunkings(text)), start_in_thinking=True)
    assert joined(out, "thinking") == thinking
    assert joined(out, "answer") == answer.lstrip()


@settings(max_examples=200, deadline=None)
@given(st.data(), free_text)
def test_plain_output_is_all_answer(data, answer):
    text = answer
    out = run(data.draw(chunkings(text)))
    assert joined(out, "thinking") == ""
    assert joined(out, "answer") == answer.lstrip()


@settings(max_examples=200, deadline=None)
@given(st.data(), free_text)
def test_stream_ending_inside_reasoning(data, thinking):
    text = "<think>" + thinking
    out = run(data.draw(chunkings(text)))
    assert joined(out, "answer") == ""
    assert joined(out, "thinking").strip() == thinking.strip()


def test_every_cut_position_of_both_tags():
    text = "<think>\n先想一想 step</think>\n\n答案是 42"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            out = run([text[:i], text[i:j], text[j:]])
            assert joined(out, "thinking") == "\n先想一想 step"
            assert joined(out, "answer") == "答案是 42"


def test_one_character_at_a_time():
    text = "<think>a < b and </thin is not a tag</think>ok"
    out = run(list(text))
    assert joined(out, "thinking") == "a < b and </thin is not a tag"
    assert joined(out, "answer") == "ok"


def test_empty_think_block():
    assert split_think("<think>\n\n</think>\n\nHello") == ("", "Hello")
    s = ThinkSplitter()
    out = s.feed("<think>\n\n</think>") + s.feed("\n\nHello") + s.finish()
    assert joined(out, "answer") == "Hello"
    assert s.saw_reasoning and s.closed


def test_injected_tag_with_model_repeating_it():
    assert split_think("<think>\nplan</think>done", start_in_thinking=True) == ("plan", "done")
    assert split_think("plan</think>done", start_in_thinking=True) == ("plan", "done")


def test_unclosed_reasoning_state():
    s = ThinkSplitter(start_in_thinking=True)
    out = s.feed("still thinking about 推理") + s.finish()
    assert joined(out, "thinking") == "still thinking about 推理"
    assert s.in_thinking and not s.closed


def test_partial_tag_is_held_back_then_released():
    s = ThinkSplitter()
    assert s.feed("<thi") == []  # could still become <think>
    out = s.feed("s is not a tag")
    assert joined(out, "answer") == "<this is not a tag"
    s = ThinkSplitter(start_in_thinking=True)
    assert joined(s.feed("x </thi"), "thinking") == "x "
    assert joined(s.feed("nk>y") + s.finish(), "answer") == "y"


# What the 0.5B stand-in wrote when asked to reason (issue 27: notebook 05 showed the last tag).
STRAY = "明有苹果 5 个。\n<think>\n小明吃了 2 个。\n<think>\n答案是 3。\n<think>"
WITHOUT = "明有苹果 5 个。\n\n小明吃了 2 个。\n\n答案是 3。\n"


def test_stray_open_tags_inside_reasoning_are_dropped_at_every_cut():
    for i in range(len(STRAY) + 1):
        for j in range(i, len(STRAY) + 1):
            pieces = [STRAY[:i], STRAY[i:j], STRAY[j:]]
            out = run([*pieces, "</think>3 个"], start_in_thinking=True)
            assert joined(out, "thinking") == WITHOUT
            assert joined(out, "answer") == "3 个"
            given = ThinkSplitter()  # the same reasoning given apart by a backend
            out = [c for p in pieces for c in given.apart("thinking", p)]
            out += given.apart("answer", "3 个") + given.finish()
            assert joined(out, "thinking") == WITHOUT and "<think>" not in joined(out, "thinking")
            assert joined(out, "answer") == "3 个"


def test_a_partial_tag_at_the_end_of_reasoning_given_apart_is_kept_before_the_answer():
    s = ThinkSplitter()
    assert joined(s.apart("thinking", "a <thi"), "thinking") == "a "
    out = s.apart("answer", "ok")
    assert [(c.kind, c.text) for c in out] == [("thinking", "<thi"), ("answer", "ok")]
    s = ThinkSplitter()
    out = s.apart("thinking", "a <th") + s.finish()
    assert joined(out, "thinking") == "a <th"


def test_tags_after_the_answer_started_are_literal():
    assert split_think("Use <think> tags like </think> this") == (
        "", "Use <think> tags like </think> this")


def test_whitespace_only_stream():
    assert run(["  ", "\n"]) == []
    assert run([]) == []


def test_extract_boxed_nested_and_last():
    assert extract_boxed(r"so \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert extract_boxed(r"\boxed{1} then \boxed{ {a}+{b} }") == "{a}+{b}"
    assert extract_boxed(r"\boxed {7}") == "7"
    assert extract_boxed("no box") is None
    assert extract_boxed(r"\boxed{unclosed") is None
    assert extract_boxed(r"\boxed{\{x\}}") == r"\{x\}"
    assert extract_boxed(r"答案是 \boxed{五}") == "五"


def test_math_prompt():
    assert math_prompt("What is 2+2? ") == "What is 2+2?\n" + MATH_DIRECTIVE
    assert MATH_DIRECTIVE.endswith("within \\boxed{}.")
