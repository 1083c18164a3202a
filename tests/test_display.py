"""Rendering: collapsible reasoning, Markdown answers, and untrusted output kept inert."""

from __future__ import annotations

from dskit.display import markdown_html, reply_html
from dskit.reply import Reply, Stats


def test_reasoning_is_collapsible_and_answer_is_markdown():
    r = Reply(thinking="step 1 < step 2", answer="**42** 是答案", model="m", backend="b",
              reasoned=True, stats=Stats(eval_tokens=10, eval_time=0.5, ttft=0.1))
    out = reply_html(r)
    assert "<details>" in out and "<summary>Reasoning" in out
    assert "step 1 &lt; step 2" in out
    assert "<strong>42</strong> 是答案" in out
    assert "20.0 tok/s" in out and "TTFT 0.10 s" in out
    assert "<details open>" in reply_html(r, open_thinking=True)


def test_model_html_is_escaped():
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)><iframe src="http://e"></iframe>'
    out = reply_html(Reply(thinking=evil, answer=evil, reasoned=True))
    assert "<script" not in out and "<img" not in out and "<iframe" not in out
    assert "&lt;script&gt;" in out


def test_markdown_images_do_not_load_and_links_are_inert_until_clicked():
    out = markdown_html("![tracker](http://evil.example/pixel.png) [site](http://example.com)"
                        " [js](javascript:alert(1))")
    assert "<img" not in out
    assert "[image: tracker" in out
    assert 'rel="noopener noreferrer nofollow"' in out and 'target="_blank"' in out
    assert 'href="javascript' not in out


def test_no_answer_is_said_not_silent():
    r = Reply(thinking="still going", reasoned=True, unfinished_reasoning=True,
              done_reason="length")
    assert "no answer" in reply_html(r)
    assert "[no answer: stopped while still reasoning]" in r.text()
    assert r.status.startswith("no answer")


def test_empty_reasoning_block_is_shown_as_such():
    r = Reply(answer="Hi", reasoned=True)
    assert "empty" in reply_html(r)
    assert "[thinking: empty]" in r.text()


def test_plain_text_rendering():
    r = Reply(thinking="t", answer="a", model="m", backend="embedded", reasoned=True,
              notes=["a note"])
    text = str(r)
    assert text.startswith("[thinking]\nt\n[/thinking]")
    assert "a\n" in text and "[note] a note" in text and "embedded:m" in text
    assert "[thinking]" not in r.text(show_thinking=False)


def test_tool_calls_are_listed_and_escaped():
    from dskit.tools import ToolCall

    evil = "<img src=x onerror=alert(1)>"
    r = Reply(answer="done", tool_calls=[
        ToolCall("search", {"query": evil}, result=f"<b>{evil}</b>", seconds=0.25),
        ToolCall("calc", {"a": 1}, error=f"ValueError: {evil}")])
    out = reply_html(r)
    assert "Tool calls · 2" in out and 'data-ok="true"' in out and 'data-ok="false"' in out
    assert "<img" not in out and "<b>" not in out and "&lt;img src=x" in out
    assert "0.25 s" in out and "✗ ValueError" in out


def test_an_answer_that_is_only_a_list_or_heading_marker_stays_visible():
    # Issue 27: notebook 05's answer "3." rendered as an empty ordered list item.
    for answer, shown in (("3.", "3."), ("1. ", "1."), ("3)", "3)"), ("-", "-"), ("#", "#"),
                          ("答案：\n\n3.", "3.")):
        out = markdown_html(answer)
        assert "<ol" not in out and "<ul" not in out and "<h1" not in out, answer
        assert f"{shown}</p>" in out, (answer, out)
        page = reply_html(Reply(answer=answer, done_reason="stop"))
        assert f"{shown}</p>" in page
    assert "<ol>" in markdown_html("1. 一\n2. 二")  # a real list is still one
    assert "<h1>标题</h1>" in markdown_html("# 标题")


def test_maths_keeps_its_backslashes_and_stays_inert():
    # Issue 27: the report showed \[ as "[" (Markdown's escapes ate the backslash).
    answer = (r"面积是 \[ S = \frac{1}{2} \{a_1, b_1\} \] 平方米，其中 \( x_1 * y_2 \) 与 "
              r"$a_1 * b_1$。")
    out = markdown_html(answer)
    for formula in (r"\[ S = \frac{1}{2} \{a_1, b_1\} \]", r"\( x_1 * y_2 \)", "$a_1 * b_1$"):
        assert f'<span class="dskit-math">{formula}</span>' in out
    assert "<em>" not in out
    display = markdown_html("所以\n\\[\nx_1 = \\{3\\}\n\\]\n完")
    assert "\\[\nx_1 = \\{3\\}\n\\]" in display
    assert "costs $5 and $10" in markdown_html("costs $5 and $10")  # money, not maths
    evil = markdown_html(r"\[<script>alert(1)</script>\] $<img src=x onerror=alert(1)>$")
    assert "<script" not in evil and "<img" not in evil and "&lt;script&gt;" in evil
    assert "<code>\\[x\\]</code>" in markdown_html("`\\[x\\]`")  # code stays code
