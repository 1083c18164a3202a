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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LoadError
from .budget import Limits, Work

MAX_FILE_MB = 20.0
_SURROGATE = re.compile("[\ud800-\udfff]")
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

    def line(self, piece: str) -> None:
        """Keep `piece` as a line of its own (the newline counts)."""
        self.add(piece)
        self.size += 1



def supported(path: Path) -> bool:
    """Whether dskit knows how to read this file type."""
    return path.suffix.lower() in SUPPORTED or path.name in {"Makefile", "Dockerfile"}


def load(path: Path, max_mb: float = MAX_FILE_MB, seconds: float | None = None
         ) -> list[Segment]:
    """Read `path` into segments; raise `LoadError` saying why it cannot be used."""
    return parse(path, read(path, max_mb), max_mb, seconds)


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


def parse(path: Path, data: bytes, max_mb: float = MAX_FILE_MB,
          seconds: float | None = None) -> list[Segment]:
    """Segments of a file's bytes, by its type; `LoadError` when there is no usable text.

    Read within a budget of work (`budget.Work`): containers unpack within
    `Limits.for_cap(max_mb)`, and a file that takes more CPU seconds (`seconds`, by default
    derived from its size), memory, elements or pages than its budget fails with the reason,
    having used bounded memory and time.
    """
    work = Work(Limits.for_cap(max_mb), len(data), seconds)
    limits = work.limits
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        segments = _pdf(data, work)
    elif suffix == ".docx":
        segments = [Segment(_docx(data, work))]
    elif suffix in (".html", ".htm"):
        segments = [Segment(_html(decode(data), work))]
    elif suffix in (".csv", ".tsv"):
        segments = [Segment(_csv(decode(data), "\t" if suffix == ".tsv" else ",", work))]
    elif suffix == ".json":
        segments = [Segment(_json(decode(data), work))]
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
        return data.decode("utf-16", "replace")  # a file cut at an odd byte keeps its text
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
    damaged = _damaged_utf8(data)
    if damaged is not None:
        return damaged
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise LoadError("not text in any encoding dskit can detect (binary file?)", "skipped")
    return str(best)


def _damaged_utf8(data: bytes) -> str | None:
    """UTF-8 text with a few bad bytes (a file cut mid-character, a stray byte), the bad ones
    replaced by U+FFFD; None when the bytes do not look like UTF-8 (a legacy encoding's text
    has hardly any valid multi-byte sequences)."""
    text = data.decode("utf-8-sig", "replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    ascii_chars = len(text.encode("ascii", "ignore"))
    good = len(text) - ascii_chars - text.count("\ufffd")  # decoded multi-byte characters
    return text if bad > 0 and 20 * bad <= good else None


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


def _pdf(data: bytes, work: Work) -> list[Segment]:
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError

    # pypdf logs every repair it attempts; the report row already says what went wrong.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    # pypdf stops any one stream from unpacking past our limit (it checks while inflating):
    # no more than a page may draw, since a form's stream is parsed whole when it is drawn.
    limits = work.limits
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
                    raise LoadError("encrypted PDF that cannot be opened: "
                                    f"{_one_line(exc)}") from None
                if not ok:
                    raise LoadError("encrypted PDF: a password is needed; save an unencrypted "
                                    "copy")
            pages = list(_pdf_pages(reader, work))
        except LoadError:
            raise
        except LimitReachedError as exc:
            fix = "raise max_file_mb to include it" if stream == cap else _FIX_PDF
            raise LoadError(f"a stream in this PDF unpacks to more than {_mb(stream)} MB, the "
                            f"limit for a {limits.max_mb:g} MB file (a decompression bomb?); "
                            f"{fix} ({_one_line(exc)})", "skipped") from None
        except FileNotDecryptedError:
            raise LoadError("encrypted PDF: a password is needed; save an unencrypted "
                            "copy") from None
        except Exception as exc:  # pypdf raises many types for broken files
            raise LoadError(f"corrupt or unreadable PDF ({type(exc).__name__}: "
                            f"{_one_line(exc)})") from None
    if not any(p.text.strip() for p in pages):
        raise LoadError(f"PDF with {len(pages)} page(s) but no extractable text (a scan? run "
                        "OCR on it first)", "skipped")
    return pages


class _PdfWork:
    """Counts the operators pypdf's text extraction runs and the text it finds, and stops it
    (from its visitor callbacks) once either passes the file's limits or its budget of work,
    mid-page if need be."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.limits = work.limits
        self.operators = 0
        self.chars = 0
        self.stop: LoadError | None = None

    def operator(self, *_args: Any) -> None:
        # pypdf logs and skips an error raised inside a form, then goes on drawing: raise it
        # again at the next operator, until it reaches the page (and so the caller).
        self.check()
        self.operators += 1
        try:
            self.work.step()
        except LoadError as exc:
            self._fail(exc)
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


def _pdf_pages(reader: Any, work: Work) -> Iterator[Segment]:
    """Each page's text, stopping once the pages' streams, operators or text pass the limits,
    or reading them passes the file's budget of work."""
    limits = work.limits
    unpacked = chars = 0
    extraction = _PdfWork(work)
    seen: set[int] = set()
    work.pages(len(reader.pages))
    for i, page in enumerate(reader.pages, 1):
        work.check()  # parsing a page's stream for text happens before its first operator
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
        text = page.extract_text(visitor_operand_before=extraction.operator,
                                 visitor_text=extraction.text) or ""
        extraction.check()
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


def _docx(data: bytes, work: Work) -> str:
    """The paragraphs and table rows of a Word document, in document order.

    The main part is fed to lxml's parser as it inflates, with a parser target that keeps only
    the text of the paragraphs and rows still open: no tree is built, so memory stays bounded
    whatever the structure (a tree, even one freed paragraph by paragraph, held 0.9–1.4 GB for
    80 MB of sibling elements or of runs in one paragraph); time is bounded by the budget's
    element count.
    """
    from lxml import etree  # the kb extra: imported when a DOCX is read

    limits = work.limits
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        # zipfile never inflates a member past the size its directory declares (it fails on
        # the CRC instead), so checking the declared sizes bounds what is unpacked.
        check_archive(archive, limits)
        text = _Text(limits)
        parser = etree.XMLParser(target=_DocxText(text, work), resolve_entities=False,
                                 no_network=True)
        with archive.open(_docx_main_part(archive)) as xml:
            while chunk := xml.read(1 << 16):
                parser.feed(chunk)
        parser.close()
        return "\n".join(text.parts)
    except LoadError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, etree.XMLSyntaxError) as exc:
        raise LoadError(f"corrupt DOCX ({type(exc).__name__}: {_one_line(exc)})") from None


def _one_line(exc: Exception) -> str:
    """An exception's message on one line (lxml's end in a newline and a position)."""
    return " ".join(str(exc).split())


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


_P, _R, _T, _TC, _TR = (f"{_W}{name}" for name in ("p", "r", "t", "tc", "tr"))
_RUN_TEXT = {_T: "", f"{_W}tab": "\t", f"{_W}br": "\n", f"{_W}cr": "\n"}


class _Joined:
    """Parts joined by `sep`, written into one buffer as they come (a StringIO holds a
    character in 1–4 bytes: a list of a million one-character runs or cells held 84 MB)."""

    def __init__(self, sep: str) -> None:
        self.sep = sep
        self.buffer = io.StringIO()
        self.parts = 0

    def add(self, part: str) -> None:
        if self.parts:
            self.buffer.write(self.sep)
        self.buffer.write(part)
        self.parts += 1

    def text(self) -> str:
        return self.buffer.getvalue()


class _DocxText:
    """An lxml parser target that writes a line per body paragraph and per table row (its
    cells joined by ' | ', a cell's paragraphs by newlines), as python-docx shows them: a run's
    text, a tab as '\\t', a break as '\\n' (tab stops in properties are not text).

    A paragraph inside a cell (a content control's too) belongs to the innermost open cell; a
    nested table's rows are lines of their own, before the row that holds them; a text box's
    paragraphs are lines before the paragraph that anchors them.
    """

    def __init__(self, out: _Text, work: Work) -> None:
        self.out = out
        self.work = work
        self.tags: list[str] = []  # the open elements
        self.paragraphs: list[_Joined] = []  # the open paragraphs' text, run by run
        self.cells: list[_Joined] = []  # the open cells' paragraphs
        self.rows: list[_Joined] = []  # the open rows' cells
        self.chars = 0  # the text gathered so far, whether written out yet or not

    def start(self, tag: str, _attrib: Any) -> None:
        self.work.element()
        parent = self.tags[-1] if self.tags else ""
        self.tags.append(tag)
        if tag == _P:
            self.paragraphs.append(_Joined(""))
        elif tag == _TC:
            self.cells.append(_Joined("\n"))
        elif tag == _TR:
            self.rows.append(_Joined(" | "))
        elif parent == _R and tag in _RUN_TEXT and self.paragraphs:
            self._keep(_RUN_TEXT[tag])

    def data(self, data: str) -> None:
        if len(self.tags) > 1 and self.tags[-1] == _T and self.tags[-2] == _R:
            self._keep(data)

    def end(self, tag: str) -> None:
        self.tags.pop()
        if tag == _P and self.paragraphs:
            self._place(self.paragraphs.pop().text(), self.cells)
        elif tag == _TC and self.cells:
            self._place(self.cells.pop().text(), self.rows)
        elif tag == _TR and self.rows:
            self.out.line(self.rows.pop().text())

    def close(self) -> None:
        """Nothing to return: the lines are in `out`."""

    def _keep(self, piece: str) -> None:
        if piece and self.paragraphs:
            self.chars += len(piece)
            if self.chars > self.out.limits.chars:
                raise self.out.limits.too_much_text()
            self.paragraphs[-1].add(piece)

    def _place(self, text: str, into: list[_Joined]) -> None:
        """`text` into the innermost open container of `into`, else a line of its own."""
        if into:
            into[-1].add(text)
        else:
            self.out.line(text)


def check_archive(archive: zipfile.ZipFile, limits: Limits) -> None:
    """Refuse a ZIP archive whose members unpack to more than the limits allow."""
    total = 0
    for info in archive.infolist():
        if info.file_size > limits.unpacked:
            raise limits.too_big(f"the member {info.filename[:80]!r}", info.file_size)
        total += info.file_size
        if total > limits.unpacked:
            raise limits.too_big("the archive", total)


def _html(text: str, work: Work) -> str:
    """A page's text, a line per text line, without scripts, styles and templates.

    libxml2's HTML parser (through lxml) feeds a parser target, so no tree is built (a tree of
    BeautifulSoup's held 700 MB for a 5 MB page of small elements) and time stays linear:
    Python's `html.parser` rescans an unclosed construct on every feed, and 1 MB of `<a` took
    it over 3 minutes (`bench/bench_hostile_files.py`).
    """
    from lxml import etree  # the kb extra: imported when an HTML file is read

    out = _Text(work.limits)
    parser = etree.HTMLParser(target=_HtmlText(out, work), no_network=True)
    try:
        for start in range(0, len(text), 1 << 16):
            parser.feed(text[start:start + (1 << 16)])
        parser.close()
    except etree.ParserError as exc:  # libxml2 recovers from nearly anything; not from all
        raise LoadError(f"unreadable HTML ({_one_line(exc)})") from None
    return "\n".join(out.parts)


class _HtmlText:
    """An lxml parser target that writes the stripped, non-empty lines of an HTML page's text
    into a `_Text`; the text between two tags is one piece, as a browser shows it."""

    SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self, out: _Text, work: Work) -> None:
        self.out = out
        self.work = work
        self.skipping = 0  # depth inside elements whose content is not text
        self.pending: list[str] = []  # the text since the last tag
        self.size = 0

    def start(self, tag: str, _attrib: Any) -> None:
        self.work.element()
        self._flush()
        if tag in self.SKIP:
            self.skipping += 1

    def end(self, tag: str) -> None:
        self._flush()
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def data(self, data: str) -> None:
        self.work.step()
        if not self.skipping:
            self.size += len(data)
            if self.out.size + self.size > self.out.limits.chars:
                raise self.out.limits.too_much_text()
            self.pending.append(data)

    def comment(self, _text: str) -> None:
        self._flush()

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        text = "".join(self.pending)
        self.pending.clear()
        self.size = 0
        for line in text.splitlines():
            if line := line.strip():
                self.out.line(line)


def _csv(text: str, delimiter: str, work: Work) -> str:
    """One line per row, `header: value` pairs, so a chunk of rows keeps its meaning.

    The header is repeated on every row, so the text can be far longer than the file: it is
    built row by row within the character cap.
    """
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    out = _Text(work.limits)
    try:
        header = next(rows, None)
        if header is None:
            return ""
        body = False
        for row in rows:
            body = True
            work.step()
            out.line("; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v))
    except csv.Error as exc:
        raise LoadError(f"malformed CSV (line {rows.line_num}: {exc})") from None
    return "\n".join(out.parts) if body else delimiter.join(header)


def _json(text: str, work: Work) -> str:
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
        raise LoadError(f"invalid JSON ({_one_line(exc)})") from None
    except RecursionError:
        raise LoadError("JSON nested too deeply to read") from None
    out = _Text(work.limits)
    try:
        for piece in json.JSONEncoder(ensure_ascii=False, indent=1).iterencode(value):
            work.step()
            out.add(piece)
    except RecursionError:
        raise LoadError("JSON nested too deeply to read") from None
    return "".join(out.parts)
