"""The notebooks as people use them: JupyterLab in headless Chromium, widgets clicked for real."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .lab import click_and_wait, send_prompt

# Whole notebooks on a 2-core machine: more than the default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PROMPT = "熊猫吃什么？请简短回答。"


def check_reply(chat, prompt: str) -> None:
    """The last exchange shows the prompt, folded reasoning that opens, an answer and stats."""
    exchange = chat.locator(".dskit-history")
    expect(exchange).to_contain_text(prompt)
    reply = exchange.locator(".dskit-reply").last
    details = reply.locator("details")
    expect(details.locator("summary")).to_contain_text("Reasoning")
    expect(details).not_to_have_attribute("open", re.compile(".*"))  # folded away when done
    details.locator("summary").click()
    expect(details.locator(".dskit-thinking")).to_be_visible()
    expect(reply.locator(".dskit-answer")).not_to_be_empty()
    expect(chat.locator(".dskit-status .dskit-stats-line")).to_contain_text("tok/s")
    expect(chat.locator(".dskit-status .dskit-stats-line")).to_contain_text("TTFT")


def test_chat_notebook_and_widget(lab):
    lab.open("01_chat.ipynb")
    lab.run_all()
    chat = lab.widget("dskit-chat")
    state, text = send_prompt(chat, PROMPT)
    assert state == "done", text
    check_reply(chat, PROMPT)
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
