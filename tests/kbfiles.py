"""Real files of every type a knowledge base reads, good and broken, made on the spot; and a
consistency check of a knowledge base's SQLite file."""

from __future__ import annotations

import io
import sqlite3
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

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


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _docx_with(path: Path, write_document: Callable[[IO[bytes]], None]) -> Path:
    """A real DOCX (python-docx's own parts) whose word/document.xml `write_document` writes,
    streamed into the archive (never held in memory whole)."""
    template = io.BytesIO()
    docx.Document().save(template)
    with zipfile.ZipFile(template) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for item in src.infolist():
            if item.filename != "word/document.xml":
                out.writestr(item, src.read(item))
        with out.open("word/document.xml", "w", force_zip64=True) as fh:
            write_document(fh)
    return path


def docx_bomb(path: Path, chars: int) -> Path:
    """A DOCX of a few hundred KB whose one paragraph holds `chars` characters (a zip bomb)."""
    def write(fh: IO[bytes]) -> None:
        fh.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                 f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>'.encode())
        block = b"A" * (1 << 20)
        for _ in range(chars >> 20):
            fh.write(block)
        fh.write(b"A" * (chars & ((1 << 20) - 1)))
        fh.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return _docx_with(path, write)


def docx_paragraphs(path: Path, count: int, text: str) -> Path:
    """A DOCX with `count` paragraphs of `text`, written as raw XML (fast for large counts)."""
    def write(fh: IO[bytes]) -> None:
        fh.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                 f'<w:document xmlns:w="{W_NS}"><w:body>'.encode())
        para = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>".encode()
        for _ in range(count):
            fh.write(para)
        fh.write(b"</w:body></w:document>")
    return _docx_with(path, write)


def docx_malformed(path: Path) -> Path:
    """A DOCX whose document.xml is not well-formed XML."""
    return _docx_with(path, lambda fh: fh.write(
        f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>unclosed'.encode()))


def pdf_with_stream(path: Path, content: bytes, pages: int = 1) -> Path:
    """A hand-built PDF whose `pages` pages all draw one Flate-compressed content stream
    (`content`: PDF operators, e.g. repeated `(A) Tj`)."""
    packed = zlib.compress(content, 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed),
        *[b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
          b"/Resources << /Font << /F1 3 0 R >> >> >>"] * pages,
    ]
    return _pdf_of(path, objects)


def _pdf_of(path: Path, objects: list[bytes]) -> Path:
    """A PDF file of the numbered `objects` (1 is the catalog), with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def pdf_with_form(path: Path, form: bytes, draws: int) -> Path:
    """A hand-built one-page PDF whose page draws one form XObject `draws` times (`form`: its
    PDF operators, Flate-compressed)."""
    packed = zlib.compress(form, 9)
    page = zlib.compress(b"/X0 Do\n" * draws, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 3 0 R "
        b">> >> /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R /Resources << "
        b"/Font << /F1 3 0 R >> /XObject << /X0 4 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(page), page),
    ]
    return _pdf_of(path, objects)


def docx_elements(path: Path, count: int, element: str = '<w:proofErr w:type="spellStart"/>',
                  inside: str = "body") -> Path:
    """A DOCX of `count` copies of `element` side by side: in the body between paragraphs
    (`inside="body"`), in one paragraph (`"paragraph"`, e.g. runs) or in one table row
    (`"row"`, e.g. cells). Small when zipped, large when parsed."""
    opening, closing = {"body": ("", ""), "paragraph": ("<w:p>", "</w:p>"),
                        "row": ("<w:tbl><w:tr>", "</w:tr></w:tbl>")}[inside]

    def write(fh: IO[bytes]) -> None:
        fh.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                 f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>会议纪要</w:t></w:r></w:p>'
                 f'{opening}'.encode())
        one, per = element.encode(), min(count, 10_000)
        for _ in range(count // per):
            fh.write(one * per)
        fh.write(one * (count % per))
        fh.write(f"{closing}</w:body></w:document>".encode())
    return _docx_with(path, write)


def docx_body(path: Path, body: str) -> Path:
    """A DOCX whose body is the given WordprocessingML (prefix `w:`)."""
    return _docx_with(path, lambda fh: fh.write(
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W_NS}">'
        f'<w:body>{body}</w:body></w:document>'.encode()))
