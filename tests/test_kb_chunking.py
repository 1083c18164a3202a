"""dskit's splitter: chunk sizes in MiniLM word pieces, overlap, no text lost, positions."""

from __future__ import annotations

import re
from importlib.resources import files
from itertools import pairwise
from pathlib import Path

import pytest

from dskit.embeddings import LocalEmbedder
from dskit.kb import chunking, loaders

ENGLISH = (Path(str(files("dskit") / "data" / "sample_kb")) / "sourdough.md").read_text("utf-8")
CHINESE = (Path(str(files("dskit") / "data" / "sample_kb")) / "茶叶笔记.txt").read_text("utf-8")
MIXED = "Ollama 默认监听 11434 端口。The model is qwen2.5-coder:0.5b, it runs on llama.cpp.\n" * 30
NO_BREAKS = "知识库检索" * 400  # 2,000 CJK characters without punctuation or spaces


@pytest.fixture(scope="module")
def pieces() -> chunking.Counter:
    """MiniLM's word pieces, without [CLS] and [SEP], from the real model."""
    emb = LocalEmbedder()
    return lambda texts: [n - 2 for n in emb.count_tokens(texts)]


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.model
@pytest.mark.parametrize("text", [ENGLISH, CHINESE, MIXED, NO_BREAKS],
                         ids=["english", "chinese", "mixed", "no-breaks"])
@pytest.mark.parametrize(("size", "overlap"), [(200, 25), (64, 8), (40, 0)])
def test_chunks_fit_and_cover_the_text(text: str, size: int, overlap: int,
                                       pieces: chunking.Counter) -> None:
    spans = chunking.spans(text, size, overlap, pieces)
    counts = pieces([text[a:b] for a, b in spans])
    assert max(counts) <= size, counts
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (_, end), (start, _) in pairwise(spans):
        assert start <= end  # consecutive or overlapping: nothing between two chunks is lost
    assert len(spans) > 1 or counts[0] <= size


@pytest.mark.model
def test_chinese_chunks_are_counted_per_character(pieces: chunking.Counter) -> None:
    spans = chunking.spans(NO_BREAKS, 200, 0, pieces)
    assert len(spans) == 10  # 2,000 characters, one piece each
    assert all(b - a == 200 for a, b in spans)


@pytest.mark.model
def test_overlap_repeats_whole_sentences_within_the_limit(pieces: chunking.Counter) -> None:
    text = "".join(f"第{i}句话讲的是茶叶。" for i in range(60))
    spans = chunking.spans(text, 64, 16, pieces)
    for (a0, b0), (a1, b1) in pairwise(spans):
        shared = text[a1:b0]
        assert shared, "the next chunk starts inside the previous one"
        assert shared.endswith("。") and pieces([shared])[0] <= 16
        assert a1 > a0 and b1 > b0
    no_overlap = chunking.spans(text, 64, 0, pieces)
    assert all(b == a for (_, b), (a, _) in pairwise(no_overlap))


@pytest.mark.model
def test_a_chunk_ends_at_a_paragraph_end_when_it_is_at_least_half_full(
        pieces: chunking.Counter) -> None:
    """One topic per chunk: the tea note's Longjing and Pu'er paragraphs fill more than half
    of a 200-piece chunk, so the chunk stops before the oolong paragraph instead of taking its
    first sentences, and the next chunk starts at that paragraph with no overlap."""
    spans = chunking.spans(CHINESE, 200, 25, pieces)
    first, second = (CHINESE[a:b] for a, b in spans[:2])
    assert first.rstrip().endswith("不要放进冰箱。") and "乌龙" not in first
    assert second.startswith("乌龙茶介于绿茶和红茶之间")
    assert spans[1][0] == spans[0][1]
    # A paragraph end before the half stays inside the chunk: it is filled as before, with the
    # overlap, rather than left a quarter full.
    short = "第一段很短。\n\n" + "".join(f"第{i}句话讲的是茶叶。" for i in range(40))
    halves = chunking.spans(short, 64, 16, pieces)
    assert short[halves[0][0]:halves[0][1]].count("句话") > 0
    assert halves[1][0] < halves[0][1]  # overlapping: cut inside a paragraph
    # English too: a blank line between two paragraphs that do not fit together.
    para = " ".join(f"Sentence {i} is about sourdough." for i in range(8))
    text = f"{para}\n\n{para.replace('sourdough', 'tomatoes')}"
    cut = chunking.spans(text, pieces([para])[0] + 20, 10, pieces)
    assert [text[a:b].strip() for a, b in cut] == [para, para.replace("sourdough", "tomatoes")]


@pytest.mark.model
def test_split_keeps_lines_and_pages(pieces: chunking.Counter) -> None:
    segments = [loaders.Segment(CHINESE, None, 1), loaders.Segment(ENGLISH, 3, 1)]
    out = chunking.split(segments, 120, 15, pieces)
    assert {p.page for p in out} == {None, 3}
    lines = CHINESE.splitlines()
    for p in (p for p in out if p.page is None):
        first = p.text.splitlines()[0]
        assert first in lines[p.line_start - 1]
        assert p.line_end - p.line_start == p.text.count("\n")
    text = "".join(_squeeze(p.text) for p in out if p.page is None)
    for line in lines:  # every line of the file is in some chunk
        assert _squeeze(line) in text


def test_estimate_without_a_model() -> None:
    assert chunking.estimate_pieces(["知识库", "hello, world", ""]) == [3, 3, 0]
    spans = chunking.spans(ENGLISH + CHINESE, 100, 10)
    assert max(chunking.estimate_pieces([(ENGLISH + CHINESE)[a:b] for a, b in spans])) <= 100
