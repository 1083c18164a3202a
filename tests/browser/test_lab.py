"""The notebooks as people use them: JupyterLab in headless Chromium, widgets clicked for real."""

from __future__ import annotations

import re

import pytest

from .lab import CHAT_PROMPT, check_chat_reply, click_and_wait, expect, send_prompt, set_number

# Whole notebooks on a 2-core machine: more than the default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_chat_notebook_and_widget(lab):
    lab.open("01_chat.ipynb")
    lab.run_all()
    chat = lab.widget("dskit-chat")
    set_number(chat, ".dskit-max-tokens", 600)  # room to reason and still answer
    state, text = send_prompt(chat, CHAT_PROMPT)
    assert state == "done", text
    check_chat_reply(chat, CHAT_PROMPT)
    expect(chat.locator("button.dskit-send")).to_be_enabled()
    expect(chat.locator("button.dskit-stop")).to_be_disabled()


def test_compare_notebook_and_widget(lab):
    lab.open("04_compare.ipynb")
    lab.run_all()
    widget = lab.widget("dskit-compare")
    state, text = click_and_wait(widget, "button.dskit-run")
    assert state == "done", text
    assert re.search(r"done: (\d+) of \1 calls", text), text
    expect(widget.locator(".dskit-table table")).to_contain_text("pass@1")
    plot = widget.locator("img.dskit-plot")
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth > 100")
