"""Reasoning: the `<think>` splitter and `\\boxed{}` (`think`, whose names are re-exported
here: `ds.reasoning.split_stream`), whether and how a reply reasons and its thinking budget
(`plan`), and degenerate repetition (`loop_guard`)."""

from .think import (
    CLOSE_TAG,
    MATH_DIRECTIVE,
    OPEN_TAG,
    Chunk,
    ThinkSplitter,
    extract_boxed,
    math_prompt,
    split_stream,
    split_think,
)

__all__ = ["CLOSE_TAG", "MATH_DIRECTIVE", "OPEN_TAG", "Chunk", "ThinkSplitter", "extract_boxed",
           "math_prompt", "split_stream", "split_think"]
