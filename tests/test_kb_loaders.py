"""File reading: every supported type, every kind of bad input gets a typed reason."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import docx
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


# --- hostile files: every container is unpacked within limits, every parser error is typed ----

def test_docx_bomb_is_skipped_before_it_is_unpacked(tmp_path: Path) -> None:
    bomb = kbfiles.docx_bomb(tmp_path / "bomb.docx", 101_000_000)
    declared = sum(i.file_size for i in zipfile.ZipFile(bomb).infolist())
    assert bomb.stat().st_size < 1_000_000 < 100_000_000 < declared  # a real zip bomb
    tracemalloc.start()
    try:
        with pytest.raises(LoadError, match="decompression bomb") as info:
            loaders.load(bomb)  # the default 20 MB cap
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.status == "skipped" and "word/document.xml" in str(info.value)
    assert peak < 5_000_000  # nothing near the 101 M characters was ever unpacked


def test_docx_text_over_the_cap_stops_while_extracting(tmp_path: Path) -> None:
    # 1.7 MB unpacked, within what a 0.5 MB file may unpack to (2 MB), but 0.7 M characters of
    # text: more than a 0.5 MB file may hold (0.5 M).
    path = kbfiles.docx_paragraphs(tmp_path / "long.docx", 7_000, "x" * 100)
    assert path.stat().st_size < 0.5 * 1024 * 1024
    with pytest.raises(LoadError, match="text in this file is over 524,288 characters") as info:
        loaders.load(path, max_mb=0.5)
    assert info.value.status == "skipped"
    assert len(text_of(path)) > 700_000  # the default cap reads it whole


def test_docx_text_keeps_document_order_tabs_breaks_and_tables(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("会议决定：下周三发布新版本。")
    para = document.add_paragraph("tab\there")
    para.paragraph_format.tab_stops.add_tab_stop(docx.shared.Inches(1))  # a stop, not text
    para.add_run().add_break()
    para.add_run("after the break")
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "水果", (0, 1): "数量", (1, 0): "苹果", (1, 1): "7"}.items():
        table.cell(row, col).text = text
    table.cell(1, 1).add_paragraph("a second line in the cell")
    document.add_paragraph("After the table.")
    document.save(str(tmp_path / "memo.docx"))
    assert text_of(tmp_path / "memo.docx") == (
        "会议决定：下周三发布新版本。\ntab\there\nafter the break\n水果 | 数量\n"
        "苹果 | 7\na second line in the cell\nAfter the table.")


def read_in_a_fresh_process(path: Path, max_mb: float) -> tuple[str, int]:
    """The text `load` gives, and by how many MB reading it grew a new process's peak
    resident size (the process's own: lxml and parsers allocate where tracemalloc cannot
    see)."""
    code = ("import resource, sys\nfrom pathlib import Path\nfrom dskit.kb import loaders\n"
            "import html.parser, lxml.etree\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "text = loaders.load(Path(sys.argv[1]), float(sys.argv[2]))[0].text\n"
            "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
            "print(grew // 1024)\nprint(text, end='')\n")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(max_mb)],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    grew, text = out.split("\n", 1)
    return text, int(grew)


@pytest.mark.subprocess
def test_docx_of_many_paragraphs_is_read_in_bounded_memory(tmp_path: Path) -> None:
    # 10 MB of XML from a 70 KB file: within what a 3 MB file may unpack to (12 MB), so it is
    # read, one paragraph at a time (a whole tree of it took 136 MB).
    path = kbfiles.docx_paragraphs(tmp_path / "many.docx", 300_000, "x")
    assert path.stat().st_size < 200_000
    text, grew = read_in_a_fresh_process(path, max_mb=3)
    assert text.count("x") == 300_000  # every paragraph
    assert grew < 40, f"reading grew the process by {grew} MB"


@pytest.mark.subprocess
def test_html_of_many_elements_is_read_in_bounded_memory(tmp_path: Path) -> None:
    # 2 MB of small elements: a tree of them grew the process by 81 MB.
    path = kbfiles.write(tmp_path / "many.html", "<html><body><script>var x = '<p>no</p>';"
                         "</script>" + "<p>x &amp; y</p>" * 130_000 + "</body></html>")
    text, grew = read_in_a_fresh_process(path, max_mb=3)
    assert text.count("x & y") == 130_000 and "no" not in text
    assert grew < 40, f"reading grew the process by {grew} MB"


@pytest.mark.parametrize(("pages", "content", "words"), [
    # one stream inflating to 8 MB
    (1, b"BT /F1 9 Tf 9 9 Td (AAAA) Tj ET\n" * 400_000, "unpacks to more than 2.0 MB"),
    # 60 pages sharing one 100 KB stream (of comments: few operators, little text)
    (60, b"BT /F1 9 Tf 9 9 Td (AAAA) Tj ET\n" + (b"%" + b"x" * 99 + b"\n") * 1_000,
     "the content of pages 1–"),
])
def test_pdf_streams_and_pages_are_unpacked_within_limits(tmp_path: Path, pages: int,
                                                           content: bytes, words: str) -> None:
    path = kbfiles.pdf_with_stream(tmp_path / "bomb.pdf", content, pages=pages)
    assert path.stat().st_size < 50_000
    with pytest.raises(LoadError, match=words) as info:
        loaders.load(path, max_mb=0.5)
    assert info.value.status == "skipped" and "decompression bomb" in str(info.value)


@pytest.mark.subprocess
def test_json_of_many_values_is_read_as_written_in_bounded_memory(tmp_path: Path) -> None:
    # 1.2 M empty objects in 3.6 MB: re-indenting them built a Python object each (102 MB
    # here), then ran over the text cap (indentation doubles them): the file was skipped.
    path = kbfiles.write(tmp_path / "many.json", '{"note": "龙井 is a green tea", "rows": ['
                         + ",".join(["{}"] * 1_200_000) + "]}")
    text, grew = read_in_a_fresh_process(path, max_mb=5)
    assert text.startswith('{"note": "龙井 is a green tea", "rows": [{},{}')  # as written
    assert grew < 40, f"reading grew the process by {grew} MB"
    small = kbfiles.write(tmp_path / "small.json", '{"rows": [{}, {"a": 1}]}')
    assert text_of(small) == '{\n "rows": [\n  {},\n  {\n   "a": 1\n  }\n ]\n}'  # re-indented


DRAW_TEXT = b"BT /F1 9 Tf 9 9 Td (AAAA) Tj ET\n"  # 32 bytes, five operators, four characters


@pytest.mark.parametrize("make", [
    lambda d: kbfiles.pdf_with_stream(d / "page.pdf", DRAW_TEXT * (9 << 20 >> 5)),
    lambda d: kbfiles.pdf_with_form(d / "form.pdf", DRAW_TEXT * (9 << 20 >> 5), draws=1),
])
def test_a_pdf_stream_over_what_a_page_may_draw_is_skipped_before_it_is_parsed(
        tmp_path: Path, make) -> None:
    # 9 MB of drawing instructions from a 20 KB file, on the page or in a form it draws: within
    # what a 20 MB file may unpack to, but parsing them for text would hold about 400 MB.
    path = make(tmp_path)
    assert path.stat().st_size < 50_000
    with pytest.raises(LoadError) as info:
        loaders.load(path)
    assert "a stream in this PDF unpacks to more than 8.0 MB" in str(info.value)
    assert info.value.status == "skipped" and "pdftotext" in str(info.value)


def test_a_form_drawn_over_and_over_stops_at_the_operator_limit(tmp_path: Path) -> None:
    # A page of 140 bytes drawing a 20 KB form 20 times: 64,000 operators, over the 26,214 a
    # 0.1 MB file may run (pypdf extracts the form again at each draw).
    path = kbfiles.pdf_with_form(tmp_path / "form.pdf", DRAW_TEXT * 640, draws=20)
    with pytest.raises(LoadError) as info:
        loaders.load(path, max_mb=0.1)
    assert "over 26,214 PDF operators" in str(info.value)
    assert info.value.status == "skipped" and "pdftotext" in str(info.value)
    # drawn twice, the same form is read, its text twice
    twice = kbfiles.pdf_with_form(tmp_path / "twice.pdf", DRAW_TEXT * 640, draws=2)
    assert text_of(twice).count("AAAA") == 2 * 640


@pytest.mark.parametrize(("name", "content"), [
    # the header repeats on every row: 1,000 long column names, short rows
    ("wide.csv", ",".join(f"column_name_number_{i:04d}" for i in range(1000)) + "\n"
     + ("1," * 999 + "1\n") * 200),
    # indentation grows with depth: 500 nested lists around 4,000 numbers
    ("deep.json", "[" * 500 + ",".join("1" for _ in range(4000)) + "]" * 500),
])
def test_text_that_grows_when_laid_out_is_capped(tmp_path: Path, name: str,
                                                 content: str) -> None:
    path = kbfiles.write(tmp_path / name, content)
    assert path.stat().st_size < 512 * 1024
    with pytest.raises(LoadError, match="over 524,288 characters") as info:
        loaders.load(path, max_mb=0.5)
    assert info.value.status == "skipped"


def test_every_type_obeys_the_text_cap(tmp_path: Path) -> None:
    # The text of a page is never longer than its bytes; the cap applies all the same.
    html = kbfiles.write(tmp_path / "page.html", "<p>" + "word " * 5000 + "</p>")
    with pytest.raises(LoadError, match="over 10,485 characters"):
        loaders.parse(html, html.read_bytes(), max_mb=0.01)


@pytest.mark.parametrize(("make", "words"), [
    (lambda d: kbfiles.docx_malformed(d / "bad.docx"), "corrupt DOCX (XMLSyntaxError"),
    (lambda d: kbfiles.write(d / "huge.csv", "a,b\n1," + "x" * 200_000 + "\n"),
     "malformed CSV (line 2: field larger than field limit"),
    (lambda d: kbfiles.write(d / "nested.json", "[" * 100_000 + "]" * 100_000),
     "JSON nested too deeply"),
])
def test_parser_failures_are_typed(tmp_path: Path, make, words: str) -> None:
    with pytest.raises(LoadError) as info:
        loaders.load(make(tmp_path))
    assert info.value.status == "failed" and words in str(info.value)


@pytest.mark.parametrize(("data", "start", "end"), [
    # UTF-8 cut mid-character, or with one stray byte: the text is kept, the bad byte replaced
    (("长城是中国古代的军事防御工程。" * 500).encode()[:-1], "长城是中国", "防御工程\ufffd"),
    (("会议纪要：下周三发布。" * 50).encode() + b"\xff notes", "会议纪要", "\ufffd notes"),
    # legacy encodings still go to detection: hardly any valid UTF-8 sequences in them
    (("The café serves coffee; the crème brûlée is sweet. " * 80).encode("cp1252"), "The café",
     "is sweet. "),
    (("长城是中国古代的军事防御工程。" * 200).encode("gbk"), "长城是中国", "防御工程。"),
    # UTF-16 with its BOM, cut at an odd byte
    ("\ufeff长城 notes".encode("utf-16-le") + b"A", "长城 notes", "notes\ufffd"),
])
def test_damaged_text_is_kept_and_legacy_encodings_detected(tmp_path: Path, data: bytes,
                                                          start: str, end: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(data)
    text = text_of(path)
    assert text.startswith(start) and text.endswith(end)
