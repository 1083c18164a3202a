"""File reading: every supported type, every kind of bad input gets a typed reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dskit.kb import loaders
from dskit.kb.loaders import LoadError
from tests import kbfiles


def text_of(path: Path) -> str:
    return "\n".join(s.text for s in loaders.load(path))


def test_reads_every_supported_type(tmp_path: Path) -> None:
    root = kbfiles.corpus(tmp_path / "c")
    assert "嘉峪关" in text_of(root / "notes.md")
    assert "vitamin C" in text_of(root / "fruit.txt")
    html = text_of(root / "page.html")
    assert "Mount Etna" in html and "alert" not in html  # scripts are not text
    assert "city: Zurich; population: 421000" in text_of(root / "table.csv")
    assert "Deimos" in text_of(root / "data.json")
    assert "3.14159" in text_of(root / "code" / "maths.py")
    assert "张伟" in text_of(root / "memo.docx")
    pages = loaders.load(root / "guide.pdf")
    assert [p.page for p in pages] == [1, 2]
    assert "Antarctic" in pages[1].text


@pytest.mark.parametrize("encoding", ["gbk", "utf-16", "utf-8-sig", "gb18030", "big5"])
def test_decodes_chinese_in_other_encodings(tmp_path: Path, encoding: str) -> None:
    text = "知识库支持多种编码的中文文件。这一段文字用来检测编码是否被正确识别，不会变成乱码。" * 3
    if encoding == "big5":
        text = "知識庫支援多種編碼的中文檔案。這一段文字用來檢測編碼是否被正確識別。" * 3
    path = kbfiles.write(tmp_path / f"{encoding}.txt", text, encoding)
    assert text_of(path).strip() == text


def test_utf16_without_bom(tmp_path: Path) -> None:
    text = "UTF-16 without a byte order mark, 中文也可以。"
    path = kbfiles.write(tmp_path / "le.txt", text, "utf-16-le")
    assert text_of(path) == text


@pytest.mark.parametrize(("make", "status", "words"), [
    (lambda d: kbfiles.write(d / "empty.md", ""), "skipped", "empty"),
    (lambda d: kbfiles.write(d / "blank.txt", "  \n\n "), "skipped", "no text"),
    (lambda d: (d / "blob.txt").write_bytes(bytes(range(256)) * 40) and d / "blob.txt",
     "skipped", "binary"),
    (lambda d: (d / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage \x00\x01" * 10)
     and d / "broken.pdf", "failed", "PDF"),
    (lambda d: kbfiles.pdf_without_text(d / "scan.pdf"), "skipped", "no extractable text"),
    (lambda d: (d / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
     and d / "broken.docx", "failed", "DOCX"),
    (lambda d: kbfiles.write(d / "bad.json", "{not json"), "failed", "invalid JSON"),
    (lambda d: (d / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
     and d / "photo.png", "skipped", "unsupported file type"),
])
def test_bad_files_get_a_typed_reason(tmp_path: Path, make, status: str, words: str) -> None:
    path = make(tmp_path)
    with pytest.raises(LoadError) as info:
        loaders.load(path)
    assert info.value.status == status
    assert words in str(info.value)


def test_encrypted_pdf_needs_the_password(tmp_path: Path) -> None:
    plain = kbfiles.pdf(tmp_path / "plain.pdf", ["Top secret penguin census."])
    locked = kbfiles.encrypted_pdf(tmp_path / "locked.pdf", plain)
    with pytest.raises(LoadError, match="encrypted PDF"):
        loaders.load(locked)


def test_size_cap_and_unreadable_paths(tmp_path: Path) -> None:
    big = kbfiles.write(tmp_path / "big.txt", "x" * 300_000)
    with pytest.raises(LoadError, match=r"over the 0\.1 MB cap") as info:
        loaders.load(big, max_mb=0.1)
    assert info.value.status == "skipped"
    dangling = tmp_path / "gone.txt"
    os.symlink(tmp_path / "nowhere.txt", dangling)
    with pytest.raises(LoadError, match="cannot read"):
        loaders.load(dangling)
