"""The arena's votes: kept in SQLite one transaction each, undone, read back, ranked."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import dskit as ds
from dskit.errors import ConfigurationError
from dskit.evals.arena import Arena, battles, bradley_terry, leaderboard, wilson
from dskit.evals.side_by_side import SideBySide

SMALL = "smollm2:135m"
QWEN = "qwen2.5-coder:0.5b"


@pytest.fixture(scope="module")
def round_(embedded_client: Any) -> SideBySide:
    """One finished blind round on the real stand-ins (the cup puzzle, so it has verdicts)."""
    view = SideBySide(ds.prompts.cup_puzzle("en"), [QWEN, SMALL], client=embedded_client,
                      blind=True, max_tokens=32, seed=2)
    return view.start().wait()


def test_votes_persist_with_prompt_models_replies_and_settings(round_: SideBySide,
                                                                tmp_path: Path):
    arena = Arena(tmp_path / "votes.sqlite")
    assert arena.results().empty and not arena.path.exists()  # reading creates nothing
    first = arena.record(round_, "A")
    second = arena.record(round_, "tie")
    third = arena.record(round_, "both bad")
    votes = Arena(tmp_path / "votes.sqlite").results()  # a new handle reads the same file
    assert list(votes["id"]) == [first, second, third]
    row = votes.iloc[0]
    assert row["models"] == (QWEN, SMALL) and row["outcome"] == "A" and row["winner"] == QWEN
    assert row["prompt"].startswith("I put a ball") and row["expected"] == "on the bed"
    assert row["blind"] and row["settings"]["options"] == {"max_tokens": 32, "seed": 2,
                                                       "loop_guard": True}  # on by default
    assert row["replies"][0]["model"] == QWEN and row["replies"][1]["answer"]
    assert all(v in "✓✗" for v in row["verdicts"])
    assert list(votes["outcome"]) == ["A", "tie", "bad"]
    assert pd.isna(votes["winner"].iloc[1])


def test_undo_removes_the_last_vote_or_a_given_one(round_: SideBySide, tmp_path: Path):
    arena = Arena(tmp_path / "v.sqlite")
    ids = [arena.record(round_, o) for o in ("A", "B", "A")]
    assert arena.undo() == ids[2]
    assert arena.undo(ids[0]) == ids[0]
    assert list(arena.results()["id"]) == [ids[1]]
    with pytest.raises(ConfigurationError, match="no vote"):
        arena.undo(12345)
    assert ds.arena.undo(path=tmp_path / "v.sqlite") == ids[1]
    assert ds.arena.undo(path=tmp_path / "v.sqlite") is None  # nothing left


def test_a_bad_vote_is_refused_and_nothing_is_written(round_: SideBySide, tmp_path: Path):
    arena = Arena(tmp_path / "v.sqlite")
    with pytest.raises(ConfigurationError, match="A, B"):
        arena.record(round_, "C")  # only two columns
    assert arena.results().empty


def test_the_default_file_comes_from_the_environment(round_: SideBySide, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DSKIT_ARENA_FILE", str(tmp_path / "mine.sqlite"))
    Arena().record(round_, "B")
    assert (tmp_path / "mine.sqlite").exists()
    assert list(ds.arena.results()["winner"]) == [SMALL]
    board = ds.arena.leaderboard()
    assert list(board["model"]) == [SMALL, QWEN] and list(board["wins"]) == [1, 0]


def _votes(*rounds: tuple[tuple[str, ...], str]) -> pd.DataFrame:
    return pd.DataFrame({"models": [m for m, _ in rounds], "outcome": [o for _, o in rounds]})


def test_battles_expand_a_vote_into_pairs():
    votes = _votes((("x", "y", "z"), "B"), (("x", "y"), "tie"), (("x", "y"), "bad"))
    assert battles(votes) == [("y", "x", 1.0), ("y", "z", 1.0), ("x", "y", 0.5),
                              ("x", "y", 0.5)]


def test_bradley_terry_matches_its_closed_form_for_two_models():
    # 3 wins to 1, plus the virtual tie: strengths in the ratio 3.5 : 1.5
    s = bradley_terry([("a", "b", 1.0)] * 3 + [("b", "a", 1.0)])
    assert s["a"] / s["b"] == pytest.approx(3.5 / 1.5, rel=1e-6)
    assert s["a"] * s["b"] == pytest.approx(1.0)


def test_wilson_interval_has_its_textbook_values():
    low, high = wilson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    assert all(math.isnan(v) for v in wilson(0, 0))  # nothing to count
    assert wilson(10, 10) == (pytest.approx(0.7225, abs=1e-4), pytest.approx(1.0))


def test_leaderboard_ranks_by_score_with_win_rates_and_intervals():
    votes = _votes(*[(("big", "small"), "A")] * 6, (("small", "big"), "A"),
                   (("big", "small"), "tie"), (("mid", "small"), "A"),
                   (("mid", "small"), "bad"))
    board = leaderboard(votes)
    assert list(board["model"]) == ["big", "mid", "small"]
    big = board.iloc[0]
    assert (big["wins"], big["ties"], big["losses"], big["battles"]) == (6, 1, 1, 8)
    assert big["win_rate"] == pytest.approx(6.5 / 8)
    assert big["ci_low"] < big["win_rate"] < big["ci_high"] <= 1
    small = board.iloc[2]
    assert small["bad"] == 1 and small["rounds"] == 10
    # only `small` links the others: each ratio is its own pair's, 7 : 2 and 2 : 1 (with ties)
    strength = board.set_index("model")["score"].apply(lambda s: 10 ** ((s - 1000) / 400))
    assert strength["big"] / strength["small"] == pytest.approx(3.5, rel=1e-4)
    assert strength["mid"] / strength["small"] == pytest.approx(2.0, rel=1e-4)
    assert big["score"] > 1000 > small["score"]
    assert math.isclose(board["score"].apply(lambda s: 10 ** ((s - 1000) / 400)).prod(), 1.0)


def test_the_leaderboard_plot_draws(round_: SideBySide, tmp_path: Path):
    import matplotlib

    matplotlib.use("Agg")
    arena = Arena(tmp_path / "v.sqlite")
    arena.record(round_, "A")
    ax = ds.plots.leaderboard(arena.leaderboard())
    assert [t.get_text() for t in ax.get_yticklabels()] == [SMALL, QWEN]
    empty = ds.plots.leaderboard(leaderboard(_votes()))
    assert empty.texts[0].get_text() == "no votes yet"


def test_a_killed_writer_leaves_whole_votes(round_: SideBySide, tmp_path: Path):
    """Votes written by a process killed mid-run: every vote in the file is complete."""
    path = tmp_path / "killed.sqlite"
    Arena(path).record(round_, "A")  # a real vote's row, copied by the writer below
    script = textwrap.dedent(f"""
        import sqlite3, sys
        from dskit.evals.arena import Arena
        src = sqlite3.connect({str(path)!r}).execute("SELECT * FROM votes").fetchone()
        arena = Arena({str(path)!r})
        while True:
            with arena._connect(write=True) as conn:
                conn.execute("INSERT INTO votes (created, prompt, expected, models, outcome, "
                             "winner, blind, replies, settings) VALUES (?,?,?,?,?,?,?,?,?)",
                             src[1:])
            print("ok", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(30):  # let it write some votes, then kill it mid-stream
        assert proc.stdout.readline().strip() == "ok"
    proc.kill()
    proc.wait()
    votes = Arena(path).results()
    assert len(votes) >= 31
    assert all(r[0]["model"] == QWEN for r in votes["replies"])
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize("content", [b"not a database at all " * 50,
                                     b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_damaged_vote_file_is_a_typed_error_naming_it(tmp_path: Path, content: bytes):
    from dskit.errors import DataFileError

    path = tmp_path / "votes.sqlite"
    path.write_bytes(content)
    arena = Arena(path)
    for read in (arena.results, arena.leaderboard):
        with pytest.raises(DataFileError, match="move it away"):
            read()
    assert path.read_bytes() == content  # nothing written over it
