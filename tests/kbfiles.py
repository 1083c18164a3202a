"""Real files of every type a knowledge base reads, good and broken, made on the spot; and a
consistency check of a knowledge base's SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import docx
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter


def pdf(path: Path, pages: list[str]) -> Path:
    """A PDF with one page of (Latin) text per item."""
    doc = FPDF()
    for text in pages:
        doc.add_page()
        doc.set_font("Helvetica", size=12)
        doc.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
    doc.output(str(path))
    return path


def pdf_without_text(path: Path) -> Path:
    """A PDF whose only page holds a drawing (what a scan looks like to a text extractor)."""
    doc = FPDF()
    doc.add_page()
    doc.rect(20, 20, 100, 60, style="F")
    doc.output(str(path))
    return path


def encrypted_pdf(path: Path, source: Path, password: str = "s3cret") -> Path:
    """`source` encrypted with a user password."""
    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=password, owner_password=password + "-owner")
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def docx_file(path: Path, paragraphs: list[str]) -> Path:
    """A Word document."""
    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    document.save(str(path))
    return path


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """A text file in the given encoding."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def corpus(root: Path) -> Path:
    """A small mixed Chinese/English folder with one file of every supported kind."""
    root.mkdir(parents=True, exist_ok=True)
    write(root / "notes.md", "# 长城\n长城是中国古代的军事防御工程，总长度超过两万公里。\n"
          "明长城东起山海关，西至嘉峪关。\n")
    write(root / "fruit.txt", "Apples grow on trees. A ripe banana is yellow.\n"
          "Oranges are rich in vitamin C.\n")
    write(root / "page.html", "<html><head><script>alert('x')</script></head><body>"
          "<h1>Volcanoes</h1><p>Mount Etna is an active volcano in Sicily.</p></body></html>")
    write(root / "table.csv", "city,population\nShanghai,24870000\nZurich,421000\n")
    write(root / "data.json", '{"planet": "Mars", "moons": ["Phobos", "Deimos"]}')
    write(root / "code" / "maths.py", "def area(r):\n    \"\"\"Area of a circle.\"\"\"\n"
          "    return 3.14159 * r * r\n")
    pdf(root / "guide.pdf", ["Penguins live in the Southern Hemisphere.",
                             "Emperor penguins breed during the Antarctic winter."])
    docx_file(root / "memo.docx", ["会议决定：下周三发布新版本。", "负责人：张伟。"])
    return root


def assert_consistent(db: Path) -> None:
    """Every document's chunk count matches its chunks; SQLite's own check passes."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for doc_id, n in conn.execute("SELECT doc_id, n_chunks FROM docs"):
            got = conn.execute("SELECT COUNT(*) FROM chunks WHERE doc_id = ?", (doc_id,))
            assert got.fetchone()[0] == n, doc_id
        orphans = conn.execute(
            "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM docs)")
        assert orphans.fetchone()[0] == 0
    finally:
        conn.close()
