"""`dskit app`: the chat widget served by Voilà, used in headless Chromium."""

from __future__ import annotations

import re

import pytest

from .lab import (
    CHAT_PROMPT,
    MODEL_TIMEOUT_MS,
    check_chat_reply,
    click_and_wait,
    expect,
    send_until_answered,
    set_number,
)

# A model on a 2-core machine: room beyond the default per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_app_chat(voila_app, page):
    page.goto(voila_app.url)
    chat = page.locator(".dskit-chat")
    chat.wait_for(state="visible", timeout=MODEL_TIMEOUT_MS)
    expect(page.locator("body")).to_contain_text("backend: embedded")
    expect(page.locator("body")).to_contain_text("stand-in, not DeepSeek-R1")
    send_until_answered(chat, CHAT_PROMPT)
    check_chat_reply(chat, CHAT_PROMPT)
    # an example question with a known answer gets its verdict in the app too
    examples = chat.locator(".dskit-examples select")
    apples = "小明有 5 个苹果，吃了 2 个，又买了 4 个。他现在有几个苹果？"
    examples.select_option(label=apples)
    expect(chat.locator(".dskit-prompt textarea")).to_have_value(apples)
    state, text = click_and_wait(chat, "button.dskit-send", MODEL_TIMEOUT_MS, spinner=True)
    assert state == "done", text
    assert re.match(r"[✓✗] (correct|wrong)", text) and "expected 7" in text, text
    expect(chat.locator(".dskit-history .dskit-verdict").last).to_contain_text("7")


def test_app_stop_button(voila_app, page):
    page.goto(voila_app.url)
    chat = page.locator(".dskit-chat")
    chat.wait_for(state="visible", timeout=MODEL_TIMEOUT_MS)
    set_number(chat, ".dskit-max-tokens", 2000)
    chat.locator(".dskit-prompt textarea").fill("Write a very long story about the sea.")
    chat.locator("button.dskit-send").click()
    # Stop as soon as text streams in, as a user would.
    expect(chat.locator(".dskit-output .dskit-reply")).to_be_visible(timeout=MODEL_TIMEOUT_MS)
    state, text = click_and_wait(chat, "button.dskit-stop")
    assert state == "stopped", text
    assert "stopped" in text
    expect(chat.locator("button.dskit-send")).to_be_enabled()
    expect(chat.locator("button.dskit-stop")).to_be_disabled()
