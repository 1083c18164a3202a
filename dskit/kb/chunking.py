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
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..language import CJK
from .loaders import Segment

#: Word pieces of each text, without the model's [CLS]/[SEP] (chunks are cut from one text:
#: pieces of neighbouring parts add up).
Counter = Callable[[Sequence[str]], list[int]]

# Where a sentence ends: line breaks, Chinese/Japanese enders (with closing quotes or brackets),
# and . ! ? ; before white space (so 3.5 and e.g. stay whole). The look-behind makes a run of
# enders a match only from its first: the regex engine tried again from every dot of a run not
# followed by white space, so 0.5 MB of "." took minutes.
_SENTENCE_END = re.compile(r"\n+|[。！？；…]+[”’」』）)]*|(?<![.!?;])[.!?;]+[\"')\]]*(?=\s)")
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
        for match in _WORD.finditer(text):  # not findall: a list of every word of a long text
            word = match.group()
            cjk = len(word) - len(CJK.sub("", word))
            rest = len(word) - cjk
            n += cjk + (math.ceil(rest / 6) if rest else 0)
        out.append(n)
    return out


#: Parts are counted this many at a time: the strings of one batch are alive at once, not those
#: of a whole file (a 4 MB row of cells held 430 MB as one list of clauses).
_BATCH = 1024
#: A part of more than this many characters per allowed piece is not counted whole but a
#: clause (else a run of characters) at a time: counting 4 MB without a full stop held all its
#: words, or token ids, at once (100 MB here; a tokenizer's ids take more).
_LONG = 32

Unit = tuple[int, int, int]  # start, end, word pieces


def _cut(text: str, start: int, end: int, pattern: re.Pattern[str]
         ) -> Iterator[tuple[int, int]]:
    """[start, end) cut after each match of `pattern`, white space kept with the part before."""
    begin = start
    for m in pattern.finditer(text, start, end):
        stop = m.end()
        while stop < end and text[stop].isspace():
            stop += 1
        if stop > begin:
            yield begin, stop
            begin = stop
    if begin < end:
        yield begin, end


def _counted(text: str, parts: Iterable[tuple[int, int]], count: Counter, longest: int
             ) -> Iterator[Unit]:
    """`parts` with their word pieces, counted a batch at a time; -1 for a part longer than
    `longest` characters (not counted)."""
    for batch in _batched(parts):
        counted = [(a, b) for a, b in batch if b - a <= longest]
        pieces = dict(zip(counted, count([text[a:b] for a, b in counted]), strict=True))
        yield from ((a, b, pieces.get((a, b), -1)) for a, b in batch)


def _batched(parts: Iterable[tuple[int, int]]) -> Iterator[tuple[tuple[int, int], ...]]:
    """Tuples of `_BATCH` parts (`itertools.batched` is Python 3.12's)."""
    it = iter(parts)
    while batch := tuple(itertools.islice(it, _BATCH)):
        yield batch


def _units(text: str, limit: int, count: Counter) -> Iterator[Unit]:
    """(start, end, pieces) of sentences, each cut into clauses, then into runs of characters,
    until every unit fits in `limit` pieces; made as they are needed."""
    longest = _LONG * limit
    for a, b, n in _counted(text, _cut(text, 0, len(text), _SENTENCE_END), count, longest):
        if 0 <= n <= limit:
            yield a, b, n
            continue
        clauses = _cut(text, a, b, _CLAUSE_END)
        first = next(clauses)
        second = next(clauses, None)
        if second is not None:
            parts: Iterable[tuple[int, int]] = itertools.chain((first, second), clauses)
        else:  # no place to cut: runs of characters, sized by the count
            parts = _runs(a, b, _run_size(a, b, limit, n))
        units = _units_of(text, parts, limit, count)
        if n >= 0:
            yield from units
            continue
        # Not counted whole (too long to): one unit still, if its parts fit in the limit.
        held: list[Unit] = []
        total = 0
        for unit in units:
            held.append(unit)
            total += unit[2]
            if total > limit:
                yield from held
                yield from units
                break
        else:
            yield a, b, total


def _run_size(a: int, b: int, limit: int, pieces: int) -> int:
    """Characters per run for about half `limit` pieces a run (`pieces` -1: not counted)."""
    if pieces < 0:
        return _LONG * limit // 2
    return max(1, (b - a) * limit // (2 * pieces))


def _runs(a: int, b: int, size: int) -> Iterator[tuple[int, int]]:
    """[a, b) cut into runs of `size` characters."""
    return ((i, min(i + size, b)) for i in range(a, b, size))


def _units_of(text: str, parts: Iterable[tuple[int, int]], limit: int,
              count: Counter) -> Iterator[Unit]:
    """Counted `parts`, any still over `limit` (or too long to count) cut again into runs of
    characters."""
    for a, b, n in _counted(text, parts, count, _LONG * limit):
        if 0 <= n <= limit or b - a == 1:
            yield a, b, n
        else:
            yield from _units_of(text, _runs(a, b, _run_size(a, b, limit, n)), limit, count)


def spans(text: str, chunk_size: int, chunk_overlap: int,
          count: Counter = estimate_pieces) -> list[tuple[int, int]]:
    """(start, end) of each chunk of `text`: whole sentences while they fit in `chunk_size`
    pieces, up to the last paragraph end when that keeps the chunk at least half full; a chunk
    cut inside a paragraph is followed by one starting with its last sentences that fit in
    `chunk_overlap` pieces. Every character of `text` lies in some chunk.

    Units are read as they are needed and dropped once no chunk can start before them, so
    memory holds one chunk's units whatever the size of the text.
    """
    source = _units(text, chunk_size, count)
    window: list[Unit] = []  # the units from the current chunk's first on

    def unit(k: int) -> Unit | None:
        """window[k], read from the source when needed; None past the last unit."""
        while len(window) <= k:
            nxt = next(source, None)
            if nxt is None:
                return None
            window.append(nxt)
        return window[k]

    chunks: list[tuple[int, int]] = []
    while unit(0) is not None:
        j, used = 0, 0
        ends: list[tuple[int, int]] = []  # (j, used) after each unit that ends a paragraph
        while (u := unit(j)) is not None and (j == 0 or used + u[2] <= chunk_size):
            used += u[2]
            j += 1
            if _ends_paragraph(text, u[1]):
                ends.append((j, used))
        more = unit(j) is not None
        if more and ends and ends[-1][1] * 2 >= chunk_size:
            # Cut at the last paragraph end when that keeps the chunk at least half full: one
            # topic per chunk ranks better than the tail of the next topic cut mid-way.
            j = ends[-1][0]
            chunks.append((window[0][0], window[j - 1][1]))
            del window[:j]  # a chunk that ends a paragraph needs no overlap with the next one
            continue
        chunks.append((window[0][0], window[j - 1][1]))
        if not more:
            break
        # The next chunk repeats the tail of this one, as far as the overlap allows, and
        # always moves on by at least one unit.
        back, kept = j, 0
        while back - 1 > 0 and kept + window[back - 1][2] <= chunk_overlap:
            back -= 1
            kept += window[back][2]
        del window[:back]
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
        # Line numbers counted on from the previous chunk (back over an overlap): counting
        # from the start of the text for every chunk made a 20 MB file quadratic.
        at, line = 0, seg.line
        for start, end in spans(text, chunk_size, chunk_overlap, count):
            body = text[start:end]
            lead = len(body) - len(body.lstrip())
            body = body.strip()
            if not body:
                continue
            begin = start + lead
            line += text.count("\n", at, begin) if begin >= at else -text.count("\n", begin, at)
            at = begin
            pieces.append(Piece(body, seg.page, line, line + body.count("\n")))
    return pieces


def location(page: int | None, line_start: int | None, line_end: int | None) -> str:
    """`p. 3` for PDF pages, `lines 10–24` for everything else."""
    if page is not None:
        return f"p. {page}"
    if line_start is None:
        return ""
    return f"line {line_start}" if line_start == line_end else f"lines {line_start}–{line_end}"
