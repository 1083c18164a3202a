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
