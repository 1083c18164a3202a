"""A reply's tokens shaded by how confident the model was in each (DeepConf's token
confidence), with a legend, the alternatives on hover and the least confident stretch marked.

Model text is untrusted: every token, alternative and label is escaped; the only markup is
ours. The shades are a translucent warm colour over whatever the page's background is, so
they read in JupyterLab's light and dark themes alike.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .evals.confidence import groups, token_confidence

if TYPE_CHECKING:
    from .backends.base import Token
    from .reply import Reply

#: Bands of token confidence above its floor log k (k alternatives equally likely), from the
#: least confident up; the last band is left unshaded.
_BANDS = (1.0, 2.5, 5.0)
_ALPHA = (0.55, 0.32, 0.14)
_STYLE = (
    "<style>.dskit-conf{line-height:1.6}.dskit-conf .dskit-conf-text{white-space:pre-wrap;"
    "font-size:.92em}.dskit-conf .dskit-conf-low{outline:2px dashed rgba(220,50,40,.9);"
    "outline-offset:1px;box-decoration-break:clone;-webkit-box-decoration-break:clone}"
    ".dskit-conf .dskit-conf-legend{font-size:.82em;opacity:.85;margin:.2em 0 .4em}"
    ".dskit-conf .dskit-conf-legend span{padding:0 .4em;margin-right:.3em;border-radius:3px}"
    ".dskit-conf h4{margin:.5em 0 .2em;font-size:.95em}</style>"
)


def edges(k: int) -> list[float]:
    """The band edges for tokens with `k` alternatives (log k is the lowest value possible)."""
    floor = math.log(max(k, 1))
    return [floor + b for b in _BANDS]


def _shade(c: float, bands: Sequence[float]) -> str:
    for edge, alpha in zip(bands, _ALPHA, strict=True):
        if c < edge:
            return f"background:rgba(240,110,40,{alpha})"
    return ""


def _hover(token: Token, c: float) -> str:
    others = ", ".join(f"{alt!r} {math.exp(lp):.2f}" for alt, lp in token.top[:5])
    return (f"p {math.exp(token.logprob):.2f} · confidence {c:.2f}"
            + (f" · most likely: {others}" if others else ""))


def _spans(tokens: Sequence[Token], confs: Sequence[float], bands: Sequence[float],
           low: range) -> str:
    out: list[str] = []
    inside = False
    for i, (token, c) in enumerate(zip(tokens, confs, strict=True)):
        if i in low and not inside:
            out.append('<span class="dskit-conf-low" title="the least confident stretch">')
            inside = True
        elif i not in low and inside:
            out.append("</span>")
            inside = False
        style = _shade(c, bands)
        out.append(f'<span style="{style}" title="{html.escape(_hover(token, c), quote=True)}">'
                   f"{html.escape(token.text)}</span>")
    if inside:
        out.append("</span>")
    return "".join(out)


def legend(k: int) -> str:
    """The legend: what each shade means for tokens with `k` alternatives."""
    e = edges(k)
    labels = [f"below {e[0]:.1f}: torn between alternatives", f"{e[0]:.1f}–{e[1]:.1f}",
              f"{e[1]:.1f}–{e[2]:.1f}", f"{e[2]:.1f} and up: sure"]
    styles = [_shade(x, e) for x in (e[0] - 0.01, e[1] - 0.01, e[2] - 0.01, e[2])]
    items = "".join(f'<span style="{s}">{html.escape(t)}</span>'
                    for s, t in zip(styles, labels, strict=True))
    return (f'<div class="dskit-conf-legend">Token confidence (top-{k}; hover a token for its '
            f"probability and alternatives): {items} · dashed: the least confident stretch</div>")


def confidence_html(reply: Reply, *, window: int = 32) -> str:
    """The reply's reasoning and answer, each token shaded by its confidence."""
    tokens = list(reply.tokens)
    if not tokens:
        why = "no log-probabilities: ask with logprobs=True" \
            if "top_logprobs" not in reply.options else "no tokens came back"
        return f'<div class="dskit-conf">{html.escape(why)}</div>'
    if not all(t.top for t in tokens):
        return ('<div class="dskit-conf">shading needs each token\'s alternatives: ask with '
                "top_logprobs=5 (0 returns none)</div>")
    confs = [token_confidence(t) for t in tokens]
    k = len(tokens[0].top)
    bands = edges(k)
    grouped = groups(confs, window)
    start = grouped.index(min(grouped))
    low = range(start, start + min(window, len(confs)))
    mean = sum(confs) / len(confs)
    head = (f"Least confident {len(low)}-token stretch: tokens {low.start + 1}–{low.stop}, "
            f"group confidence {min(grouped):.2f} (the reply's mean {mean:.2f}).")
    parts = [_STYLE, '<div class="dskit-conf">', legend(k),
             f'<div class="dskit-conf-legend">{html.escape(head)}</div>']
    phases: tuple[tuple[str, str], ...] = (("thinking", "Reasoning"), ("answer", "Answer"))
    if not any(t.phase for t in tokens):
        phases = (("", "Reply"),)  # tokens read outside a chat stream carry no phase
    for phase, title in phases:
        idx = [i for i, t in enumerate(tokens) if t.phase == phase]
        if not idx:
            continue
        offset = idx[0]
        shown = _spans([tokens[i] for i in idx], [confs[i] for i in idx], bands,
                       range(low.start - offset, low.stop - offset))
        parts.append(f"<h4>{title} · {len(idx)} tokens</h4>"
                     f'<div class="dskit-conf-text dskit-conf-{phase or "reply"}">{shown}</div>')
    parts.append("</div>")
    return "".join(parts)


def confidence_details(reply: Reply, *, window: int = 32, open_: bool = False) -> str:
    """The shaded view folded under a "Confidence" summary (exports, side-by-side columns)."""
    c = reply.confidence(window=window, tail=window) if reply.tokens and reply.tokens[0].top \
        else None
    label = "Confidence" + (f" · mean {c.mean:.2f}, lowest {c.lowest:.2f}" if c else "")
    return (f"<details class='dskit-confidence'{' open' if open_ else ''}><summary>"
            f"{html.escape(label)}</summary>{confidence_html(reply, window=window)}</details>")
