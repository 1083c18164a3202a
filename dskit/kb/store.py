"""A knowledge base on disk: one SQLite file, one transaction per document.

llama-index's JSON stores rewrite whole files in place, so a process killed mid-write leaves a
file that no longer parses. SQLite commits atomically: a kill at any moment leaves every
document either in its previous state or in its new one, and the file always opens.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roots (
    path TEXT PRIMARY KEY, include TEXT NOT NULL, exclude TEXT NOT NULL, recursive INTEGER);
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, path TEXT, sha256 TEXT NOT NULL,
    size INTEGER, mtime_ns INTEGER, added REAL, updated REAL, n_chunks INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    doc_id TEXT NOT NULL, seq INTEGER NOT NULL, text TEXT NOT NULL, page INTEGER,
    line INTEGER NOT NULL, PRIMARY KEY (doc_id, seq));
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, seq INTEGER NOT NULL,
    text TEXT NOT NULL, page INTEGER, line_start INTEGER, line_end INTEGER,
    text_hash TEXT NOT NULL, tokens TEXT NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks (text_hash);
"""


@dataclass
class DocRow:
    """What the store remembers about one document."""

    doc_id: str
    source: str
    path: str | None
    sha256: str
    size: int | None
    mtime_ns: int | None
    n_chunks: int


@dataclass
class ChunkRow:
    """One chunk ready to be written: text, where it came from, its tokens and vector."""

    seq: int
    text: str
    page: int | None
    line_start: int
    line_end: int
    text_hash: str
    tokens: str  # space-joined BM25 tokens, so the BM25 index rebuilds without re-tokenising
    embedding: bytes


class Store:
    """The SQLite file of one knowledge base."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # check_same_thread=False: widgets search from worker threads; writes hold a file lock.
        self.conn = sqlite3.connect(str(path), timeout=60.0, check_same_thread=False,
                                    isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process kills
        self.conn.executescript(_SCHEMA)  # idempotent, so a half-made file completes here
        if self.get_meta("schema") is None:
            with self.transaction():
                self.set_meta("schema", str(SCHEMA_VERSION))

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error; bumps the generation."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES('generation', '1') ON CONFLICT(key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- metadata -------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A metadata value, or None."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a metadata value (inside a transaction)."""
        self.conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) "
                          "DO UPDATE SET value = excluded.value", (key, value))

    def generation(self) -> int:
        """A counter that changes with every committed write (for caches)."""
        return int(self.get_meta("generation") or 0)

    # --- roots ----------------------------------------------------------------------------
    def add_root(self, path: str, include: list[str], exclude: list[str], recursive: bool) -> None:
        """Remember a folder or file given to `add`, for `refresh`."""
        self.conn.execute(
            "INSERT INTO roots(path, include, exclude, recursive) VALUES(?, ?, ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET include = excluded.include, "
            "exclude = excluded.exclude, recursive = excluded.recursive",
            (path, json.dumps(include), json.dumps(exclude), int(recursive)))

    def roots(self) -> list[tuple[str, list[str], list[str], bool]]:
        """The remembered roots."""
        return [(p, json.loads(i), json.loads(e), bool(r)) for p, i, e, r in
                self.conn.execute("SELECT path, include, exclude, recursive FROM roots")]

    def remove_root(self, path: str) -> None:
        """Forget a root and the roots under it."""
        self.conn.execute("DELETE FROM roots WHERE path = ? OR path LIKE ? ESCAPE '\\'",
                          (path, _like_prefix(path)))

    # --- documents ------------------------------------------------------------------------
    def doc(self, doc_id: str) -> DocRow | None:
        """The stored row of a document."""
        row = self.conn.execute(
            "SELECT doc_id, source, path, sha256, size, mtime_ns, n_chunks FROM docs "
            "WHERE doc_id = ?", (doc_id,)).fetchone()
        return DocRow(*row) if row else None

    def docs(self) -> list[DocRow]:
        """Every document."""
        return [DocRow(*r) for r in self.conn.execute(
            "SELECT doc_id, source, path, sha256, size, mtime_ns, n_chunks FROM docs "
            "ORDER BY source")]

    def last_updated(self) -> float | None:
        """When a document was last added or changed (seconds since the epoch), None if empty."""
        row = self.conn.execute("SELECT MAX(updated) FROM docs").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def docs_under(self, path: str) -> list[DocRow]:
        """Documents whose path is `path` or lies under it."""
        return [DocRow(*r) for r in self.conn.execute(
            "SELECT doc_id, source, path, sha256, size, mtime_ns, n_chunks FROM docs "
            "WHERE path = ? OR path LIKE ? ESCAPE '\\'", (path, _like_prefix(path)))]

    def touch(self, doc_id: str, size: int, mtime_ns: int) -> None:
        """Record a new size/mtime for content that did not change."""
        self.conn.execute("UPDATE docs SET size = ?, mtime_ns = ? WHERE doc_id = ?",
                          (size, mtime_ns, doc_id))

    def put_doc(self, doc: DocRow, segments: Iterable[tuple[str, int | None, int]],
                chunks: Iterable[ChunkRow]) -> None:
        """Replace a document, its segments and its chunks (inside a transaction)."""
        now = time.time()
        old = self.doc(doc.doc_id)
        self.delete_doc(doc.doc_id)
        self.conn.execute(
            "INSERT INTO docs(doc_id, source, path, sha256, size, mtime_ns, added, updated, "
            "n_chunks) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.doc_id, doc.source, doc.path, doc.sha256, doc.size, doc.mtime_ns,
             now if old is None else self._added(doc.doc_id, now), now, doc.n_chunks))
        self.conn.executemany(
            "INSERT INTO segments(doc_id, seq, text, page, line) VALUES(?, ?, ?, ?, ?)",
            [(doc.doc_id, i, t, p, ln) for i, (t, p, ln) in enumerate(segments)])
        self.conn.executemany(
            "INSERT INTO chunks(doc_id, seq, text, page, line_start, line_end, text_hash, "
            "tokens, embedding) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(doc.doc_id, c.seq, c.text, c.page, c.line_start, c.line_end, c.text_hash,
              c.tokens, c.embedding) for c in chunks])

    def _added(self, doc_id: str, default: float) -> float:
        row = self.conn.execute("SELECT added FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
        return row[0] if row and row[0] else default

    def delete_doc(self, doc_id: str) -> int:
        """Delete a document with its chunks; returns how many chunks went."""
        n = self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,)).rowcount
        self.conn.execute("DELETE FROM segments WHERE doc_id = ?", (doc_id,))
        self.conn.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
        return n

    def segments(self, doc_id: str) -> list[tuple[str, int | None, int]]:
        """A document's stored text segments (for re-chunking on rebuild)."""
        return list(self.conn.execute(
            "SELECT text, page, line FROM segments WHERE doc_id = ? ORDER BY seq", (doc_id,)))

    # --- chunks ---------------------------------------------------------------------------
    def embeddings_by_hash(self, hashes: list[str]) -> dict[str, bytes]:
        """Stored vectors for chunk texts already embedded (unchanged parts of an edited file)."""
        out: dict[str, bytes] = {}
        for i in range(0, len(hashes), 500):
            part = hashes[i:i + 500]
            marks = ",".join("?" * len(part))
            out.update(self.conn.execute(
                f"SELECT text_hash, embedding FROM chunks WHERE text_hash IN ({marks})", part))
        return out

    def chunk_count(self) -> int:
        """How many chunks there are."""
        return int(self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def all_chunks(self, columns: str = "id, embedding, tokens") -> list[tuple[Any, ...]]:
        """Selected columns of every chunk, ordered by id."""
        return self.conn.execute(f"SELECT {columns} FROM chunks ORDER BY id").fetchall()

    def retokenize(self, tokenize: Callable[[str], list[str]]) -> None:
        """Store every chunk's BM25 tokens again, from its text (inside a transaction)."""
        rows = self.conn.execute("SELECT id, text FROM chunks").fetchall()
        self.conn.executemany("UPDATE chunks SET tokens = ? WHERE id = ?",
                              [(" ".join(tokenize(text)), i) for i, text in rows])

    def chunks_by_id(self, ids: list[int]) -> dict[int, tuple[Any, ...]]:
        """(doc_id, source, text, page, line_start, line_end) for the given chunk ids."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            "SELECT c.id, c.doc_id, d.source, c.text, c.page, c.line_start, c.line_end "
            f"FROM chunks c JOIN docs d ON d.doc_id = c.doc_id WHERE c.id IN ({marks})", ids)
        return {r[0]: r[1:] for r in rows}


def _like_prefix(path: str) -> str:
    """A LIKE pattern for everything under folder `path`."""
    base = path.rstrip("/\\")
    escaped = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"
