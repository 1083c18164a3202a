"""The arena's votes: kept in a small SQLite file, summed up as a leaderboard.

    ds.arena.results()        # every vote: DataFrame (prompt, models, outcome, winner, replies …)
    ds.arena.leaderboard()    # per model: wins, ties, losses, win rate with its 95 % interval,
                              # and a Bradley–Terry score on the Elo scale
    ds.plots.leaderboard(ds.arena.leaderboard())
    ds.arena.show_leaderboard()   # in a notebook: table and plot, or "no votes yet" (no figure)
    ds.arena.undo()           # take back the last vote

A vote says which column was better ("A", "B", … up to four), "tie", or "bad" (both, or all,
bad). Each vote is one transaction in a WAL-mode SQLite file (`DSKIT_ARENA_FILE`, else
`arena.sqlite` in dskit's user data folder): a kill at any moment leaves every vote either in the
file whole or not at all, and the file always opens.

The leaderboard counts each vote as pairwise battles: the winner beats each other model of the
round; a tie and "both bad" are ties between every pair (as LMSYS's arena counts them). The win
rate counts a tie as half a win; its interval is Wilson's. Bradley–Terry strengths are fitted to
the same battles (ties as half wins) by Hunter's MM iteration, with one virtual tie per pair that
met so a model that won every battle still gets a finite score; the score is
`1000 + 400·log10(strength)` around the geometric mean, so 100 points is about 64 % expected wins.
"""

from __future__ import annotations

import html
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from ..documents import redact, reply_data
from ..errors import ConfigurationError, DataFileError
from .side_by_side import LABELS, SideBySide

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1
#: What a vote can say besides a column label: a tie, or every answer bad.
TIE, BAD = "tie", "bad"
#: The columns of `results()`.
COLUMNS = ["id", "time", "prompt", "expected", "models", "outcome", "winner", "blind",
           "verdicts", "settings", "replies"]
#: The columns of `leaderboard()`.
BOARD_COLUMNS = ["model", "score", "battles", "wins", "ties", "losses", "win_rate", "ci_low",
                 "ci_high", "rounds", "bad"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    prompt TEXT NOT NULL,
    expected TEXT,
    models TEXT NOT NULL,     -- JSON list, in column order (A, B, ...)
    outcome TEXT NOT NULL,    -- a column label, 'tie' or 'bad'
    winner TEXT,              -- the winning model, NULL for a tie or 'bad'
    blind INTEGER NOT NULL,
    replies TEXT NOT NULL,    -- JSON list of replies, in column order
    settings TEXT NOT NULL    -- JSON: backend, options, how the models ran
);
"""

#: 95 % two-sided normal quantile, for Wilson's interval.
_Z = 1.959964


class Arena:
    """The vote file: `record()` a vote, `undo()` it, read `results()` and `leaderboard()`."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else config.arena_file()

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection for one operation; a damaged file is a `DataFileError`."""
        try:
            with self._opened(write) as conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise  # busy, not damaged: the caller's timeout says so
            raise DataFileError(
                f"{self.path} is not a readable arena file ({exc}): move it away to start a "
                "new one (the next vote makes it), or set DSKIT_ARENA_FILE to another file"
            ) from None

    @contextmanager
    def _opened(self, write: bool) -> Iterator[sqlite3.Connection]:
        """A connection for one operation; a write is one immediate transaction."""
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            yield sqlite3.connect(":memory:")  # no votes yet: read nothing, create nothing
            return
        conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a vote is small: make it durable
            if write:
                conn.executescript(_SCHEMA)  # idempotent
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                             (str(SCHEMA_VERSION),))
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                yield conn
        finally:
            conn.close()

    def record(self, view: SideBySide, outcome: str) -> int:
        """Keep one vote on a finished `view`; returns its id. `outcome`: "A", "B", … (the
        better column), "tie", or "bad" (every answer bad)."""
        labels = [c.label for c in view.columns]
        if len(labels) < 2:
            raise ConfigurationError("a vote needs at least two columns to compare")
        outcome = _outcome(outcome, labels)
        if not view.done:
            raise ConfigurationError("the round is still running: vote once every column is done")
        winner = view.columns[labels.index(outcome)].model if outcome in labels else None
        replies = [reply_data(c.reply) if c.reply is not None else {"error": c.error}
                   for c in view.columns]
        settings = {"backend": view.client.name, "options": view.options,
                    "concurrent": view.concurrent,
                    "load_s": [c.load_time for c in view.columns]}
        row = (time.time(), view.text, view.expected, json.dumps(view.models),
               outcome, winner, int(view.blind),
               redact(json.dumps(replies, ensure_ascii=False, default=str)),
               redact(json.dumps(settings, ensure_ascii=False, default=str)))
        with self._connect(write=True) as conn:
            cur = conn.execute(
                "INSERT INTO votes (created, prompt, expected, models, outcome, winner, blind, "
                "replies, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            return int(cur.lastrowid or 0)

    def undo(self, vote_id: int | None = None) -> int | None:
        """Remove a vote (the last one by default); returns its id, None when there was none."""
        with self._connect(write=True) as conn:
            if vote_id is None:
                found = conn.execute("SELECT max(id) FROM votes").fetchone()[0]
            else:
                found = conn.execute("SELECT id FROM votes WHERE id = ?", (vote_id,)).fetchone()
                found = found[0] if found else None
                if found is None:
                    raise ConfigurationError(f"there is no vote {vote_id} in {self.path}")
            if found is not None:
                conn.execute("DELETE FROM votes WHERE id = ?", (found,))
            return found

    def results(self) -> pd.DataFrame:
        """Every vote, oldest first (one row each)."""
        import pandas as pd

        with self._connect() as conn:
            has = conn.execute("SELECT name FROM sqlite_master WHERE name = 'votes'").fetchone()
            raw = conn.execute(
                "SELECT id, created, prompt, expected, models, outcome, winner, blind, "
                "settings, replies FROM votes ORDER BY id").fetchall() if has else []
        rows = []
        for vid, created, prompt, expected, models, outcome, winner, blind, settings, replies \
                in raw:
            reps = json.loads(replies)
            rows.append({
                "id": vid, "time": pd.Timestamp(created, unit="s"), "prompt": prompt,
                "expected": expected, "models": tuple(json.loads(models)), "outcome": outcome,
                "winner": winner, "blind": bool(blind),
                "verdicts": tuple(_verdict_mark(r) for r in reps),
                "settings": json.loads(settings), "replies": reps})
        return pd.DataFrame(rows, columns=COLUMNS)

    def leaderboard(self) -> pd.DataFrame:
        """Per model: Bradley–Terry score, battles, wins/ties/losses, win rate with its 95 %
        interval, rounds played and rounds voted "bad"; best first."""
        return leaderboard(self.results())


def _outcome(outcome: str, labels: Sequence[str]) -> str:
    value = str(outcome).strip()
    low = value.lower().replace(" ", "")
    if low in ("tie", "=", "draw"):
        return TIE
    if low in ("bad", "bothbad", "allbad", "neither"):
        return BAD
    if value.upper() in labels:
        return value.upper()
    raise ConfigurationError(
        f"a vote is one of {', '.join(labels)} (the better column), 'tie' or 'bad'; "
        f"got {outcome!r}")


def _verdict_mark(reply: dict[str, Any]) -> str:
    verdict = reply.get("verdict")
    if not verdict:
        return "–"
    return {True: "✓", False: "✗"}.get(verdict.get("correct"), "?")


def battles(votes: pd.DataFrame) -> list[tuple[str, str, float]]:
    """Each vote as pairwise battles `(model, other, score)`: 1 a win, 0.5 a tie."""
    out: list[tuple[str, str, float]] = []
    for models, outcome in zip(votes["models"], votes["outcome"], strict=True):
        models = list(models)
        if outcome in (TIE, BAD):
            out += [(a, b, 0.5) for i, a in enumerate(models) for b in models[i + 1:]]
            continue
        winner = models[LABELS.index(outcome)]
        out += [(winner, other, 1.0) for other in models if other != winner]
    return out


def wilson(successes: float, n: int, z: float = _Z) -> tuple[float, float]:
    """Wilson's score interval for a proportion (NaN, NaN when n is 0)."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bradley_terry(pairs: Sequence[tuple[str, str, float]], iterations: int = 1000,
                  tol: float = 1e-10) -> dict[str, float]:
    """Bradley–Terry strengths (geometric mean 1) by Hunter's MM iteration; ties count half.

    One virtual tie per pair of models that met keeps every strength finite.
    """
    models = sorted({m for a, b, _ in pairs for m in (a, b)})
    wins = {m: 0.0 for m in models}
    games: dict[tuple[str, str], float] = {}
    for a, b, s in pairs:
        wins[a] += s
        wins[b] += 1 - s
        key = (min(a, b), max(a, b))
        games[key] = games.get(key, 0.0) + 1
    for key in games:  # the virtual tie
        games[key] += 1
        wins[key[0]] += 0.5
        wins[key[1]] += 0.5
    strength = {m: 1.0 for m in models}
    for _ in range(iterations):
        new = {}
        for m in models:
            denom = sum(n / (strength[a] + strength[b]) for (a, b), n in games.items()
                        if m in (a, b))
            new[m] = wins[m] / denom if denom else 1.0
        mean = math.exp(sum(math.log(v) for v in new.values()) / len(new)) if new else 1.0
        new = {m: v / mean for m, v in new.items()}
        change = max((abs(new[m] - strength[m]) for m in models), default=0.0)
        strength = new
        if change < tol:
            break
    return strength


def leaderboard(votes: pd.DataFrame | None = None,
                path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The leaderboard of `votes` (a `results()` frame; None: the votes in the arena file)."""
    import pandas as pd

    if votes is None:
        votes = Arena(path).results()
    pairs = battles(votes)
    strength = bradley_terry(pairs)
    rows = []
    for model in strength:
        won = sum(1 for a, _b, s in pairs if a == model and s == 1.0) + \
            sum(1 for _a, b, s in pairs if b == model and s == 0.0)
        lost = sum(1 for _a, b, s in pairs if b == model and s == 1.0) + \
            sum(1 for a, _b, s in pairs if a == model and s == 0.0)
        tied = sum(1 for a, b, s in pairs if model in (a, b) and s == 0.5)
        n = won + lost + tied
        low, high = wilson(won + tied / 2, n)
        played = votes[[model in m for m in votes["models"]]]
        rows.append({
            "model": model, "score": 1000 + 400 * math.log10(strength[model]), "battles": n,
            "wins": won, "ties": tied, "losses": lost,
            "win_rate": (won + tied / 2) / n if n else math.nan, "ci_low": low, "ci_high": high,
            "rounds": len(played), "bad": int((played["outcome"] == BAD).sum()),
        })
    board = pd.DataFrame(rows, columns=BOARD_COLUMNS)
    return board.sort_values(["score", "model"], ascending=[False, True]).reset_index(drop=True)


def results(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Every arena vote (the file at `path`, else `DSKIT_ARENA_FILE`, else the data folder)."""
    return Arena(path).results()


def undo(vote_id: int | None = None, path: str | os.PathLike[str] | None = None) -> int | None:
    """Take back a vote (the last one by default); returns its id, None when there was none."""
    return Arena(path).undo(vote_id)


#: What the leaderboard says before anybody voted (instead of an empty table and a blank plot).
NO_VOTES = "Leaderboard: no votes yet. Vote in the arena, then run this cell again."


def leaderboard_bundle(board: pd.DataFrame) -> dict[str, Any]:
    """The leaderboard as a notebook shows it (MIME type → data): one line while nobody has
    voted, else the table and its plot as a PNG sized to the number of models."""
    if board.empty:
        return {"text/plain": NO_VOTES,
                "text/html": f"<p class='dskit-board-empty'>{html.escape(NO_VOTES)}</p>"}
    import base64
    import io

    from matplotlib.figure import Figure  # matplotlib loads only when there is a plot

    from .plots import leaderboard as plot  # deferred with matplotlib

    fig = Figure(figsize=(6, 1.2 + 0.5 * len(board)), layout="constrained")
    plot(board, ax=fig.subplots())
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=96)
    image = base64.b64encode(png.getvalue()).decode("ascii")
    table = board.to_html(index=False, na_rep="–", float_format="{:.2f}".format)
    return {"text/plain": board.to_string(index=False),
            "text/html": f"{table}<img alt='Arena leaderboard' src='data:image/png;base64,"
                         f"{image}'>"}


def show_leaderboard(path: str | os.PathLike[str] | None = None) -> None:
    """Show the leaderboard of the arena file in a notebook: one line while nobody has voted
    (no empty figure), else the table and its plot."""
    from IPython.display import display  # IPython comes with the notebook this is shown in

    display(leaderboard_bundle(leaderboard(path=path)), raw=True)
