"""The arena widget from code: a blind round on the real stand-ins, a vote, the reveal, undo."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import dskit as ds
from dskit.backends.base import Done, Stats
from dskit.evals.arena import NO_VOTES, leaderboard, leaderboard_bundle
from dskit.widgets.arena_widget import ArenaWidget

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"


def test_a_blind_round_then_a_vote_reveals_and_ranks(embedded_client: Any, tmp_path: Path):
    w = ds.widgets.arena(client=embedded_client, models=[SMALL, QWEN], max_tokens=24, seed=11,
                         path=tmp_path / "votes.sqlite")
    assert isinstance(w, ArenaWidget) and "cup" in w.examples.label
    assert w.vote("A") is None and w.status.state == "error"  # nothing to vote on yet
    w.run(wait=True)
    assert w.status.state == "done", w.status.text
    view = w.view
    assert view is not None and view.blind and sorted(view.models) == [QWEN, SMALL]
    assert SMALL not in w.columns.value and QWEN not in w.columns.value
    assert "dskit-verdict" not in w.columns.value  # graded, but shown only after the vote
    assert all(r is not None and r.verdict is not None for r in view.replies)
    shown = [b.layout.display != "none" for b in w.vote_buttons.values()]
    assert shown == [True, True, False, False, True, True]  # A, B, (C, D hidden), tie, bad
    vid = w.vote("B")
    assert vid is not None and w.status.text.startswith(f"vote {vid} saved: B ({view.models[1]})")
    assert SMALL in w.columns.value and QWEN in w.columns.value  # revealed
    assert w.columns.value.count("dskit-verdict") == 2  # the cup puzzle has a known answer
    assert "tok/s" in w.columns.value and "GB" in w.columns.value  # the stats, now
    assert view.models[1] in w.reveal_html.value
    assert "1 vote" in w.board.value and view.models[1] in w.board.value
    assert "<td>1000</td>" not in w.board.value and "<td>1.00</td>" in w.board.value  # B won
    assert w.vote("A") is None and "Undo" in w.status.text  # one vote per round
    assert w.undo() == vid and "no votes yet" in w.board.value
    assert w.vote("tie") is not None
    votes = ds.arena.results(tmp_path / "votes.sqlite")
    assert list(votes["outcome"]) == ["tie"]


def test_the_order_is_shuffled_when_blind_and_kept_when_not(embedded_client: Any,
                                                            tmp_path: Path):
    orders = set()
    for seed in range(6):
        w = ArenaWidget(embedded_client, [SMALL, QWEN], seed=seed, max_tokens=1,
                        path=tmp_path / "v.sqlite")
        w.run(wait=True)
        assert w.view is not None
        orders.add(tuple(w.view.models))
    assert orders == {(SMALL, QWEN), (QWEN, SMALL)}
    w = ArenaWidget(embedded_client, [SMALL, QWEN], blind=False, max_tokens=1,
                    path=tmp_path / "v.sqlite")
    w.run(wait=True)
    assert w.view is not None and w.view.models == [SMALL, QWEN]
    assert SMALL in w.columns.value  # names shown from the start


def test_bad_choices_are_said_on_the_status_line(embedded_client: Any, tmp_path: Path):
    w = ArenaWidget(embedded_client, [SMALL], path=tmp_path / "v.sqlite")
    w.run(wait=True)
    assert w.status.state == "error" and "pick 2 to 4 models" in w.status.text
    w = ArenaWidget(embedded_client, [SMALL, QWEN], path=tmp_path / "v.sqlite")
    w.examples.value = "own"
    w.prompt.value = "  "
    w.run(wait=True)
    assert w.status.state == "error" and "type a prompt" in w.status.text
    w.examples.value = "cup-en"
    assert w.prompt.value.startswith("I put a ball")
    assert not (tmp_path / "v.sqlite").exists()  # nothing voted, nothing written


def test_stop_ends_the_round_keeps_what_arrived_and_a_vote_still_counts(embedded_client: Any,
                                                                        tmp_path: Path):
    w = ArenaWidget(embedded_client, [SMALL, QWEN], blind=False, max_tokens=1500,
                    path=tmp_path / "v.sqlite")
    assert w.options["loop_guard"] is True  # on by default, as in the other widgets
    w.examples.value = "own"
    w.prompt.value = "Write a very long story about the sea."
    w.run()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # Stop once the first column has some answer
        view = w.view
        if view is not None and view.columns[0].reply is not None \
                and len(view.columns[0].reply.answer) > 40:
            break
        time.sleep(0.05)
    assert not w.stop_button.disabled
    w.stop_button.click()
    w.wait(120)
    assert not w.busy and w.status.state == "stopped", w.status.text
    assert w.view is not None
    first, second = w.view.columns
    assert first.state == "stopped" and first.reply is not None
    assert first.reply.done_reason == "stopped" and len(first.reply.answer) > 40
    assert second.state == "stopped"  # never began (one at a time), or cut too (together)
    assert second.reply is None or second.reply.done_reason == "stopped"
    assert w.run_button.disabled is False and w.stop_button.disabled is True
    assert w.vote("A") is not None  # what arrived can still be judged
    assert list(ds.arena.results(tmp_path / "v.sqlite")["outcome"]) == ["A"]


def test_reason_first_asks_every_column_to_reason(embedded_client: Any, tmp_path: Path):
    w = ArenaWidget(embedded_client, [SMALL, QWEN], max_tokens=64, seed=3, think=True,
                    path=tmp_path / "v.sqlite")
    assert w.think.value is True and "think" not in w.options  # the checkbox holds it
    w.run(wait=True)
    assert w.view is not None and w.status.state == "done", w.status.text
    assert w.view.options["think"] is True
    assert all(r is not None and r.reasoned for r in w.view.replies)
    assert w.columns.value.count("<summary>Reasoning") == 2  # folded in each column
    w.think.value = False
    w.run(wait=True)
    assert w.view is not None and "think" not in w.view.options  # left to each model
    assert not any(r is not None and r.reasoned for r in w.view.replies)


def scripted_pair(scripted: Any) -> Any:
    """Two models as different as 135M and 0.5B: memory, speed and load time give them away."""
    return scripted(
        ["<think>The cup was turned over on the bed.</think>The ball is on the bed.",
         Done(Stats(eval_tokens=12, eval_time=0.05, memory=290_000_000, load_time=0.4), "stop")],
        ["<think>杯子被拿走了。</think>The ball is in the cup.",
         Done(Stats(eval_tokens=12, eval_time=0.6, memory=590_000_000, load_time=2.5), "stop")],
        models=["tiny:135m", "larger:0.5b"])


def test_a_blind_round_hides_what_tells_the_models_apart_until_the_vote(scripted: Any,
                                                                          tmp_path: Path):
    w = ArenaWidget(scripted_pair(scripted), ["tiny:135m", "larger:0.5b"], prompt="cup-en",
                    seed=1, path=tmp_path / "v.sqlite")
    w.run(wait=True)
    assert w.view is not None and w.status.state == "done", w.status.text
    shown = w.columns.value
    assert "dskit-verdict" not in shown
    text = re.sub(r"<style>.*?</style>|<[^>]+>", " ", shown)  # what a learner reads
    for tell in ("tiny", "larger", "135m", "0.5b", "GB", "tok/s", "TTFT", "load",
                 "in memory", "✓", "✗", "expected on the bed"):
        assert tell not in text, tell
    assert shown.count("shown after the vote") == 2 and "on the bed" in shown  # the answers
    for text in (w.view.text_summary(), w.view.describe()):
        assert not any(t in text for t in ("GB", "tok/s", "✓", "✗", "tiny", "larger")), text
    assert "shown after the vote" in w.status.text
    w.vote("A")
    shown = w.columns.value
    assert "0.29 GB" in shown and "0.59 GB" in shown and shown.count("dskit-verdict") == 2
    assert "tiny:135m" in shown and "tok/s" in w.view.text_summary()


def test_the_blind_label_is_short_and_the_controls_wrap(scripted: Any, tmp_path: Path):
    w = ArenaWidget(scripted_pair(scripted), ["tiny:135m", "larger:0.5b"],
                    path=tmp_path / "v.sqlite")
    assert w.blind.description == "blind"  # a checkbox cuts a long description off
    assert "after the vote" in w.blind_hint.value
    rows = [c for c in w.children if "dskit-controls" in c._dom_classes]
    assert len(rows) == 3 and all(r.layout.flex_flow == "row wrap" for r in rows)


def test_an_empty_leaderboard_is_one_line_and_no_figure(tmp_path: Path):
    bundle = leaderboard_bundle(leaderboard(path=tmp_path / "none.sqlite"))
    assert bundle["text/plain"] == NO_VOTES and "image/png" not in bundle
    assert "<img" not in bundle["text/html"] and "no votes yet" in bundle["text/html"]


def test_a_leaderboard_with_votes_is_a_table_and_a_plot(scripted: Any, tmp_path: Path):
    w = ArenaWidget(scripted_pair(scripted), ["tiny:135m", "larger:0.5b"], prompt="cup-zh",
                    seed=2, path=tmp_path / "v.sqlite")
    w.run(wait=True)
    w.vote("tie")
    bundle = leaderboard_bundle(leaderboard(path=tmp_path / "v.sqlite"))
    assert "tiny:135m" in bundle["text/plain"] and "larger:0.5b" in bundle["text/html"]
    assert "data:image/png;base64," in bundle["text/html"]
