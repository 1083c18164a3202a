"""The arena widget in JupyterLab, clicked for real: a blind round, a vote, the reveal, the
leaderboard, an undo."""

from __future__ import annotations

import re

import httpx
import pytest

from .lab import MODEL_TIMEOUT_MS, click_and_wait, expect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

MODELS = ["smollm2:135m", "qwen2.5-coder:0.5b"]

# A notebook of one cell: the arena on both stand-ins, its votes in a file of this test's own.
NOTEBOOK = {
    "cells": [{
        "cell_type": "code", "execution_count": None, "id": "arena", "metadata": {},
        "outputs": [],
        "source": ("import dskit as ds\n"
                   f"w = ds.widgets.arena(models={MODELS!r}, max_tokens=48, seed=7,\n"
                   "                     path='arena_test_votes.sqlite')\n"
                   "w"),
    }],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def test_a_blind_round_a_vote_the_reveal_and_the_leaderboard(lab, jupyter_lab):
    put = httpx.put(f"{jupyter_lab.url}api/contents/arena_test.ipynb",
                    params={"token": jupyter_lab.token}, timeout=30,
                    json={"type": "notebook", "format": "json", "content": NOTEBOOK})
    assert put.status_code in (200, 201), put.text
    lab.open("arena_test.ipynb")
    lab.run_all()
    arena = lab.widget("dskit-arena")
    expect(arena.locator(".dskit-blind input")).to_be_checked()
    expect(arena.locator(".dskit-prompt textarea")).to_have_value(re.compile("杯子"))
    expect(arena.locator(".dskit-leaderboard")).to_contain_text("no votes yet")
    expect(arena.locator("button.dskit-vote-a")).to_be_disabled()
    expect(arena.locator("button.dskit-vote-c")).to_be_hidden()  # two models: two columns

    # a blind round: columns A and B stream with nothing that tells the models apart (no
    # names, memory, speed, load time or verdicts: all of it after the vote)
    state, text = click_and_wait(arena, "button.dskit-run", spinner=True)
    assert state == "done" and "Vote below" in text, text
    columns = arena.locator(".dskit-columns .dskit-column")
    expect(columns).to_have_count(2)
    expect(columns.nth(0).locator(".dskit-label")).to_have_text("A")
    expect(columns.nth(1).locator(".dskit-label")).to_have_text("B")
    shown = arena.locator(".dskit-columns").inner_text()
    assert not any(m in shown for m in MODELS), shown
    assert not re.search(r"GB|tok/s|TTFT|in memory|loading|✓|✗", shown), shown
    expect(columns.nth(0).locator(".dskit-verdict")).to_have_count(0)
    expect(columns.nth(0).locator(".dskit-column-footer")).to_have_text(
        "stats and verdict are shown after the vote")

    # the vote, then the names
    state, text = click_and_wait(arena, "button.dskit-vote-a")
    assert state == "done" and re.search(r"vote \d+ saved: A \(", text), text
    winner = re.search(r"A \(([^)]+)\) better", text).group(1)
    assert winner in MODELS
    reveal = arena.locator(".dskit-reveal")
    for model in MODELS:
        expect(reveal).to_contain_text(model)
        expect(arena.locator(".dskit-columns")).to_contain_text(model)
    expect(columns.nth(0).locator(".dskit-verdict")).to_contain_text("在床上")
    expect(columns.nth(1).locator(".dskit-verdict")).to_contain_text("在床上")
    expect(columns.nth(0).locator(".dskit-column-footer")).to_contain_text("tok/s")
    expect(columns.nth(0).locator(".dskit-column-footer")).to_contain_text("GB")
    expect(arena.locator("button.dskit-vote-a")).to_be_disabled()  # one vote per round

    # the leaderboard: the winner first, one vote
    board = arena.locator(".dskit-leaderboard")
    expect(board).to_contain_text("1 vote")
    expect(board.locator("tbody tr").first).to_contain_text(winner)
    expect(board.locator("tbody tr")).to_have_count(2)

    # undo, then vote again: a tie
    state, text = click_and_wait(arena, "button.dskit-undo")
    assert state == "done" and "undone" in text, text
    expect(board).to_contain_text("no votes yet")
    state, text = click_and_wait(arena, "button.dskit-vote-tie")
    assert state == "done" and "a tie" in text, text
    expect(board).to_contain_text("1 vote")
    expect(board.locator("tbody tr").first).to_contain_text("0.50")

    # a new round hides the names again
    state, text = click_and_wait(arena, "button.dskit-run", timeout_ms=MODEL_TIMEOUT_MS)
    assert state == "done", text
    assert not any(m in arena.locator(".dskit-columns").inner_text() for m in MODELS)
