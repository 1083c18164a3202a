"""A budget of work per file: small files built to cost minutes or gigabytes to read stop at
their budget (elements, pages, CPU time, memory) and are reported with the reason; the rest of
an add goes on. Real files, made on the spot; real parsers."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dskit.errors import ConfigurationError, LoadError
from dskit.kb import KnowledgeBase, chunking, loaders
from dskit.kb.budget import Limits, Work
from tests import kbfiles
from tests.test_kb import HashEmbedder

SIBLING = '<w:proofErr w:type="spellStart"/>'
DRAW_TEXT = b"BT /F1 9 Tf 9 9 Td (AAAA) Tj ET\n"


def reason(path: Path, **kwargs: float) -> LoadError:
    with pytest.raises(LoadError) as info:
        loaders.load(path, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def grown_reading(path: Path) -> tuple[str, int]:
    """What a fresh process reading `path` and cutting it into chunks reported, and its peak
    resident MB (VmHWM, its own since the exec) less what it held before."""
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from dskit.errors import LoadError
        from dskit.kb import chunking, loaders
        import lxml.etree, pypdf

        def peak():
            status = open("/proc/self/status").read().split("VmHWM:")[1]
            return int(status.split()[0]) // 1024

        before = peak()
        try:
            segments = loaders.load(Path(sys.argv[1]))
            chunking.split(segments, 512, 64)
            said = f"read {sum(len(s.text) for s in segments)}"
        except LoadError as exc:
            said = f"{exc.status}: {exc}"
        print(peak() - before)
        print(said)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True, timeout=300).stdout.splitlines()
    return out[1], int(out[0])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
@pytest.mark.subprocess
@pytest.mark.parametrize(("name", "count", "element", "inside", "text"), [
    # 66 MB of XML from a 220 KB file: a tree held 0.9 GB
    ("siblings.docx", 2_000_000, SIBLING, "body", "read 4"),
    # one paragraph of a million runs (22 MB of XML): a tree held 0.4 GB
    ("runs.docx", 1_000_000, "<w:r><w:t>字</w:t></w:r>", "paragraph", "read 1000005"),
    # one table row of 300,000 cells: one line of 1.2 M characters without a full stop (a list
    # of its cells, then of its clauses, held 130 MB)
    ("cells.docx", 300_000, "<w:tc><w:p><w:r><w:t>格</w:t></w:r></w:p></w:tc>", "row",
     "read 1200002"),
])
def test_docx_of_millions_of_elements_is_read_and_chunked_in_bounded_memory(
        tmp_path: Path, name: str, count: int, element: str, inside: str, text: str) -> None:
    path = kbfiles.docx_elements(tmp_path / name, count, element, inside)
    assert path.stat().st_size < 300_000
    said, grew = grown_reading(path)
    assert said == text
    assert grew < 60, f"reading grew the process by {grew} MB"


def test_docx_over_its_element_budget_fails_with_the_reason(tmp_path: Path) -> None:
    # 1 MB may unpack to 4 MB: 524,288 elements; 600,000 empty ones take 2.4 MB
    path = kbfiles.docx_elements(tmp_path / "siblings.docx", 600_000, "<a/>")
    error = reason(path, max_mb=1)
    assert error.status == "failed"
    assert "over 524,288 elements, the most a 1 MB file may have" in str(error)
    assert "max_file_mb" in str(error)


def test_docx_text_in_cells_content_controls_text_boxes_and_nested_tables(tmp_path: Path
                                                                          ) -> None:
    def p(text: str) -> str:
        return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"

    body = (
        p("会议纪要")
        + "<w:tbl><w:tr>"
        + "<w:tc>" + p("负责人") + "</w:tc>"
        # a content control around the cell's paragraph: its text belongs to the cell
        + "<w:tc><w:sdt><w:sdtContent>" + p("张伟") + "</w:sdtContent></w:sdt></w:tc>"
        # a nested table: its row is a line of its own, before the row that holds it
        + "<w:tc>" + p("外") + "<w:tbl><w:tr><w:tc>" + p("内一") + "</w:tc><w:tc>" + p("内二")
        + "</w:tc></w:tr></w:tbl></w:tc>"
        + "</w:tr></w:tbl>"
        # a text box anchored in a paragraph: its paragraph first, then the anchoring one
        + "<w:p><w:r><w:t xml:space='preserve'>见 </w:t></w:r><w:r><w:pict><w:txbxContent>"
        + p("框内") + "</w:txbxContent></w:pict></w:r><w:r><w:t>附录</w:t><w:tab/>"
        + "<w:t>A</w:t><w:br/><w:t>B</w:t></w:r><w:del><w:r><w:delText>删</w:delText></w:r>"
        + "</w:del></w:p>")
    path = kbfiles.docx_body(tmp_path / "table.docx", body)
    assert loaders.load(path)[0].text.splitlines() == [
        "会议纪要", "内一 | 内二", "负责人 | 张伟 | 外", "框内", "见 附录\tA", "B"]


@pytest.mark.parametrize("body", [
    "<!" * 500_000, "<a" * 500_000, "</" * 500_000, "<?" * 500_000,
    "<p>x</p><a b=\"" + "<" * 1_000_000, "&#" * 500_000, "<p>前言</p><!--" + "x" * 1_000_000,
    "<p>" + "<a " * 300_000,
])
def test_html_built_to_be_slow_reads_within_its_budget(tmp_path: Path, body: str) -> None:
    # Python's html.parser rescanned these on every feed: 1 MB of "<a" took over 3 minutes.
    # libxml2 reads each in a fraction of a second; the budget of 1 s of CPU would stop it.
    path = kbfiles.write(tmp_path / "page.html", body)
    try:
        segments = loaders.load(path, seconds=1.0)
    except LoadError as exc:
        assert exc.status == "skipped" and str(exc) == "no text in the file"
    else:
        assert segments[0].text.strip()


def test_html_text_lines_and_skipped_elements(tmp_path: Path) -> None:
    path = kbfiles.write(tmp_path / "page.html", (
        "<html><head><title>标题</title><style>p {color: red}</style></head><body>"
        "<script>var x = '<p>no</p>';</script><noscript>no</noscript><template><p>no</p>"
        "</template><h1>长城</h1><p>x &amp; y &#20013; <b>粗</b>体</p>\n<pre>line 1\n  line 2"
        "</pre><!-- a comment --><p>after</p></body></html>"))
    assert loaders.load(path)[0].text.splitlines() == [
        "标题", "长城", "x & y 中", "粗", "体", "line 1", "line 2", "after"]


def test_pdf_over_its_cpu_budget_fails_and_the_reason_says_which_setting(tmp_path: Path
                                                                         ) -> None:
    # 2,000 pages sharing one content stream: about 6 minutes of pypdf's time, unbounded
    path = kbfiles.pdf_with_stream(tmp_path / "shared.pdf", DRAW_TEXT * 1_200, pages=2_000)
    assert path.stat().st_size < 400_000
    error = reason(path, seconds=0.5)
    assert error.status == "failed"
    size = round(path.stat().st_size / 1024)
    assert f"reading it took over 0.5 s of CPU, the budget for a {size} KB file" in str(error)
    assert "max_file_seconds" in str(error)


def test_a_form_drawn_over_and_over_stops_at_the_cpu_budget(tmp_path: Path) -> None:
    # The budget is passed inside the form, where pypdf logs and skips errors: it must still
    # reach the caller (before, pypdf went on drawing the form 100 times: 2.6 GB, 2 minutes).
    path = kbfiles.pdf_with_form(tmp_path / "form.pdf", DRAW_TEXT * 20_000, draws=100)
    assert "s of CPU" in str(reason(path, seconds=0.5))


def test_pdf_over_its_page_budget_fails_before_any_page_is_read(tmp_path: Path) -> None:
    path = kbfiles.pdf_with_stream(tmp_path / "pages.pdf", DRAW_TEXT, pages=150)
    error = reason(path, max_mb=0.1)  # 100 pages at most
    assert error.status == "failed"
    assert str(error) == ("it has 150 pages, over the 100 a 0.1 MB file may have; raise "
                          "max_file_mb to include it")
    assert len(loaders.load(path, max_mb=1)) == 150  # 500 pages at most


def test_memory_over_the_budget_is_stopped() -> None:
    limits = Limits.for_cap(20)
    assert limits.memory == 500 * 2**20
    work = Work(dataclasses.replace(limits, memory=16 * 2**20), 1000)
    work.check()  # nothing held yet
    held = b"x" * (64 * 2**20)  # written, so resident
    with pytest.raises(LoadError) as info:
        work.check()
    assert str(info.value) == ("reading it took over 16.0 MB of memory, the budget for a 20 MB "
                               "file (built to be costly to read?); raise max_file_mb to "
                               "include it")
    del held


def test_steps_look_at_time_only_every_so_often() -> None:
    work = Work(Limits.for_cap(1), 1000, seconds=1e-9)
    work.step(4095)  # under CHECK_EVERY: no look yet
    with pytest.raises(LoadError, match="s of CPU"):
        work.step()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
@pytest.mark.subprocess
@pytest.mark.parametrize(("name", "text"), [
    ("words.txt", "a " * 1_000_000),  # one sentence of 1 M words: counting it held them all
    ("chinese.txt", "长城" * 1_500_000),  # one "word" of 3 M characters
    ("lines.txt", ".\n" * 1_000_000),  # 1 M sentences
])
def test_text_without_full_stops_is_chunked_in_bounded_memory(tmp_path: Path, name: str,
                                                               text: str) -> None:
    said, grew = grown_reading(kbfiles.write(tmp_path / name, text))
    assert said == f"read {len(text)}"
    assert grew < 60, f"reading and chunking grew the process by {grew} MB"


@pytest.mark.parametrize("text", [
    "." * 300_000, "." + "'" * 300_000, ".\t" * 150_000, "," * 300_000, "。" * 300_000,
])
def test_chunking_punctuation_runs_is_linear_and_keeps_every_character(text: str) -> None:
    # "." * 500,000 took minutes: the sentence regex retried from every dot of the run
    pieces = chunking.split([loaders.Segment(text)], 512, 0)
    assert "".join("".join(p.text for p in pieces).split()) == "".join(text.split())


def test_chunk_line_numbers_are_those_of_the_text_across_overlaps() -> None:
    lines = [f"第{i}行：会议记录 line {i} of the report." for i in range(1, 3001)]
    text = "\n".join(lines)
    pieces = chunking.split([loaders.Segment(text, line=5)], 64, 16)
    assert len(pieces) > 100
    for piece in pieces:
        start = text.index(piece.text)
        first = 5 + text.count("\n", 0, start)
        assert (piece.line_start, piece.line_end) == (first, first + piece.text.count("\n"))


def test_an_add_reports_the_file_over_budget_and_keeps_the_rest(tmp_path: Path) -> None:
    docs = kbfiles.corpus(tmp_path / "docs")
    kbfiles.pdf_with_stream(docs / "shared.pdf", DRAW_TEXT * 1_200, pages=2_000)
    kbfiles.write(docs / "slow.html", "<a" * 500_000 + "<p>龙井是绿茶。</p>")
    kb = KnowledgeBase("budget", data_dir=tmp_path / "home", embed_model=HashEmbedder(),
                       max_file_seconds=1.0)
    report = kb.add(docs, progress=False).set_index("source")
    assert report.loc["docs/shared.pdf", "status"] == "failed"
    assert "reading it took over 1.0 s of CPU" in report.loc["docs/shared.pdf", "reason"]
    assert report.loc["docs/slow.html", "status"] == "added"
    assert (report.drop("docs/shared.pdf").status == "added").all(), report
    assert kb.search("龙井", k=1).iloc[0].source == "docs/slow.html"


@pytest.mark.parametrize("value", [0, -1, float("nan"), "10"])
def test_budget_settings_are_checked_before_anything_is_written(tmp_path: Path,
                                                               value: object) -> None:
    with pytest.raises(ConfigurationError, match="max_file_seconds must be a positive number"):
        KnowledgeBase("x", data_dir=tmp_path / "home", max_file_seconds=value)  # type: ignore
    assert not (tmp_path / "home").exists()
