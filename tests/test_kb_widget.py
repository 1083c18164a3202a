"""The knowledge-base widget's handlers, driven as a browser would, with real models."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

import dskit as ds
from dskit.kb import KnowledgeBase
from dskit.widgets.kb_widget import KnowledgeBaseWidget, safe_upload_name


def upload(name: str, data: bytes) -> dict:
    return {"name": name, "type": "", "size": len(data), "content": memoryview(data),
            "last_modified": datetime.now(timezone.utc)}


def test_upload_search_ask(tmp_path: Path, embedded_client: ds.Client) -> None:
    w = ds.widgets.knowledge_base(KnowledgeBase("w", data_dir=tmp_path), client=embedded_client,
                                  max_tokens=48)
    assert isinstance(w, KnowledgeBaseWidget)
    w.upload.value = (
        upload("茶.md", "龙井是绿茶。冲泡龙井的水温以八十度左右为宜。".encode()),
        upload("../../evil<script>.txt", b"<script>alert(1)</script> volcano Etna in Sicily"),
        upload("empty.txt", b""),
    )
    report = w.report.value
    assert "茶.md" in report and "added" in report and "skipped" in report
    assert "<script>" not in report
    assert (tmp_path / "w" / "uploads" / "evil<script>.txt").exists()  # no folders escaped
    assert "2 documents" in w.status.value
    assert len(w.upload.value) == 3  # kept: the button says "Add files (3)", not "(0)"

    w.query.value = "龙井 水温"
    hits = w.search()
    assert hits is not None and hits.iloc[0].source.endswith("茶.md")
    assert "dskit-kb-results-table" in w.results.value and "<td>1</td>" in w.results.value
    w.query.value = "Etna"
    w.search()
    assert "<script>" not in w.results.value

    w.question.value = "冲泡龙井用多少度的水？"
    w.ask(wait=True)
    assert "Sources" in w.answer.value and "茶.md" in w.answer.value
    assert w.last_reply is not None and w.last_reply.sources
    assert not w.busy and not w.ask_button.disabled and w.stop_button.disabled


def test_errors_show_in_the_widget(tmp_path: Path, embedded_client: ds.Client) -> None:
    w = KnowledgeBaseWidget(KnowledgeBase("e", data_dir=tmp_path), client=embedded_client)
    w.question.value = "anything?"
    w.ask(wait=True)  # empty knowledge base: answered without the model, no traceback
    assert "no passage" in w.answer.value
    w.query.value = "   "
    assert w.search() is None


@pytest.mark.parametrize(("given", "expected"), [
    ("notes.md", "notes.md"), ("../../x.txt", "x.txt"), ("a\\b\\c.pdf", "c.pdf"),
    ("..", "upload"), ("bad\x00name.txt", "bad_name.txt"), ("报告.docx", "报告.docx"),
])
def test_upload_names_are_plain(given: str, expected: str) -> None:
    assert safe_upload_name(given) == expected


LONG_LATIN = "a" * 300 + ".md"
LONG_CHINESE = "龙井茶的冲泡方法" * 12 + ".md"  # 288 bytes of UTF-8 before the suffix


LONG_SUFFIX = "说明" * 60 + ".markdown-notes-2026"  # a suffix over 16 bytes on a long name


@pytest.mark.parametrize("given", [LONG_LATIN, LONG_CHINESE, "报" * 84 + ".txt",
                                   "x" * 400, "." * 300, "", "a\u202etxt.md", "tab\t\x85.md",
                                   LONG_SUFFIX])
def test_hostile_upload_names_fit_the_file_system(given: str) -> None:
    name = safe_upload_name(given)
    raw = name.encode("utf-8")  # valid UTF-8 (no lone surrogate, no cut character)
    assert 0 < len(raw) <= 255 and "/" not in name and name.strip(" .") == name
    assert not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f or c == "\u202e" for c in name)
    if given.endswith((".md", ".txt", "-2026")):
        assert name.endswith(given[given.rindex("."):])  # the suffix (the file type) stays


@pytest.mark.model
def test_upload_with_hostile_names_is_indexed_and_reported(tmp_path: Path) -> None:
    kb = KnowledgeBase("names", data_dir=tmp_path)
    w = KnowledgeBaseWidget(kb)
    clash = tmp_path / "names" / "uploads" / "clash.txt"
    clash.mkdir(parents=True)  # a folder where the file would go: it cannot be saved
    w.upload.value = (
        upload(LONG_LATIN, b"Latin long name: volcano Etna in Sicily."),
        upload(LONG_CHINESE, "中文长文件名：龙井是绿茶。".encode()),
        upload("", b"a file without a name"),  # saved as "upload": no suffix, no known type
        upload("same.txt", b"first file called same"),
        upload("same.txt", b"second file called same"),
        upload("clash.txt", b"cannot be written"),
    )
    report = w.report.value
    assert len(w.upload.value) == 6  # kept: the button says how many files it got
    assert w.status.state == "done"
    assert "6 file(s): 4 added, 1 skipped, 1 failed" in w.status.text
    assert "could not be saved" in report and "saved as" in report
    saved = sorted(p.name for p in (tmp_path / "names" / "uploads").iterdir())
    assert all(len(n.encode()) <= 255 for n in saved)
    assert "same.txt" in saved and "same (2).txt" in saved and "upload" in saved
    assert "unsupported file type" in report
    assert len(kb.files()) == 4
    assert kb.search("龙井", k=1).iloc[0].source.endswith(".md")
