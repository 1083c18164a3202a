"""Splitting text segments into chunks of at most `chunk_size` word pieces, with overlap,
keeping page and line positions.

Hand-written rather than llama-index's `SentenceSplitter` for memory: that splitter imports
llama-index (about 60 MiB), counts with tiktoken (about 40 MiB) and splits sentences with
nltk, which brings scipy and scikit-learn (about 80 MiB); on Binder's 2 GB that was a quarter
of a kernel that had chatted and searched a knowledge base (docs/benchmarks-journal.md,
"Kernel memory with a knowledge base").
Counting the embedding model's own word pieces is also what the limit is about: MiniLM cuts
every input after 256 of them, and every CJK character is one piece.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..language import CJK
from .loaders import Segment

#: Word pieces of each text, without the model's [CLS]/[SEP] (chunks are cut from one text:
#: pieces of neighbouring parts add up).
Counter = Callable[[Sequence[str]], list[int]]

# Where a sentence ends: line breaks, Chinese/Japanese enders (with closing quotes or brackets),
# and . ! ? ; before white space (so 3.5 and e.g. stay whole).
_SENTENCE_END = re.compile(r"\n+|[。！？；…]+[”’」』）)]*|[.!?;]+[\"')\]]*(?=\s)")
# Where a sentence too long for one chunk may be cut next: after commas, colons and spaces.
_CLAUSE_END = re.compile(r"[，、,：]+|\s+")
_WORD = re.compile(r"\w+|[^\w\s]")


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


def estimate_pieces(texts: Sequence[str]) -> list[int]:
    """A WordPiece-like count without a model: a CJK character or a punctuation mark is one
    piece, a word one piece per six characters (for embedders whose tokenizer dskit lacks)."""
    out = []
    for text in texts:
        n = 0
        for word in _WORD.findall(text):
            cjk = len(CJK.findall(word))
            rest = len(word) - cjk
            n += cjk + (math.ceil(rest / 6) if rest else 0)
        out.append(n)
    return out


def _cut(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    """[start, end) cut after each match of `pattern`, white space kept with the part before."""
    spans, begin = [], start
    for m in pattern.finditer(text, start, end):
        stop = m.end()
        while stop < end and text[stop].isspace():
            stop += 1
        if stop > begin:
            spans.append((begin, stop))
            begin = stop
    if begin < end:
        spans.append((begin, end))
    return spans


def _units(text: str, limit: int, count: Counter) -> list[tuple[int, int, int]]:
    """(start, end, pieces) of sentences, each cut into clauses, then into runs of characters,
    until every unit fits in `limit` pieces."""
    spans = _cut(text, 0, len(text), _SENTENCE_END)
    counts = count([text[a:b] for a, b in spans])
    out: list[tuple[int, int, int]] = []
    for (a, b), n in zip(spans, counts, strict=True):
        if n <= limit:
            out.append((a, b, n))
            continue
        parts = _cut(text, a, b, _CLAUSE_END)
        if len(parts) == 1:  # no place to cut: runs of characters, sized by the count
            size = max(1, (b - a) * limit // (2 * n))
            parts = [(i, min(i + size, b)) for i in range(a, b, size)]
        out += _units_of(text, parts, limit, count)
    return out


def _units_of(text: str, parts: list[tuple[int, int]], limit: int,
              count: Counter) -> list[tuple[int, int, int]]:
    """Counted `parts`, any still over `limit` cut again (into clauses or characters)."""
    out: list[tuple[int, int, int]] = []
    for (a, b), n in zip(parts, count([text[a:b] for a, b in parts]), strict=True):
        if n <= limit or b - a == 1:
            out.append((a, b, n))
        else:
            size = max(1, (b - a) * limit // (2 * n))
            out += _units_of(text, [(i, min(i + size, b)) for i in range(a, b, size)], limit,
                             count)
    return out


def spans(text: str, chunk_size: int, chunk_overlap: int,
          count: Counter = estimate_pieces) -> list[tuple[int, int]]:
    """(start, end) of each chunk of `text`: whole sentences while they fit in `chunk_size`
    pieces, up to the last paragraph end when that keeps the chunk at least half full; a chunk
    cut inside a paragraph is followed by one starting with its last sentences that fit in
    `chunk_overlap` pieces. Every character of `text` lies in some chunk."""
    units = _units(text, chunk_size, count)
    chunks: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        j, used = i, 0
        ends: list[tuple[int, int]] = []  # (j, used) after each unit that ends a paragraph
        while j < len(units) and (j == i or used + units[j][2] <= chunk_size):
            used += units[j][2]
            j += 1
            if _ends_paragraph(text, units[j - 1][1]):
                ends.append((j, used))
        if j < len(units) and ends and ends[-1][1] * 2 >= chunk_size:
            # Cut at the last paragraph end when that keeps the chunk at least half full: one
            # topic per chunk ranks better than the tail of the next topic cut mid-way.
            j = ends[-1][0]
            chunks.append((units[i][0], units[j - 1][1]))
            i = j  # a chunk that ends a paragraph needs no overlap with the next one
            continue
        chunks.append((units[i][0], units[j - 1][1]))
        if j == len(units):
            break
        # The next chunk repeats the tail of this one, as far as the overlap allows, and
        # always moves on by at least one unit.
        back, kept = j, 0
        while back - 1 > i and kept + units[back - 1][2] <= chunk_overlap:
            back -= 1
            kept += units[back][2]
        i = back
    return chunks


def _ends_paragraph(text: str, end: int) -> bool:
    """Whether the unit ending at `end` closes a paragraph: a blank line ends it (units keep
    their trailing white space) or the text ends."""
    if end >= len(text):
        return True
    newlines, i = 0, end - 1
    while i >= 0 and text[i].isspace():  # only the trailing white space: no copy of the text
        newlines += text[i] == "\n"
        i -= 1
    return newlines >= 2


def split(segments: list[Segment], chunk_size: int, chunk_overlap: int,
          count: Counter = estimate_pieces) -> list[Piece]:
    """Chunks of every segment, in order, each with its page and 1-based line range."""
    pieces: list[Piece] = []
    for seg in segments:
        text = seg.text
        for start, end in spans(text, chunk_size, chunk_overlap, count):
            body = text[start:end]
            lead = len(body) - len(body.lstrip())
            body = body.strip()
            if not body:
                continue
            first = seg.line + text.count("\n", 0, start + lead)
            pieces.append(Piece(body, seg.page, first, first + body.count("\n")))
    return pieces


def location(page: int | None, line_start: int | None, line_end: int | None) -> str:
    """`p. 3` for PDF pages, `lines 10–24` for everything else."""
    if page is not None:
        return f"p. {page}"
    if line_start is None:
        return ""
    return f"line {line_start}" if line_start == line_end else f"lines {line_start}–{line_end}"
