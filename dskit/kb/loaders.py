"""Reading files into text segments, with a typed reason for every file that cannot be read.

Written on top of pypdf, lxml, Python's HTML parser and charset-normalizer rather than
llama-index's SimpleDirectoryReader: that reader logs and drops a failing file, and keeps no
page or line positions, while a knowledge base must report each failure and cite locations.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

from ..errors import LoadError

MAX_FILE_MB = 20.0
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A container (DOCX, PDF) may unpack to this many times the file-size cap: compressed XML and
#: content streams are a few times larger than their file; a decompression bomb is thousands.
UNPACK_FACTOR = 4
#: The most drawing instructions one PDF page may unpack to. pypdf's text extraction holds a
#: page's parsed instructions at about 45 bytes per byte (2 MB took 90 MB and 13 s here), so
#: one page of 80 MB, within the file's limit, would take GBs; text pages draw kilobytes.
PAGE_CONTENT = 8 * 1024 * 1024
#: Text extraction may run one PDF operator per this many bytes a file may unpack to. pypdf
#: extracts a form (XObject) each time a page draws it, so a page of a few bytes drawing one
#: form thousands of times costs as much as thousands of copies (50 draws of a 0.1 MB form
#: took 60 s here); a dense text page runs a few thousand operators.
OPERATOR_BYTES = 16
#: JSON with more values than this is indexed as written, not re-indented (see `_json`).
MAX_JSON_VALUES = 1_000_000
_FIX_PDF = "extract its text with another tool (e.g. pdftotext) and add the text file"

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


@dataclass(frozen=True)
class Limits:
    """How much one file may unpack to, derived from the file-size cap `max_mb`.

    Checked while unpacking, never after: an archive member or a PDF stream over `unpacked`
    bytes is refused before it is decompressed, and extraction stops at `chars` characters
    (a plain-text file at the size cap holds about that many).
    """

    max_mb: float
    unpacked: int
    chars: int

    @classmethod
    def for_cap(cls, max_mb: float) -> Limits:
        """The limits for files of at most `max_mb` megabytes."""
        size = int(max_mb * 1024 * 1024)
        return cls(max_mb, UNPACK_FACTOR * size, size)

    def too_big(self, what: str, size: int) -> LoadError:
        """The reason a file that unpacks to more than its limits is skipped."""
        return LoadError(
            f"{what} unpacks to {_mb(size)} MB, over the {_mb(self.unpacked)} MB allowed for "
            f"a {self.max_mb:g} MB file (a decompression bomb?); raise max_file_mb to include "
            "it", "skipped")

    def too_much_text(self) -> LoadError:
        """The reason a file whose text is over the character cap is skipped."""
        return LoadError(
            f"the text in this file is over {self.chars:,} characters, the cap for "
            f"{self.max_mb:g} MB files (a decompression bomb?); raise max_file_mb to include it",
            "skipped")


def _mb(size: int) -> str:
    return f"{size / 1048576:.1f}"


class _Text:
    """Text gathered piece by piece that stops at the character cap, before reading on."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.parts: list[str] = []
        self.size = 0

    def add(self, piece: str) -> None:
        """Keep `piece`; `LoadError` once the text is over the cap."""
        self.size += len(piece)
        if self.size > self.limits.chars:
            raise self.limits.too_much_text()
        self.parts.append(piece)

    def lines(self, pieces: Iterable[str]) -> str:
        """Add every piece as a line; the lines joined."""
        for piece in pieces:
            self.add(piece)
            self.size += 1  # the newline
        return "\n".join(self.parts)


def supported(path: Path) -> bool:
    """Whether dskit knows how to read this file type."""
    return path.suffix.lower() in SUPPORTED or path.name in {"Makefile", "Dockerfile"}


def load(path: Path, max_mb: float = MAX_FILE_MB) -> list[Segment]:
    """Read `path` into segments; raise `LoadError` saying why it cannot be used."""
    return parse(path, read(path, max_mb), max_mb)


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
    # O_NOFOLLOW: a file swapped for a symbolic link after the folder was scanned is refused
    # (the scan checked where links point; a later link could point anywhere).
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LoadError("cannot read: the file became a symbolic link after the folder "
                            "was scanned") from None
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    # In pieces, counted: a file that grows past the cap after the stat is not read whole.
    pieces: list[bytes] = []
    total = 0
    with os.fdopen(fd, "rb") as fh:
        while piece := fh.read(1 << 20):
            total += len(piece)
            if total > max_mb * 1024 * 1024:
                raise LoadError(f"the file grew over the {max_mb:g} MB cap while it was read",
                                "skipped")
            pieces.append(piece)
    return b"".join(pieces)


def parse(path: Path, data: bytes, max_mb: float = MAX_FILE_MB) -> list[Segment]:
    """Segments of a file's bytes, by its type; `LoadError` when there is no usable text.

    Containers are unpacked within `Limits.for_cap(max_mb)`: a file that would unpack to
    more is skipped with the reason, having used bounded memory and time.
    """
    limits = Limits.for_cap(max_mb)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        segments = _pdf(data, limits)
    elif suffix == ".docx":
        segments = [Segment(_docx(data, limits))]
    elif suffix in (".html", ".htm"):
        segments = [Segment(_html(decode(data), limits))]
    elif suffix in (".csv", ".tsv"):
        segments = [Segment(_csv(decode(data), "\t" if suffix == ".tsv" else ",", limits))]
    elif suffix == ".json":
        segments = [Segment(_json(decode(data), limits))]
    else:
        segments = [Segment(decode(data))]
    if sum(len(s.text) for s in segments) > limits.chars:
        raise limits.too_much_text()
    segments = [Segment(_text(s.text), s.page, s.line) for s in segments if s.text.strip()]
    if not segments:
        raise LoadError("no text in the file", "skipped")
    return segments


def _text(text: str) -> str:
    """Text that can be stored: a lone surrogate (a PDF's broken UTF-16 string) becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


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


def _pdf(data: bytes, limits: Limits) -> list[Segment]:
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError

    # pypdf logs every repair it attempts; the report row already says what went wrong.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    # pypdf stops any one stream from unpacking past our limit (it checks while inflating):
    # no more than a page may draw, since a form's stream is parsed whole when it is drawn.
    cap = limits.unpacked
    stream = min(cap, PAGE_CONTENT)
    with apply_configuration(
            maximum_declared_stream_length=cap, zlib_maximum_output_length=stream,
            lzw_maximum_output_length=stream, run_length_maximum_output_length=stream,
            brotli_maximum_output_length=stream, jbig2_maximum_output_length=stream,
            array_based_stream_maximum_output_length=stream,
            stream_decoding_work_maximum_length=2 * cap):
        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                # An owner-password-only PDF opens with the empty user password.
                try:
                    ok = reader.decrypt("")
                except (NotImplementedError, PdfReadError) as exc:
                    raise LoadError(f"encrypted PDF that cannot be opened: {exc}") from None
                if not ok:
                    raise LoadError("encrypted PDF: a password is needed; save an unencrypted "
                                    "copy")
            pages = list(_pdf_pages(reader, limits))
        except LoadError:
            raise
        except LimitReachedError as exc:
            fix = "raise max_file_mb to include it" if stream == cap else _FIX_PDF
            raise LoadError(f"a stream in this PDF unpacks to more than {_mb(stream)} MB, the "
                            f"limit for a {limits.max_mb:g} MB file (a decompression bomb?); "
                            f"{fix} ({exc})", "skipped") from None
        except FileNotDecryptedError:
            raise LoadError("encrypted PDF: a password is needed; save an unencrypted "
                            "copy") from None
        except Exception as exc:  # pypdf raises many types for broken files
            raise LoadError(f"corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from None
    if not any(p.text.strip() for p in pages):
        raise LoadError(f"PDF with {len(pages)} page(s) but no extractable text (a scan? run "
                        "OCR on it first)", "skipped")
    return pages


class _PdfWork:
    """Counts the operators pypdf's text extraction runs and the text it finds, and stops it
    (from its visitor callbacks) once either passes the file's limits, mid-page if need be."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.operators = 0
        self.chars = 0
        self.stop: LoadError | None = None

    def operator(self, *_args: Any) -> None:
        self.operators += 1
        if self.operators > self.limits.unpacked // OPERATOR_BYTES:
            self._fail(LoadError(
                f"extracting its text takes over {self.limits.unpacked // OPERATOR_BYTES:,} "
                f"PDF operators, the limit for a {self.limits.max_mb:g} MB file (a "
                f"decompression bomb, or a form drawn over and over?); {_FIX_PDF}", "skipped"))

    def text(self, text: str, *_args: Any) -> None:
        self.chars += len(text)
        if self.chars > self.limits.chars:
            self._fail(self.limits.too_much_text())

    def _fail(self, error: LoadError) -> None:
        self.stop = self.stop or error
        raise self.stop

    def check(self) -> None:
        """Raise the limit that was passed: pypdf logs and skips an error raised inside a
        form, so the one raised there may not have reached the caller."""
        if self.stop is not None:
            raise self.stop


def _pdf_pages(reader: object, limits: Limits) -> Iterator[Segment]:
    """Each page's text, stopping once the pages' streams, operators or text pass the limits."""
    unpacked = chars = 0
    work = _PdfWork(limits)
    seen: set[int] = set()
    for i, page in enumerate(reader.pages, 1):  # type: ignore[attr-defined]
        # Many pages may share one content stream: count what each page makes pypdf unpack.
        contents = page.get_contents()
        size = len(contents.get_data()) if contents is not None else 0
        if size > PAGE_CONTENT:
            raise LoadError(
                f"page {i} unpacks to {_mb(size)} MB of drawing instructions, over the "
                f"{_mb(PAGE_CONTENT)} MB one page may have (a decompression bomb?); {_FIX_PDF}",
                "skipped")
        # The forms it draws too (pypdf would skip one over the stream limit without a word),
        # each once: drawing one again costs operators, counted below.
        size += sum(len(form.get_data()) for form in _forms(page.get("/Resources"), seen))
        unpacked += size
        if unpacked > limits.unpacked:
            raise limits.too_big(f"the content of pages 1–{i}", unpacked)
        text = page.extract_text(visitor_operand_before=work.operator,
                                 visitor_text=work.text) or ""
        work.check()
        chars += len(text)
        if chars > limits.chars:
            raise limits.too_much_text()
        yield Segment(text, page=i)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_OFFICE_DOCUMENT = "/officeDocument"  # the type of the package's relationship to its main part


def _forms(resources: Any, seen: set[int]) -> Iterator[Any]:
    """The form XObjects that `resources` lets a page (or a form) draw, nested ones too, each
    once across the file (`seen`: the ids of those already given)."""
    resources = resources.get_object() if resources is not None else None
    if not hasattr(resources, "get"):
        return
    xobjects = resources.get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else None
    for ref in xobjects.values() if xobjects is not None and hasattr(xobjects, "values") \
            else ():
        form = ref.get_object()
        if not hasattr(form, "get_data") or form.get("/Subtype") != "/Form" or \
                id(form) in seen:
            continue
        seen.add(id(form))
        yield form
        yield from _forms(form.get("/Resources"), seen)


def _docx(data: bytes, limits: Limits) -> str:
    """The paragraphs and table rows of a Word document, in document order.

    The main part is parsed as it inflates (lxml's iterparse), each paragraph or row freed
    once read: python-docx builds the whole tree first, about 20 bytes of memory per byte of
    XML and a few seconds per MB, so a small file unpacking to tens of MB of XML within the
    limits took minutes and GBs before the text cap could stop it.
    """
    from lxml.etree import XMLSyntaxError  # the kb extra: imported when a DOCX is read

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        # zipfile never inflates a member past the size its directory declares (it fails on
        # the CRC instead), so checking the declared sizes bounds what is unpacked.
        check_archive(archive, limits)
        with archive.open(_docx_main_part(archive)) as xml:
            return _Text(limits).lines(_docx_lines(xml))
    except LoadError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, XMLSyntaxError) as exc:
        raise LoadError(f"corrupt DOCX ({type(exc).__name__}: {exc})") from None


def _docx_main_part(archive: zipfile.ZipFile) -> str:
    """The name of the document's main XML part, as the package's relationships give it."""
    from lxml import etree  # the kb extra: imported when a DOCX is read

    try:
        rels = etree.fromstring(archive.read("_rels/.rels"),
                                etree.XMLParser(resolve_entities=False, no_network=True))
    except KeyError:
        return "word/document.xml"
    for rel in rels:
        if str(rel.get("Type", "")).endswith(_OFFICE_DOCUMENT) and rel.get("Target"):
            return str(rel.get("Target")).lstrip("/")
    return "word/document.xml"


def _docx_lines(xml: IO[bytes]) -> Iterator[str]:
    """A line per body paragraph and per table row (its cells joined by ' | '), as python-docx
    shows them (tabs and breaks inside runs kept), read and freed one element at a time."""
    from lxml import etree  # the kb extra: imported when a DOCX is read

    for _event, el in etree.iterparse(xml, events=("end",), tag=(f"{_W}p", f"{_W}tr"),
                                      resolve_entities=False, no_network=True):
        if el.tag == f"{_W}p":
            if _in_table(el):
                continue  # its row reads it
            yield _paragraph(el)
        else:
            yield " | ".join("\n".join(_paragraph(p) for p in cell.iterchildren(f"{_W}p"))
                             for cell in el.iterchildren(f"{_W}tc"))
            if _in_table(el):
                continue  # a nested table: the outer row is freed with it
        el.clear()
        while el.getprevious() is not None:  # the elements read before it
            del el.getparent()[0]


def _in_table(el: Any) -> bool:
    parent = el.getparent()
    while parent is not None:
        if parent.tag == f"{_W}tc":
            return True
        parent = parent.getparent()
    return False


def _paragraph(p: Any) -> str:
    """A paragraph's text as python-docx reads it: its runs' text, a tab as '\\t', a line
    break as '\\n' (tab stops in the paragraph's properties are not text)."""
    parts = []
    for run in p.iter(f"{_W}r"):
        for el in run:
            if el.tag == f"{_W}t":
                parts.append(el.text or "")
            elif el.tag == f"{_W}tab":
                parts.append("\t")
            elif el.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
    return "".join(parts)


def check_archive(archive: zipfile.ZipFile, limits: Limits) -> None:
    """Refuse a ZIP archive whose members unpack to more than the limits allow."""
    total = 0
    for info in archive.infolist():
        if info.file_size > limits.unpacked:
            raise limits.too_big(f"the member {info.filename[:80]!r}", info.file_size)
        total += info.file_size
        if total > limits.unpacked:
            raise limits.too_big("the archive", total)


def _html(text: str, limits: Limits) -> str:
    """A page's text, a line per text line, without scripts, styles and templates.

    Gathered while the page is parsed, within the text cap, and no tree is built: a tree of
    BeautifulSoup's held 700 MB for a 5 MB page of small elements (about 140 bytes per byte).
    """
    out = _Text(limits)
    parser = _HtmlText(out)
    for start in range(0, len(text), 1 << 20):
        parser.feed(text[start:start + (1 << 20)])
    parser.close()
    return "\n".join(out.parts)


class _HtmlText(HTMLParser):
    """Collects the stripped, non-empty lines of an HTML page's text nodes into a `_Text`."""

    SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self, out: _Text) -> None:
        super().__init__(convert_charrefs=True)
        self.out = out
        self.skipping = 0  # depth inside elements whose content is not text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        for line in data.splitlines():
            if line := line.strip():
                self.out.add(line)
                self.out.size += 1  # the newline


def _csv(text: str, delimiter: str, limits: Limits) -> str:
    """One line per row, `header: value` pairs, so a chunk of rows keeps its meaning.

    The header is repeated on every row, so the text can be far longer than the file: it is
    built row by row within the character cap.
    """
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    out = _Text(limits)
    try:
        header = next(rows, None)
        if header is None:
            return ""
        body = False
        for row in rows:
            body = True
            out.add("; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v))
            out.size += 1  # the newline
    except csv.Error as exc:
        raise LoadError(f"malformed CSV (line {rows.line_num}: {exc})") from None
    return "\n".join(out.parts) if body else delimiter.join(header)


def _json(text: str, limits: Limits) -> str:
    """The value re-indented (one item a line); built piece by piece within the text cap,
    since indentation can make deeply nested JSON far longer than its file.

    A file of more than `MAX_JSON_VALUES` values is indexed as written instead: re-indenting
    builds a Python object per value first (5 MB of `{}` took 150 MB here).
    """
    # Each value but the first follows a ',' or opens a container: an upper bound, at C speed.
    if text.count(",") + text.count("[") + text.count("{") > MAX_JSON_VALUES:
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"invalid JSON ({exc})") from None
    except RecursionError:
        raise LoadError("JSON nested too deeply to read") from None
    out = _Text(limits)
    try:
        for piece in json.JSONEncoder(ensure_ascii=False, indent=1).iterencode(value):
            out.add(piece)
    except RecursionError:
        raise LoadError("JSON nested too deeply to read") from None
    return "".join(out.parts)
