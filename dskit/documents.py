"""Documents to keep and share: a reply (or several) as Markdown, a standalone HTML page, JSON.

The rules of `display.py` hold here too, since model output is untrusted: in HTML the answer is
Markdown rendered without raw HTML, links are inert until clicked and `javascript:` links do not
survive, the reasoning is escaped text; every page also carries a Content-Security-Policy that
allows no script and no request (images only as `data:` URIs), so nothing it holds can run or
call out. In Markdown files raw HTML in an answer is shown as text and an image is written as
a link (a viewer would fetch it: the chat-UI exfiltration path). Whatever is written passes
`redact()`: API keys and tokens set in the environment, and the user's home folder, never reach
a file.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .confidence_view import confidence_details
from .display import MATH, literal_markers, markdown_html, reply_html
from .errors import ConfigurationError
from .errors import redact as redact_known
from .language import size_label
from .weights.files import STANDINS

if TYPE_CHECKING:
    from .reply import Reply

#: The file kinds `save_document` writes, by suffix.
SUFFIXES = (".md", ".html", ".htm", ".json")

# No script, no frames, no fetches: the page shows what it holds and nothing else.
_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'")

_PAGE_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC','PingFang SC',"
    "sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;padding:.25em .6em;"
    "text-align:left;vertical-align:top}th{background:#f3f4f7}"
    ".dskit-header td:first-child{color:#667;white-space:nowrap}"
    "pre{white-space:pre-wrap}img{max-width:100%}h1,h2,h3{line-height:1.2}"
    ".dskit-section{border-top:1px solid #dde;margin-top:1.5em;padding-top:.5em}"
)


# --- what never goes into a document ----------------------------------------------------------



def redact(text: str) -> str:
    """`text` without secrets (`errors.redact`: known ones in any encoding, and by shape) or
    the home path."""
    text = redact_known(text)
    home = str(Path.home())
    if len(home) > 1:
        text = re.sub(re.escape(home) + r"(?=[/\\]|\b|$)", "~", text)
    return text


# --- untrusted Markdown in a Markdown file ------------------------------------------------------

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")


def safe_markdown(text: str) -> str:
    """Markdown with its raw HTML shown as text (`<` → `&lt;` outside code), so a viewer that
    renders HTML in Markdown files runs nothing an answer contains."""
    out: list[str] = []
    fence: str | None = None
    closer: str | None = None  # the end of a display formula that spans lines
    for line in text.splitlines():
        m = _FENCE.match(line)
        if closer is not None:
            if closer in line:
                closer = None
            out.append(_math_as_written(line))
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            out.append(line)
            continue
        if m:
            fence = m.group(1)
            out.append(line)
            continue
        pieces, last = [], 0
        for span in _CODE_SPAN.finditer(line):
            pieces.append(_inert(line[last:span.start()]))
            pieces.append(span.group(0))
            last = span.end()
        rest, closer = _math_opened(line[last:])
        pieces.append(_inert(rest))
        out.append(literal_markers("".join(pieces)))
    return "\n".join(out)


def _math_opened(text: str) -> tuple[str, str | None]:
    """`text` with its formulas as written, and the closing delimiter of a display formula
    it opens and leaves open (`\\[` or `$$` at the end of a line), if any."""
    pieces, last = [], 0
    for m in MATH.finditer(text):
        pieces += [text[last:m.start()], _math_as_written(m.group(0))]
        last = m.end()
    rest = text[last:]
    for opener, closer in (("\\[", "\\]"), ("$$", "$$")):
        at = rest.find(opener)
        if at >= 0 and rest[at - 1:at] != "\\":
            return "".join(pieces) + rest[:at] + _math_as_written(rest[at:]), closer
    return "".join(pieces) + rest, None


def _math_as_written(formula: str) -> str:
    """A formula a Markdown viewer shows as written: Markdown's backslash escapes would eat
    the backslash of `\\[`, `\\{` or `\\,`, and `*` or `_` would turn into emphasis."""
    return re.sub(r"\\(?=[!-/:-@[-`{-~])|[*_]", lambda m: "\\" + m.group(0), formula)


def _inert(text: str) -> str:
    text = _IMAGE.sub("[image: ", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        if "<" in text else text


#: The start of every Markdown image form (`![a](url)`, `![a][ref]`, `![a]`): a viewer fetches
#: the URL as it opens the file, which is how a chat answer leaks data to a server (the query
#: string). Written as a link instead, nothing is fetched unless the reader clicks it.
_IMAGE = re.compile(r"(?<!\\)!\[")


def folded_text_markdown(summary: str, text: str) -> str:
    """A `<details>` block holding `text` as escaped, preformatted text (reasoning)."""
    return (f"<details><summary>{html.escape(summary)}</summary>\n\n"
            f"<pre>{html.escape(text)}</pre>\n\n</details>")


# --- one reply --------------------------------------------------------------------------------

def options_text(options: dict[str, Any]) -> str:
    """`temperature 0.6 · top_p 0.95 · max_tokens 512`, or `defaults`."""
    return " · ".join(f"{k} {v}" for k, v in options.items()) or "defaults"


def reply_facts(reply: Reply, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The header of a reply: model, backend, options, stats, how it ended, its verdict."""
    model = reply.model + (" (a stand-in, not DeepSeek)" if reply.model in STANDINS else "")
    rows = [("model", model), ("backend", reply.backend or "?"),
            ("options", options_text(reply.options)),
            ("stats", reply.stats.summary() or "none"), ("status", reply.status)]
    if reply.verdict is not None:
        rows.append(("verdict", str(reply.verdict)))
    rows += list(extra)
    return rows


def _reasoning_label(reply: Reply) -> str:
    if reply.reasoned and not reply.thinking.strip():
        return "Reasoning (empty: the model answered directly)"
    size = size_label(reply.thinking)
    return "Reasoning" + (f" · {size}" if size else "")


def reply_markdown(reply: Reply, heading: str = "", level: int = 2,
                   extra: Sequence[tuple[str, str]] = ()) -> str:
    """A reply as Markdown: a header table, the reasoning folded, the answer as Markdown."""
    lines: list[str] = []
    if heading:
        lines += [f"{'#' * level} {_inert(_one_line(heading))}", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {k} | {table_cell(v)} |" for k, v in reply_facts(reply, extra)]
    lines.append("")
    if reply.thinking.strip() or reply.reasoned:
        lines += [folded_text_markdown(_reasoning_label(reply), reply.thinking.strip()), ""]
    if reply.answer.strip():
        lines += [safe_markdown(reply.answer.strip()), ""]
    else:
        lines += [f"*[{_one_line(reply.status)}]*", ""]
    lines += [f"> note: {_inert(_one_line(n))}" for n in reply.notes]
    return "\n".join(lines).rstrip() + "\n"


def facts_html(rows: Sequence[tuple[str, str]], css: str = "dskit-header") -> str:
    """Key/value rows as an escaped HTML table."""
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='{css}'>{body}</table>"


def reply_section_html(reply: Reply, heading: str = "", level: int = 2,
                       extra: Sequence[tuple[str, str]] = ()) -> str:
    """A reply as an HTML section: header table, reasoning folded, the answer, notes."""
    head = f"<h{level}>{html.escape(heading)}</h{level}>" if heading else ""
    shaded = confidence_details(reply) if reply.tokens else ""
    return (f"<section class='dskit-section'>{head}{facts_html(reply_facts(reply, extra))}"
            f"{reply_html(reply, footer=False)}{shaded}</section>")


def reply_data(reply: Reply) -> dict[str, Any]:
    """A reply as plain JSON-ready data (its stats, status, verdict and options included)."""
    data = dataclasses.asdict(reply)
    # In the APIs' shape (bytes as numbers), with the phase each token belongs to.
    data["tokens"] = [{**t.as_dict(), "phase": t.phase} for t in reply.tokens]
    data["status"] = reply.status
    data["stats"]["tokens_per_s"] = reply.stats.tokens_per_s
    return data


# --- pages and files --------------------------------------------------------------------------

def page_html(title: str, body: str) -> str:
    """A standalone HTML page: escaped title, `body` (already safe HTML), a strict CSP."""
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
            "<meta name='referrer' content='no-referrer'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>"
            f"<body>{body}</body></html>\n")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (redacted) to `path` atomically: a crash leaves the old file or the new."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(redact(text), encoding="utf-8")
    os.replace(tmp, target)
    return target


def save_document(path: str | os.PathLike[str], *, markdown: Callable[[], str],
                  html_page: Callable[[], str], data: Callable[[], Any]) -> Path:
    """Write `path` as Markdown, HTML or JSON, chosen by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".md":
        return write_text(path, markdown())
    if suffix in (".html", ".htm"):
        return write_text(path, html_page())
    if suffix == ".json":
        return write_text(path, json.dumps(data(), ensure_ascii=False, indent=2, default=str))
    raise ConfigurationError(
        f"cannot save {str(path)!r}: name the file .md (Markdown), .html (a web page) or .json")


def table_cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes and HTML escaped, images as links."""
    return html.escape(_IMAGE.sub("[image: ", _one_line(text))).replace("|", "\\|")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- a conversation ---------------------------------------------------------------------------

Turn = tuple[str, "Reply"]


def conversation_markdown(title: str, turns: Sequence[Turn], system: str | None = None) -> str:
    """A conversation as Markdown: each user turn, then the reply with its header."""
    lines = [f"# {_one_line(title)}", ""]
    if system:
        lines += ["**System prompt**", "", safe_markdown(system), ""]
    for i, (prompt, reply) in enumerate(turns, 1):
        lines += [f"## Turn {i}", "", "**You**", "", safe_markdown(prompt), ""]
        lines.append(reply_markdown(reply, f"Reply · {reply.model}", level=3))
    if not turns:
        lines.append("*(no turns yet)*")
    return "\n".join(lines).rstrip() + "\n"


def conversation_html(title: str, turns: Sequence[Turn], system: str | None = None) -> str:
    """A conversation as a standalone HTML page."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    if system:
        body.append(f"<p><b>System prompt</b></p><pre>{html.escape(system)}</pre>")
    for i, (prompt, reply) in enumerate(turns, 1):
        body.append(f"<h2>Turn {i}</h2><p><b>You</b></p>"
                    f"<div class='dskit-prompt'>{markdown_html(prompt)}</div>")
        body.append(reply_section_html(reply, f"Reply · {reply.model}", level=3))
    if not turns:
        body.append("<p><i>(no turns yet)</i></p>")
    return page_html(title, "".join(body))
