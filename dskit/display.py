"""Safe rendering of model output: collapsible reasoning, Markdown answer, stats line.

Model output is untrusted: raw HTML is escaped, images become plain links (nothing loads by
itself), and links open only when clicked, in a new tab, without a referrer.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .language import size_label

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

    from .reply import Reply

_STYLE = (
    "<style>.dskit-reply details{margin:.3em 0;padding:.3em .6em;border-left:3px solid #9aa;"
    "background:rgba(127,127,127,.08)}.dskit-reply summary{cursor:pointer;color:#667}"
    ".dskit-reply .dskit-thinking{white-space:pre-wrap;color:#556;font-size:.92em}"
    ".dskit-reply .dskit-stats{color:#889;font-size:.85em;margin-top:.3em}"
    ".dskit-reply .dskit-note{color:#a60;font-size:.9em}</style>"
)


#: Maths as models write it: `\\[…\\]`, `\\(…\\)`, `$$…$$`, and `$…$` (no space inside the
#: dollars and no digit after the closing one, so "$5 and $10" stays text, as in Pandoc).
MATH = re.compile(r"\\\[(?:.+?)\\\]|\\\((?:.+?)\\\)|\$\$(?:.+?)\$\$"
                  r"|\$(?=[^\s$])[^$\n]*?[^\s$\\]\$(?!\d)", re.S)
#: A line that is nothing but a list or heading marker ("3.", "1)", "-", "#"): Markdown makes it
#: an empty list item or heading, so an answer "3." would show nothing.
_BARE_MARKER = re.compile(r"^(\s{0,3})(\d{1,9})([.)])(\s*)$|^(\s{0,3})([-+*#])(\s*)$", re.M)


def literal_markers(text: str) -> str:
    """`text` with each line that is only a list or heading marker escaped, so it shows."""
    def escape(m: re.Match[str]) -> str:
        if m.group(2) is not None:
            return f"{m.group(1)}{m.group(2)}\\{m.group(3)}{m.group(4)}"
        return f"{m.group(5)}\\{m.group(6)}{m.group(7)}"

    return _BARE_MARKER.sub(escape, text)


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    """A CommonMark renderer with raw HTML disabled, images rendered as inert links, and maths
    kept as written (Markdown's escapes would eat `\\[`' backslash), for MathJax to render."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table")
    md.enable("strikethrough")

    def image(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tok = tokens[idx]
        alt = html.escape(tok.content or "image")
        src = html.escape(tok.attrGet("src") or "")
        return f'[image: {alt} <code>{src}</code>]'

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return renderer.renderToken(tokens, idx, options, env)

    def math(state: Any, silent: bool) -> bool:
        if state.src[state.pos] not in "\\$":
            return False
        m = MATH.match(state.src, state.pos)
        if m is None:
            return False
        if not silent:
            state.push("dskit_math", "", 0).content = m.group(0)
        state.pos = m.end()
        return True

    def math_text(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        return f'<span class="dskit-math">{html.escape(tokens[idx].content)}</span>'

    md.inline.ruler.before("escape", "dskit_math", math)
    md.add_render_rule("dskit_math", math_text)
    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return md


def markdown_html(text: str) -> str:
    """Render untrusted Markdown to safe HTML (maths as written, a bare "3." as text)."""
    return _md().render(literal_markers(text))


def reply_html(reply: Reply, *, open_thinking: bool = False, streaming: bool = False,
               footer: bool = True) -> str:
    """HTML for a notebook: reasoning in a collapsible block, the answer as Markdown, stats
    (`footer=False` where a status line shows them already, as in the widgets)."""
    parts = [_STYLE, '<div class="dskit-reply">']
    if reply.tool_calls:
        rows = "".join(
            f'<li class="dskit-tool-call" data-ok="{str(c.ok).lower()}">'
            f"<code>{html.escape(c.text())}</code></li>" for c in reply.tool_calls)
        parts.append(f'<details class="dskit-tools"><summary>Tool calls · '
                     f'{len(reply.tool_calls)}</summary><ol>{rows}</ol></details>')
    if reply.thinking.strip() or reply.reasoned:
        label = "Reasoning" + (" (thinking…)" if streaming and not reply.answer else "")
        if reply.reasoned and not reply.thinking.strip():
            label = "Reasoning (empty: the model answered directly)"
        size = size_label(reply.thinking)
        label += f" · {size}" if size else ""
        parts.append(
            f"<details{' open' if open_thinking else ''}><summary>{html.escape(label)}</summary>"
            f'<div class="dskit-thinking">{html.escape(reply.thinking.strip())}</div></details>'
        )
    if reply.answer.strip():
        parts.append(f'<div class="dskit-answer">{markdown_html(reply.answer)}</div>')
    elif not streaming:
        parts.append(f'<div class="dskit-note">[{html.escape(reply.status)}]</div>')
    if not streaming and reply.answer.strip() and reply.status != "ok":
        parts.append(f'<div class="dskit-note">[{html.escape(reply.status)}]</div>')
    if reply.verdict is not None:
        v = reply.verdict
        colour = {True: "#1a7f37", False: "#c22"}.get(v.correct, "#888")  # type: ignore[arg-type]
        parts.append(f'<div class="dskit-verdict" data-correct="{str(v.correct).lower()}" '
                     f'style="color:{colour};font-weight:600">{html.escape(str(v))}</div>')
    if reply.sources:
        items = "".join(
            f"<li><b>[{s.n}]</b> {html.escape(s.source)}"
            f"{' (' + html.escape(s.location) + ')' if s.location else ''} · score {s.score:.3f}"
            f"<details><summary>passage</summary><div class='dskit-thinking'>"
            f"{html.escape(s.text)}</div></details></li>" for s in reply.sources)
        parts.append(f'<div class="dskit-sources"><b>Sources</b><ol style="list-style:none;'
                     f'padding-left:0">{items}</ol></div>')
    parts.extend(f'<div class="dskit-note">{html.escape(n)}</div>' for n in reply.notes)
    if footer and not streaming:
        parts.append(f'<div class="dskit-stats">{html.escape(reply.footer())}</div>')
    parts.append("</div>")
    return "".join(parts)
