"""`dskit app`: the chat widget served by Voilà, used in headless Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .lab import MODEL_TIMEOUT_MS, click_and_wait, send_prompt
from .test_lab import PROMPT, check_reply

# Whole notebooks on a 2-core machine: more than the default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_app_chat(voila_app, page):
    page.goto(voila_app.url)
    chat = page.locator(".dskit-chat")
    chat.wait_for(state="visible", timeout=MODEL_TIMEOUT_MS)
    expect(page.locator("body")).to_contain_text("backend: embedded")
    state, text = send_prompt(chat, PROMPT)
    assert state == "done", text
    check_reply(chat, PROMPT)


def test_app_stop_button(voila_app, page):
    page.goto(voila_app.url)
    chat = page.locator(".dskit-chat")
    chat.wait_for(state="visible", timeout=MODEL_TIMEOUT_MS)
    tokens = chat.locator(".dskit-max-tokens input")
    tokens.fill("2000")
    tokens.press("Tab")  # the box sends its value when it loses focus
    chat.locator(".dskit-prompt textarea").fill("Write a very long story about the sea.")
    chat.locator("button.dskit-send").click()
    # Stop as soon as text streams in, as a user would.
    expect(chat.locator(".dskit-output .dskit-reply")).to_be_visible(timeout=MODEL_TIMEOUT_MS)
    state, text = click_and_wait(chat, "button.dskit-stop")
    assert state == "stopped", text
    assert "stopped" in text
    expect(chat.locator("button.dskit-send")).to_be_enabled()
    expect(chat.locator("button.dskit-stop")).to_be_disabled()
