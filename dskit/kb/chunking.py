"""Splitting text segments into chunks with llama-index, keeping page and line positions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .loaders import Segment


@dataclass
class Piece:
    """A chunk of text and where it lies in its file."""

    text: str
    page: int | None
    line_start: int
    line_end: int

    @property
    def hash(self) -> str:
        """SHA-256 of the text (reuses embeddings of unchanged chunks)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=8)
def _splitter(chunk_size: int, chunk_overlap: int) -> Any:
    from llama_index.core.node_parser import SentenceSplitter

    # Its sentence regex knows Chinese punctuation (。！？), and it counts tokens with
    # tiktoken's vocabulary, which llama-index-core ships (no download).
    return SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                            include_metadata=False, include_prev_next_rel=False)


def split(segments: list[Segment], chunk_size: int, chunk_overlap: int) -> list[Piece]:
    """Chunks of every segment, in order, each with its page and 1-based line range."""
    from llama_index.core import Document

    splitter = _splitter(chunk_size, chunk_overlap)
    pieces: list[Piece] = []
    for seg in segments:
        text = seg.text
        nodes = splitter.get_nodes_from_documents([Document(text=text)])
        cursor = 0
        for node in nodes:
            body = node.get_content()
            if not body.strip():
                continue
            start = node.start_char_idx
            if start is None or text[start:start + len(body)] != body:
                found = text.find(body, max(0, cursor - len(body)))
                start = found if found >= 0 else cursor
            cursor = start + 1
            first = seg.line + text.count("\n", 0, start)
            last = first + body.count("\n")
            pieces.append(Piece(body, seg.page, first, last))
    return pieces


def location(page: int | None, line_start: int | None, line_end: int | None) -> str:
    """`p. 3` for PDF pages, `lines 10–24` for everything else."""
    if page is not None:
        return f"p. {page}"
    if line_start is None:
        return ""
    return f"line {line_start}" if line_start == line_end else f"lines {line_start}–{line_end}"
