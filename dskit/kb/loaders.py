"""Reading files into text segments, with a typed reason for every file that cannot be read.

Written on top of pypdf, python-docx, BeautifulSoup and charset-normalizer rather than
llama-index's SimpleDirectoryReader: that reader logs and drops a failing file, and keeps no
page or line positions, while a knowledge base must report each failure and cite locations.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import LoadError

MAX_FILE_MB = 20.0

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".log", ".tex", ".org"}
CODE_SUFFIXES = {
    ".py", ".ipynb", ".js", ".jsx", ".ts", ".tsx", ".java", ".kt", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".scala", ".r", ".m", ".sh", ".bash",
    ".zsh", ".ps1", ".sql", ".lua", ".pl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".xml",
    ".css", ".scss", ".vue", ".svelte", ".dart", ".jl", ".hs", ".ex", ".erl", ".clj",
}
SUPPORTED = TEXT_SUFFIXES | CODE_SUFFIXES | {
    ".pdf", ".docx", ".html", ".htm", ".csv", ".tsv", ".json", ".jsonl"}


@dataclass
class Segment:
    """A run of text from one place in a file: a PDF page, or the whole text of other files."""

    text: str
    page: int | None = None  # 1-based PDF page
    line: int = 1  # line number of the segment's first line in the file's text


def supported(path: Path) -> bool:
    """Whether dskit knows how to read this file type."""
    return path.suffix.lower() in SUPPORTED or path.name in {"Makefile", "Dockerfile"}


def load(path: Path, max_mb: float = MAX_FILE_MB) -> list[Segment]:
    """Read `path` into segments; raise `LoadError` saying why it cannot be used."""
    return parse(path, read(path, max_mb))


def read(path: Path, max_mb: float = MAX_FILE_MB) -> bytes:
    """The bytes of a file worth parsing; `LoadError` for empty, oversize, unknown or unreadable."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise LoadError("empty file", "skipped")
    if size > max_mb * 1024 * 1024:
        raise LoadError(f"{size / 1048576:.1f} MB is over the {max_mb:g} MB cap "
                        "(raise max_file_mb to include it)", "skipped")
    if not supported(path):
        raise LoadError(f"unsupported file type {path.suffix or '(no suffix)'!r}; supported: "
                        "text, Markdown, PDF, DOCX, HTML, CSV, JSON and source code", "skipped")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None


def parse(path: Path, data: bytes) -> list[Segment]:
    """Segments of a file's bytes, by its type; `LoadError` when there is no usable text."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        segments = _pdf(data)
    elif suffix == ".docx":
        segments = [Segment(_docx(data))]
    elif suffix in (".html", ".htm"):
        segments = [Segment(_html(decode(data)))]
    elif suffix in (".csv", ".tsv"):
        segments = [Segment(_csv(decode(data), "\t" if suffix == ".tsv" else ","))]
    elif suffix == ".json":
        segments = [Segment(_json(decode(data)))]
    else:
        segments = [Segment(decode(data))]
    segments = [s for s in segments if s.text.strip()]
    if not segments:
        raise LoadError("no text in the file", "skipped")
    return segments


def decode(data: bytes) -> str:
    """Text from bytes: UTF-8 (with or without BOM), UTF-16 by BOM, else a detected encoding."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        # NUL bytes without a UTF-16 BOM: UTF-16 without BOM is rare; binary is common.
        guess = _utf16_without_bom(data)
        if guess is None:
            raise LoadError("binary file (not text)", "skipped")
        return guess
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("not text in any encoding dskit can detect (binary file?)", "skipped")
    return str(best)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a byte-order mark, recognised by zero bytes at every other place."""
    sample = data[:4096]
    for enc, zeros in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
        if zeros and zeros.count(0) / len(zeros) > 0.3:
            try:
                text = data.decode(enc)
            except UnicodeDecodeError:
                continue
            shown = sum(c.isprintable() or c.isspace() for c in text)
            if shown > 0.95 * len(text):
                return text
    return None


def _pdf(data: bytes) -> list[Segment]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    # pypdf logs every repair it attempts; the report row already says what went wrong.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # An owner-password-only PDF opens with the empty user password.
            try:
                ok = reader.decrypt("")
            except (NotImplementedError, PdfReadError) as exc:
                raise LoadError(f"encrypted PDF that cannot be opened: {exc}") from None
            if not ok:
                raise LoadError("encrypted PDF: a password is needed; save an unencrypted copy")
        pages = [Segment(page.extract_text() or "", page=i) for i, page in
                 enumerate(reader.pages, 1)]
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError("encrypted PDF: a password is needed; save an unencrypted copy") from None
    except Exception as exc:  # pypdf raises many types for broken files
        raise LoadError(f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from None
    if not any(p.text.strip() for p in pages):
        raise LoadError(f"PDF with {len(pages)} page(s) but no extractable text (a scan? run "
                        "OCR on it first)", "skipped")
    return pages


def _docx(data: bytes) -> str:
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"corrupt DOCX ({type(exc).__name__}: {exc})") from None
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        lines.extend(" | ".join(cell.text for cell in row.cells) for row in table.rows)
    return "\n".join(lines)


def _html(text: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return "\n".join(line.strip() for line in soup.get_text("\n").splitlines() if line.strip())


def _csv(text: str, delimiter: str) -> str:
    """One line per row, `header: value` pairs, so a chunk of rows keeps its meaning."""
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        return ""
    header, body = rows[0], rows[1:]
    if not body:
        return delimiter.join(header)
    return "\n".join("; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v)
                     for row in body)


def _json(text: str) -> str:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"invalid JSON ({exc})") from None
    return json.dumps(value, ensure_ascii=False, indent=1)
