"""The notebooks as people use them: JupyterLab in headless Chromium, widgets clicked for real."""

from __future__ import annotations

import re

import pytest

from .lab import (
    CHAT_PROMPT,
    FINISHED_AFTER,
    MODEL_TIMEOUT_MS,
    check_chat_reply,
    click_and_wait,
    expect,
    send_prompt,
    send_until_answered,
    set_number,
    status_serial,
)

# Whole notebooks on a 2-core machine: more than the default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_chat_notebook_and_widget(lab, artifacts):
    lab.open("01_chat.ipynb")
    lab.run_all()
    screenshot_cells(lab, artifacts, "01_chat")  # as run, before the widgets are driven
    chat = lab.widget("dskit-chat")
    set_number(chat, ".dskit-max-tokens", 600)  # room to reason and still answer
    send_until_answered(chat, CHAT_PROMPT)
    check_chat_reply(chat, CHAT_PROMPT)
    expect(chat.locator("button.dskit-send")).to_be_enabled()
    expect(chat.locator("button.dskit-stop")).to_be_disabled()
    # an example question with a known answer gets its verdict on the page
    examples = chat.locator(".dskit-examples select")  # options are labelled by the question
    examples.select_option(label=examples.locator(
        "option", has_text="I put a ball in a cup").inner_text())
    expect(chat.locator(".dskit-prompt textarea")).to_have_value(re.compile("ball in a cup"))
    state, text = click_and_wait(chat, "button.dskit-send", spinner=True)
    assert state == "done", text
    assert re.match(r"[✓✗] (correct|wrong)", text) and "on the bed" in text, text
    expect(chat.locator(".dskit-history .dskit-verdict").last).to_contain_text("on the bed")
    # Stop while it reasons: the page says who stopped it, and the turn stays after the next Send
    set_number(chat, ".dskit-max-tokens", 2000)
    chat.locator(".dskit-prompt textarea").fill("Write a very long story about the sea.")
    chat.locator("button.dskit-send").click()
    expect(chat.locator(".dskit-output details")).to_be_visible(timeout=MODEL_TIMEOUT_MS)
    state, text = click_and_wait(chat, "button.dskit-stop")
    assert state == "stopped" and "stopped by you" in text, text
    assert "model returned" not in chat.locator(".dskit-history").inner_text()
    set_number(chat, ".dskit-max-tokens", 16)
    state, text = send_prompt(chat, "Hi")
    assert state == "done", text
    expect(chat.locator(".dskit-history")).to_contain_text("a very long story about the sea")
    expect(chat.locator(".dskit-history")).to_contain_text("stopped by you")


def test_compare_notebook_and_widget(lab, artifacts):
    lab.open("04_compare.ipynb")
    lab.run_all()
    screenshot_cells(lab, artifacts, "04_compare")  # as run, before the widgets are driven
    # the live side-by-side views ended as their final columns, each with its verdict
    views = lab.page.locator(".dskit-side-by-side:not(.dskit-arena *)")  # not the arena's
    expect(views).to_have_count(2)
    for i in range(2):
        expect(views.nth(i).locator(".dskit-column")).to_have_count(2)
        expect(views.nth(i).locator(".dskit-column .dskit-verdict")).to_have_count(2)
        expect(views.nth(i).locator(".dskit-column-load").first).to_contain_text("smollm2:135m")
    # the maths section's paired test on its own prompts, in words (not a fixed verdict)
    assert re.search(r"qwen2\.5-coder:0\.5b vs smollm2:135m on 10 shared prompts: .*"
                     r"(distinguishable|noise)", notebook_text(lab))
    # the arena's round from code: blind columns, waiting for a vote
    arena = lab.widget("dskit-arena")
    expect(arena.locator(".dskit-columns .dskit-column")).to_have_count(2)
    expect(arena.locator("button.dskit-vote-a")).to_be_enabled()
    widget = lab.widget("dskit-compare")
    plot = widget.locator("img.dskit-plot")
    # The notebook ran the widget once (w.run): its plot shows, never a broken-image icon.
    expect(plot).to_be_visible()
    state, text = click_and_wait(widget, "button.dskit-run")
    assert state == "done", text
    assert re.search(r"done: (\d+) of \1 calls", text), text
    expect(widget.locator(".dskit-table table")).to_contain_text("pass@1")
    answers = widget.locator(".dskit-answers table")
    expect(answers).to_contain_text("expected on the bed")  # each answer with its verdict
    expect(answers.locator("tbody tr").first).to_contain_text(re.compile("[✓✗]"))
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth > 100")


def test_knowledge_base_notebook_and_widget(lab, tmp_path, artifacts):
    lab.open("03_knowledge_base.ipynb")
    lab.run_all()
    screenshot_cells(lab, artifacts, "03_knowledge_base")  # as run, before the widgets are driven
    kb = lab.widget("dskit-kb")
    # upload a file through the real file chooser; the report lists it
    note = tmp_path / "熊猫笔记.md"
    note.write_text("大熊猫主要吃竹子，每天要吃十几个小时。", encoding="utf-8")
    before = status_serial(kb)
    with kb.page.expect_file_chooser() as chooser:
        kb.locator(".dskit-upload").click()
    chooser.value.set_files(str(note))
    kb.page.wait_for_function(FINISHED_AFTER, arg=[kb.element_handle(), before],
                              timeout=MODEL_TIMEOUT_MS)
    expect(kb.locator(".dskit-report table")).to_contain_text("熊猫笔记.md")
    expect(kb.locator(".dskit-report table")).to_contain_text("added")
    expect(kb.locator(".dskit-upload")).to_contain_text("Add files (1)")  # not "(0)"
    # search shows a ranked table
    kb.locator(".dskit-query input").fill("冲泡龙井茶的水温")
    state, text = click_and_wait(kb, "button.dskit-search")
    assert state == "done", text
    table = kb.locator(".dskit-results table")
    expect(table).to_contain_text("score")
    expect(table.locator("tbody tr").first).to_contain_text("茶叶笔记")
    assert "\\n" not in table.inner_text()  # passages read as text, no literal \n
    # ask: a streamed answer with its sources
    kb.locator(".dskit-question textarea").fill("大熊猫吃什么？")
    state, text = click_and_wait(kb, "button.dskit-ask", spinner=True)
    assert state == "done", text
    expect(kb.locator(".dskit-answer")).to_contain_text("Sources")
    expect(kb.locator(".dskit-answer")).to_contain_text("熊猫笔记.md")


def test_api_and_clients_notebook(lab, artifacts):
    """Lesson 05 runs whole in JupyterLab, down to its MCP section: the official MCP client's
    `await` cells list the tools, search with a verdict, ask with a graded answer and its
    sources, show a tool error with its fix, and stop the server."""
    lab.open("05_api_and_clients.ipynb")
    lab.run_all()
    screenshot_cells(lab, artifacts, "05_api_and_clients")
    text = lab.page.locator(".jp-Notebook").inner_text()
    assert re.search(r"MCP at http://127\.0\.0\.1:\d+/mcp", text)
    assert re.search(r"list_knowledge_bases +List knowledge bases", text)
    assert re.search(r"[✓✗] rank 1 contains '八十度'|✗ none of the 3 passages", text)
    assert re.search(r"Sources:\s+\[1\] sample_kb/", text)
    assert re.search(r"verdict: [✓✗] (correct|wrong)", text)
    assert "is not served here" in text and "running=False" in text


def screenshot_cells(lab, artifacts, stem):
    """One screenshot per cell of the open notebook, each scrolled to the top of the view
    (JupyterLab draws only the cells in view): `{stem}-cellNN.png`."""
    count = len(lab.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => 0)"))
    for index in range(count):
        lab.page.evaluate("""async (i) => {
          const nb = window.jupyterapp.shell.currentWidget.content;
          nb.activeCellIndex = i;
          await nb.scrollToItem(i, 'start');
        }""", index)
        lab.page.wait_for_timeout(300)
        lab.page.screenshot(path=str(artifacts / f"{stem}-cell{index:02d}.png"))


def test_inside_the_trace_notebook(lab, artifacts):
    """Lesson 08 runs whole in JupyterLab: its plots render, answers are shown with verdicts,
    and the early-exit timing and ratio are printed from what it measured. Each code cell's
    output is saved as a screenshot of its own (JupyterLab draws only the cells in view)."""
    lab.open("08_inside_the_trace.ipynb")
    lab.run_all()
    outputs = lab.page.evaluate("""() => {
      const w = window.jupyterapp.shell.currentWidget;
      return w.content.widgets.filter(c => c.model.type === 'code').map(c => {
        const out = c.model.outputs.toJSON();
        const text = out.map(o => [o.text, (o.data || {})['text/plain'],
                                   (o.data || {})['text/html']].flat().join('')).join('');
        return {text, images: out.filter(o => o.data && o.data['image/png']).length};
      });
    }""")
    screenshot_cells(lab, artifacts, "08_inside_the_trace")
    text = " ".join("\n".join(o["text"] for o in outputs).split())
    assert re.search(r"ratio \d+\.\d\d", text) and re.search(r"of \d+ answers are the same", text)
    # the early-exit curve, a timeline, right vs wrong lengths, the extension and pass@k curves
    assert sum(o["images"] for o in outputs) >= 5
    assert "✓" in text or "✗" in text


def test_confidence_notebook(lab, artifacts):
    """Lesson 09 runs whole in JupyterLab: the trace is shaded with its legend and weakest
    stretch, samples carry verdicts, and the votes and the tokens saved are printed from the
    run. The shaded trace is screenshot on its own, and each code cell's output too."""
    lab.open("09_confidence.ipynb")
    lab.run_all()
    screenshot_cells(lab, artifacts, "09_confidence")
    shaded = lab.page.locator(".dskit-conf").first
    shaded.scroll_into_view_if_needed()
    shaded.screenshot(path=str(artifacts / "09_confidence-shaded.png"))
    expect(shaded.locator(".dskit-conf-legend").first).to_contain_text("Token confidence")
    assert shaded.locator(".dskit-conf-low").count() >= 1
    assert shaded.locator("span[title^='p ']").count() > 10  # a hover text on every token
    text = notebook_text(lab)
    assert re.search(r"Early stopping generated [\d,]+ tokens against [\d,]+", text)
    assert "✓" in text or "✗" in text
    assert re.search(r"majority \d\.\d\d \[\d\.\d\d–\d\.\d\d\]", text)


def notebook_text(lab):
    """Every code cell's text output (stream, text/plain and text/html), whitespace collapsed:
    dskit's findings wrap at 100 columns."""
    return " ".join("\n".join(lab.page.evaluate("""() => {
      const w = window.jupyterapp.shell.currentWidget;
      return w.content.widgets.filter(c => c.model.type === 'code').map(c =>
        c.model.outputs.toJSON().map(o => [o.text, (o.data || {})['text/plain'],
                                           (o.data || {})['text/html']].flat().join('')).join(''));
    }""")).split())


def run_whole(lab, artifacts, stem):
    """Open `stem`.ipynb, run every cell, screenshot each one; the text it printed."""
    lab.open(f"{stem}.ipynb")
    lab.run_all()
    screenshot_cells(lab, artifacts, stem)
    return notebook_text(lab)


def test_setup_notebook(lab, artifacts):
    """Lesson 00 in JupyterLab: the family table with its hybrid models, the health report, the
    stand-in's reply said to be a stand-in."""
    text = run_whole(lab, artifacts, "00_setup")
    assert re.search(r"\d+ of the \d+ DeepSeek models in the catalog are hybrid", text)
    assert "deepseek-v3.1" in text and "embedded" in text
    assert "NaN" not in text and "<NA>" not in text
    assert re.search(r"This reply came from embedded:\S+\.", text) and "not DeepSeek" in text


def test_model_sizes_notebook(lab, artifacts):
    """Lesson 02 in JupyterLab: sizes measured on this machine, the lesson and the
    recommendation written from those measurements."""
    text = run_whole(lab, artifacts, "02_model_sizes")
    assert "smollm2:135m" in text and "qwen2.5-coder:0.5b" in text
    assert re.search(r"tokens_per_s", text)
    for unreadable in ("NaN", "NaT", "<NA>", "..."):  # tables as a person reads them
        assert unreadable not in text, unreadable


def test_reasoning_budget_notebook(lab, artifacts):
    """Lesson 06 in JupyterLab: the budget sweep graded, its curve drawn, and the sentences
    under it printed from the sweep (calls, seconds, intervals, the paired tests)."""
    text = run_whole(lab, artifacts, "06_reasoning_budget")
    assert re.search(r"\d+ calls in \d+ s\.", text)
    assert re.search(r"The widest interval \(.+\) runs from \d\.\d\d to \d\.\d\d", text)
    assert re.search(r"on \d+ shared prompts: .*(distinguishable|noise)", text)
    assert lab.page.locator(".jp-OutputArea-output img").count() >= 1


def test_structured_output_and_tools_notebook(lab, artifacts):
    """Lesson 07 in JupyterLab: extraction, grading and tool calls each with verdicts, and the
    MCP example server's tools called, checked, and its processes gone afterwards."""
    text = run_whole(lab, artifacts, "07_structured_output_and_tools")
    assert re.search(r"\d+ of 9 fields match the expected values", text)
    assert re.search(r"called the calculator with the right arguments for \d of 3", text)
    assert re.search(r"got the right value from the MCP server's tools for \d of 2 questions",
                     text)
    assert "Server processes still running after the replies: 0." in text
    assert "NaN" not in text and "<NA>" not in text  # tables as a person reads them
    assert "ToolsNotSupported" in text
