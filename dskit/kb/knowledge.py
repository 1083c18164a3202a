"""`KnowledgeBase`: local files → chunks → ranked hybrid search → answers with cited sources."""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from .. import config
from ..embeddings import LEGACY_LOCAL_NAME, Embedder, LocalEmbedder, get_embedder
from ..errors import (
    ConfigurationError,
    KnowledgeBaseBusy,
    KnowledgeBaseError,
    LoadError,
    OutdatedIndexWarning,
)
from . import answer, chunking, lexical, loaders
from .store import ChunkRow, DocRow, Store

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..client import Client
    from ..conversation.stream import ReplyStream
    from ..reply import Reply

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[^\W_][\w.\- ]{0,63}$")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
             *(f"lpt{i}" for i in range(10))}
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".ipynb_checkpoints", "node_modules",
              ".venv", "venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox"}
_FLUSH_CHUNKS = 256  # embed this many chunks at once across small files (batching pays off)
REPORT_COLUMNS = ["source", "status", "chunks", "reason", "path"]
#: `ask` answers only from passages scoring above this. On the sample corpus's labelled queries
#: (bench/kb_queries.json, plus five short Chinese questions over a notice) relevant best hits
#: score 0.10–0.9 and 13 unrelated questions (Chinese and English) ≤ 0.06. Before question words
#: and word junctions left the query's keyword mass, five Chinese ones scored 0.05–0.077.
ASK_THRESHOLD = 0.08
# Unrelated sentences in both languages: how similar a query is to them is its "nothing in
# common" level. MiniLM puts any two Chinese texts at cosine ≈ 0.5, so raw cosine cannot be
# compared with a threshold; measured against this level it can (see `search`).
NULL_TEXTS = (
    "The weather was cold and rainy all week.", "He bought a new pair of running shoes.",
    "The train to the airport leaves every ten minutes.", "She painted the kitchen walls blue.",
    "Our team lost the football match on Sunday.", "The museum is closed on Mondays.",
    "Add a pinch of salt to the soup.", "The printer on the second floor is out of paper.",
    "这周一直下雨，天气很冷。", "他买了一双新的跑步鞋。", "去机场的地铁每十分钟一班。",
    "她把厨房的墙刷成了蓝色。", "我们队星期天的足球比赛输了。", "博物馆每周一闭馆。",
    "汤里加一点盐就好。", "二楼的打印机没有纸了。",
)


def kb_home(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where knowledge bases live: the argument, DSKIT_KB_DIR, else the user's data dir."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    return config.kb_dir()


def validate_name(name: str) -> str:
    """A knowledge-base name that is a plain folder name: no separators, dots-only or controls."""
    if not isinstance(name, str) or not _NAME.match(name) or name.rstrip(". ") != name \
            or name.lower() in _RESERVED or ".." in name:
        raise ConfigurationError(
            f"{name!r} is not a valid knowledge-base name: use 1–64 letters, digits (Chinese "
            "is fine), '-', '_', '.' or spaces, starting with a letter or digit, e.g. "
            "'notes' or '我的笔记'")
    return name


def outdated_note(name: str) -> str:
    """What a knowledge base embedded by the older engine needs: the one-line rebuild."""
    return (f"knowledge base {name!r} was embedded by sentence-transformers (an older dskit); "
            f"search works, but re-embed it with llama.cpp once: `dskit kb rebuild {name}` or "
            f"`ds.KnowledgeBase({name!r}).rebuild()`")


def list_kbs(data_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The knowledge bases under the data directory: name, documents, chunks, embedding model,
    and when a document was last added or changed (local time, to the second; NaT if empty)."""
    import pandas as pd

    rows = []
    home = kb_home(data_dir)
    for db in sorted(home.glob("*/kb.sqlite")) if home.is_dir() else []:
        store = Store(db)
        try:
            updated = store.last_updated()
            rows.append({"name": db.parent.name, "documents": len(store.docs()),
                         "chunks": store.chunk_count(),
                         "embed_model": store.get_meta("embed_model") or "",
                         "updated": pd.Timestamp.fromtimestamp(updated).floor("s")
                         if updated is not None else pd.NaT})
        finally:
            store.close()
    return pd.DataFrame(rows, columns=["name", "documents", "chunks", "embed_model", "updated"])


@dataclass
class _Pending:
    doc: DocRow
    segments: list[loaders.Segment]
    pieces: list[chunking.Piece]
    row: dict[str, Any]


class _Index:
    """In-memory search structures, rebuilt when the store's generation changes."""

    def __init__(self, store: Store, dim: int) -> None:
        import numpy as np

        self.generation = store.generation()
        current = store.get_meta("lexical") == lexical.VERSION
        rows = store.all_chunks("id, embedding, tokens" if current else "id, embedding, text")
        self.ids = np.array([r[0] for r in rows], dtype=np.int64)
        self.matrix = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                       .reshape(len(rows), dim) if rows else np.zeros((0, dim), np.float32))
        # Tokens stored by an older tokeniser are not comparable with a query's: tokenise the
        # texts again in memory (the next write stores them, see KnowledgeBase._write).
        self.bm25 = lexical.BM25Index([(r[2].split(" ") if r[2] else []) if current
                                       else lexical.tokenize(r[2]) for r in rows])


class KnowledgeBase:
    """A persisted knowledge base: `add`, `search`, `ask`, `refresh`, `remove`."""

    def __init__(self, name: str, *, embed_model: str | Embedder | None = None,
                 chunk_size: int | None = None, chunk_overlap: int | None = None,
                 data_dir: str | os.PathLike[str] | None = None, hybrid: bool = True,
                 max_file_mb: float = loaders.MAX_FILE_MB, max_file_seconds: float | None = None,
                 lock_timeout: float = 600.0, create: bool = True) -> None:
        """Open the knowledge base `name`, creating it unless `create=False` (then a missing
        one is a `KnowledgeBaseError` and nothing is written: for read-only uses).

        Each file is read within a budget of work: `max_file_mb` caps its size and what it may
        unpack to, memory, elements and pages; `max_file_seconds` the CPU time spent reading it
        (by default 10 s plus 5 s per MB of the file). A file over its budget is reported as
        failed with the reason; the others are still added.
        """
        self.name = validate_name(name)
        for label, value in (("max_file_mb", max_file_mb), ("max_file_seconds", max_file_seconds)):
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < 1e9):
                raise ConfigurationError(f"{label} must be a positive number, not {value!r}")
        home = kb_home(data_dir).resolve()
        self.path = (home / self.name).resolve()
        if self.path.parent != home:  # belt and braces: the name cannot leave the data dir
            raise ConfigurationError(f"{name!r} resolves outside the data directory")
        if not create and not (self.path / "kb.sqlite").is_file():
            known = ", ".join(repr(n) for n in list_kbs(data_dir)["name"]) or "none"
            raise KnowledgeBaseError(
                f"there is no knowledge base {name!r} under {home} (known: {known}): create it "
                f"by adding files, `dskit kb add {name} PATH…` or "
                f"`ds.KnowledgeBase({name!r}).add(PATH)`")
        self.path.mkdir(parents=True, exist_ok=True)
        self.hybrid = hybrid
        self.max_file_mb = max_file_mb
        self.max_file_seconds = max_file_seconds
        self.lock_timeout = lock_timeout
        self._store = Store(self.path / "kb.sqlite")
        self._index: _Index | None = None
        self._index_lock = threading.Lock()
        self._null: np.ndarray | None = None

        stored = self._store.get_meta("embed_model")
        wanted = get_embedder(embed_model) if embed_model is not None or stored is None else None
        #: Set when the knowledge base was embedded by an older engine: what to run to renew it.
        self.outdated: str | None = None
        if stored is None:
            assert wanted is not None
            self._embedder = wanted
            size = chunk_size or (200 if isinstance(wanted, LocalEmbedder) else 512)
            overlap = chunk_overlap if chunk_overlap is not None else size // 8
            self._check_chunking(size, overlap)
            with self._write():
                self._store.set_meta("embed_model", wanted.name)
                self._store.set_meta("chunk_size", str(size))
                self._store.set_meta("chunk_overlap", str(overlap))
        else:
            legacy = stored == LEGACY_LOCAL_NAME
            compatible = wanted is None or wanted.name == stored or (
                legacy and isinstance(wanted, LocalEmbedder))
            if not compatible:
                assert wanted is not None
                raise ConfigurationError(
                    f"knowledge base {name!r} was built with the embedding model {stored!r}; "
                    f"open it without embed_model (or with {stored!r}), or re-embed everything "
                    f"with `kb.rebuild(embed_model={getattr(embed_model, 'name', embed_model)!r})`")
            self._embedder = wanted or get_embedder(stored)
            if legacy:
                # Embedded by sentence-transformers (dskit before MiniLM ran on llama.cpp).
                # Search keeps working: it is the same model, and llama.cpp's vectors match
                # sentence-transformers' to cosine >= 0.9999 on Chinese and English
                # (tests/data/minilm_reference.json), so old and new vectors rank alike. The
                # stored name still says which engine made the index, hence the warning.
                self.outdated = outdated_note(name)
                warnings.warn(self.outdated, OutdatedIndexWarning, stacklevel=2)
            for key, value in (("chunk_size", chunk_size), ("chunk_overlap", chunk_overlap)):
                if value is not None and str(value) != self._store.get_meta(key):
                    raise ConfigurationError(
                        f"knowledge base {name!r} uses {key}={self._store.get_meta(key)}; "
                        f"re-chunk it with `kb.rebuild({key}={value})` to change it")

    # --- properties -----------------------------------------------------------------------
    @property
    def embed_model(self) -> str:
        """The embedding model's name, as stored with the knowledge base."""
        return self._store.get_meta("embed_model") or self._embedder.name

    @property
    def embedder(self) -> Embedder:
        """The embedder that embeds queries and new chunks."""
        return self._embedder

    @property
    def chunk_size(self) -> int:
        """Chunk size in tokens."""
        return int(self._store.get_meta("chunk_size") or 0)

    @property
    def chunk_overlap(self) -> int:
        """Tokens shared by neighbouring chunks."""
        return int(self._store.get_meta("chunk_overlap") or 0)

    def __len__(self) -> int:
        return self._store.chunk_count()

    def __repr__(self) -> str:
        return (f"KnowledgeBase({self.name!r}, documents={len(self._store.docs())}, "
                f"chunks={len(self)}, embed_model={self.embed_model!r})")

    def close(self) -> None:
        """Close the database file."""
        self._store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _check_chunking(size: int, overlap: int) -> None:
        if size < 32 or overlap < 0 or overlap >= size:
            raise ConfigurationError(
                f"chunk_size={size}, chunk_overlap={overlap}: use chunk_size ≥ 32 tokens and "
                "0 ≤ chunk_overlap < chunk_size, e.g. 512 and 64")

    @contextmanager
    def _write(self) -> Iterator[None]:
        """A store transaction under the cross-process write lock (kernels take turns)."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path / "write.lock"), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except Timeout:
            raise KnowledgeBaseBusy(
                f"knowledge base {self.name!r} is being written by another process for more "
                f"than {self.lock_timeout:g} s; wait for it to finish (or raise lock_timeout)"
            ) from None
        try:
            with self._store.transaction():
                if self._store.get_meta("lexical") != lexical.VERSION:
                    # Stored by an older tokeniser (or a new knowledge base): bring every
                    # chunk's tokens up to date, so new and old chunks are searched alike.
                    self._store.retokenize(lexical.tokenize)
                    self._store.set_meta("lexical", lexical.VERSION)
                yield
        finally:
            lock.release()

    # --- adding ---------------------------------------------------------------------------
    def add(self, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
            *, include: str | Sequence[str] | None = None,
            exclude: str | Sequence[str] | None = None, recursive: bool = True,
            text: str | None = None, name: str | None = None,
            progress: bool = True) -> pd.DataFrame:
        """Add files, folders (recursively, filtered by globs) or `text=`; returns a report.

        The report has one row per file: status added / unchanged / updated / skipped /
        failed and the reason. A bad file never stops the others.
        """
        inc = [include] if isinstance(include, str) else list(include or [])
        exc = [exclude] if isinstance(exclude, str) else list(exclude or [])
        if paths is None and text is None:
            raise ConfigurationError("give paths to add (files or folders) or text='…'")
        rows: list[dict[str, Any]] = []
        files: list[tuple[Path, str]] = []
        for given in _as_list(paths):
            p = Path(given).expanduser()
            if not _utf8(str(p)):
                rows.append(_row(_printable(str(given)), "failed", 0, _NOT_UTF8,
                                 _printable(str(p))))
                continue
            try:
                if not p.exists():
                    rows.append(_row(str(given), "failed", 0, "no such file or folder", str(p)))
                    continue
                p = p.resolve()
            except (OSError, RuntimeError, ValueError) as error:  # a loop, a NUL byte, EACCES
                # (not `as exc`: `exc` is the exclude patterns, which the next path needs)
                rows.append(_row(str(given), "failed", 0, f"cannot use this path: {error}",
                                 str(p)))
                continue
            with self._write():
                self._store.add_root(str(p), inc, exc, recursive)
            if p.is_dir():
                found, refused = _scan(p, inc, exc, recursive)
                rows += refused
                if not found and not refused:
                    rows.append(_row(p.name, "skipped", 0,
                                     "folder has no files matching the filters", str(p)))
                files += found
            else:
                files.append((p, p.name))
        if text is not None:
            rows.append(self.add_text(text, name or "text"))
        rows += self._index_files(files, progress)
        return _report(rows)

    def add_text(self, text: str, name: str) -> dict[str, Any]:
        """Add or replace a plain-text document called `name`; returns its report row."""
        if not text.strip():
            return _row(name, "skipped", 0, "empty text", None)
        doc_id = f"text:{name}"
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        old = self._store.doc(doc_id)
        if old and old.sha256 == sha:
            return _row(name, "unchanged", old.n_chunks, "", None)
        pending = self._prepare(DocRow(doc_id, name, None, sha, len(text), None, 0),
                                [loaders.Segment(text)], "updated" if old else "added")
        self._flush([pending])
        return pending.row

    def _index_files(self, files: list[tuple[Path, str]], progress: bool) -> list[dict[str, Any]]:
        from tqdm.auto import tqdm

        rows: list[dict[str, Any]] = []
        batch: list[_Pending] = []
        bar = tqdm(files, desc=f"indexing {self.name}", unit="file",
                   disable=not progress or len(files) < 2)
        try:
            for path, source in bar:
                pending = self._check_file(path, source, rows)
                if pending is not None:
                    batch.append(pending)
                    rows.append(pending.row)
                    if sum(len(p.pieces) for p in batch) >= _FLUSH_CHUNKS:
                        self._flush(batch)
                        batch = []
            self._flush(batch)
        finally:
            bar.close()
        return rows

    def _check_file(self, path: Path, source: str, rows: list[dict[str, Any]]) -> _Pending | None:
        """Unchanged files cost a stat (or a hash); others are read and chunked.

        Reading, parsing and chunking run inside one guard: whatever goes wrong with one file
        (a parser's bug, a RecursionError, a MemoryError) becomes that file's report row, and
        the others are still indexed.
        """
        doc_id = str(path)
        old: DocRow | None = None
        try:
            old = self._store.doc(doc_id)
            result = self._read_file(path, source, old)
        except LoadError as exc:
            rows.append(_row(source, exc.status, old.n_chunks if old else 0,
                             str(exc) + _kept(old), doc_id))
            return None
        except Exception as exc:  # the guard: no single file may abort the whole add
            log.debug("reading %s failed", path, exc_info=True)
            detail = str(exc)[:300] or "no details"
            rows.append(_row(source, "failed", old.n_chunks if old else 0,
                             f"could not be read ({type(exc).__name__}: {detail}){_kept(old)}",
                             _printable(doc_id)))
            return None
        if isinstance(result, _Pending):
            return result
        if result is not None:  # same bytes, new timestamp: remember it, nothing to index
            assert old is not None
            with self._write():
                self._store.touch(doc_id, *result)
            rows.append(_row(source, "unchanged", old.n_chunks, "same content", doc_id))
        else:
            assert old is not None
            rows.append(_row(source, "unchanged", old.n_chunks, "", doc_id))
        return None

    def _read_file(self, path: Path, source: str, old: DocRow | None
                   ) -> _Pending | tuple[int, int] | None:
        """The file chunked; or None when unchanged, (size, mtime) when only touched."""
        try:
            st = path.stat()
        except OSError as exc:
            raise LoadError(f"cannot read: {exc.strerror or exc}") from None
        if old and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
            return None
        data = loaders.read(path, self.max_file_mb)
        sha = hashlib.sha256(data).hexdigest()
        if old and old.sha256 == sha:
            return st.st_size, st.st_mtime_ns
        segments = loaders.parse(path, data, self.max_file_mb, self.max_file_seconds)
        doc = DocRow(str(path), source, str(path), sha, st.st_size, st.st_mtime_ns, 0)
        return self._prepare(doc, segments, "updated" if old else "added")

    def _prepare(self, doc: DocRow, segments: list[loaders.Segment], status: str) -> _Pending:
        pieces = chunking.split(segments, self.chunk_size, self.chunk_overlap,
                                _counter(self._embedder))
        doc.n_chunks = len(pieces)
        return _Pending(doc, segments, pieces, _row(doc.source, status, len(pieces), "", doc.path))

    def _flush(self, batch: list[_Pending]) -> None:
        """Embed the batch's new chunk texts together, then write each document atomically."""
        import numpy as np

        if not batch:
            return
        pieces = [p for item in batch for p in item.pieces]
        known = self._store.embeddings_by_hash(list({p.hash for p in pieces}))
        todo = list(dict.fromkeys(p.text for p in pieces if p.hash not in known))
        if todo:
            vectors = self._embedder.embed(todo)
            self._remember_dim(vectors.shape[1])
            for text, vec in zip(todo, vectors, strict=True):
                known[hashlib.sha256(text.encode("utf-8")).hexdigest()] = \
                    np.ascontiguousarray(vec, dtype=np.float32).tobytes()
        for item in batch:
            rows = [ChunkRow(i, p.text, p.page, p.line_start, p.line_end, p.hash,
                             " ".join(lexical.tokenize(p.text)), known[p.hash])
                    for i, p in enumerate(item.pieces)]
            with self._write():
                self._store.put_doc(item.doc, [(s.text, s.page, s.line) for s in item.segments],
                                    rows)

    def _remember_dim(self, dim: int) -> None:
        stored = self._store.get_meta("dim")
        if stored is None:
            with self._write():
                self._store.set_meta("dim", str(dim))
        elif int(stored) != dim:
            raise KnowledgeBaseError(
                f"the embedding model now returns {dim}-dimensional vectors but this knowledge "
                f"base holds {stored}-dimensional ones: `kb.rebuild()` re-embeds everything")

    # --- removing and refreshing ---------------------------------------------------------
    def remove(self, path: str | os.PathLike[str]) -> pd.DataFrame:
        """Remove a file, every file under a folder, or a text added by name."""
        key = str(Path(path).expanduser().resolve())
        docs = self._store.docs_under(key)
        text_doc = self._store.doc(f"text:{path}")
        if text_doc:
            docs.append(text_doc)
        rows = []
        with self._write():
            for d in docs:
                n = self._store.delete_doc(d.doc_id)
                rows.append(_row(d.source, "removed", n, "", d.path))
            self._store.remove_root(key)
        if not rows:
            rows.append(_row(str(path), "skipped", 0, "not in this knowledge base", key))
        return _report(rows)

    def refresh(self, progress: bool = True) -> pd.DataFrame:
        """Re-scan every added folder and file: index new and changed ones, drop deleted ones."""
        rows: list[dict[str, Any]] = []
        files: list[tuple[Path, str]] = []
        seen: set[str] = set()
        for root, inc, exc, recursive in self._store.roots():
            rp = Path(root)
            if _replaced_by_link(rp):
                # Added as a real folder or file: a link put in its place later (to /etc, to a
                # home folder) is not followed; its documents count as gone below.
                rows.append(_row(rp.name, "failed", 0, "it was replaced by a symbolic link, "
                                 "which is not followed: add the link's target itself if you "
                                 "mean it", root))
                continue
            if rp.is_dir():
                found, refused = _scan(rp, inc, exc, recursive)
                rows += refused
                for f, source in found:
                    if str(f) not in seen:
                        seen.add(str(f))
                        files.append((f, source))
            elif rp.is_file() and root not in seen:
                seen.add(root)
                files.append((rp, rp.name))
        gone = [d for d in self._store.docs() if d.path and d.path not in seen]
        if gone:
            with self._write():
                for d in gone:
                    n = self._store.delete_doc(d.doc_id)
                    rows.append(_row(d.source, "removed", n, "file no longer exists or no longer "
                                     "matches the filters", d.path))
                for root, *_ in self._store.roots():
                    if not Path(root).exists():
                        self._store.remove_root(root)
        rows += self._index_files(files, progress)
        return _report(rows)

    def rebuild(self, *, embed_model: str | Embedder | None = None,
                chunk_size: int | None = None, chunk_overlap: int | None = None) -> pd.DataFrame:
        """Re-chunk and re-embed every document from its stored text (new model or sizes)."""
        embedder = get_embedder(embed_model) if embed_model is not None else self._embedder
        size = chunk_size or self.chunk_size
        overlap = chunk_overlap if chunk_overlap is not None else (
            size // 8 if chunk_size else self.chunk_overlap)
        self._check_chunking(size, overlap)
        docs = self._store.docs()
        segs = {d.doc_id: [loaders.Segment(t, p, ln) for t, p, ln in self._store.segments(d.doc_id)]
                for d in docs}
        count = _counter(embedder)
        pieces = {d.doc_id: chunking.split(segs[d.doc_id], size, overlap, count) for d in docs}
        texts = list(dict.fromkeys(p.text for ps in pieces.values() for p in ps))
        vectors = embedder.embed(texts) if texts else None
        by_text = {t: v.tobytes() for t, v in zip(texts, vectors, strict=True)} \
            if vectors is not None else {}
        rows = []
        # One transaction for everything: a kill mid-rebuild leaves the old model's index.
        with self._write():
            for d in docs:
                chunk_rows = [ChunkRow(i, p.text, p.page, p.line_start, p.line_end, p.hash,
                                       " ".join(lexical.tokenize(p.text)), by_text[p.text])
                              for i, p in enumerate(pieces[d.doc_id])]
                d.n_chunks = len(chunk_rows)
                self._store.put_doc(d, [(s.text, s.page, s.line) for s in segs[d.doc_id]],
                                    chunk_rows)
                rows.append(_row(d.source, "updated", d.n_chunks, "rebuilt", d.path))
            self._store.set_meta("embed_model", embedder.name)
            self._store.set_meta("chunk_size", str(size))
            self._store.set_meta("chunk_overlap", str(overlap))
            if vectors is not None:
                self._store.set_meta("dim", str(vectors.shape[1]))
        self._embedder = embedder
        self.outdated = None
        return _report(rows)

    def files(self) -> pd.DataFrame:
        """The documents in the knowledge base: source, chunks, size, path."""
        import pandas as pd

        return pd.DataFrame(
            [{"source": d.source, "chunks": d.n_chunks, "bytes": d.size, "path": d.path}
             for d in self._store.docs()], columns=["source", "chunks", "bytes", "path"])

    # --- searching ------------------------------------------------------------------------
    def _current_index(self) -> _Index | None:
        dim = self._store.get_meta("dim")
        if dim is None:
            return None
        with self._index_lock:
            if self._index is None or self._index.generation != self._store.generation():
                self._index = _Index(self._store, int(dim))
            return self._index

    def search(self, query: str, k: int = 6, threshold: float = 0.0, *,
               hybrid: bool | None = None, alpha: float = 0.5) -> pd.DataFrame:
        """The `k` best chunks for `query`, ranked by score (higher is better).

        score = alpha·vector + (1−alpha)·bm25 with hybrid retrieval (the default), else the
        vector score alone. vector is the cosine similarity rescaled so that 0 is how similar
        the query is to unrelated text and 1 is identical text; bm25 is the share of the
        query's idf-weighted words the chunk contains. Both lie in [0, 1]. Rows with a score
        at or below `threshold` are left out.
        """
        import numpy as np

        columns = ["rank", "score", "source", "location", "text", "vector", "bm25", "cosine",
                   "doc_id", "chunk_id", "page", "line_start", "line_end"]
        if not isinstance(query, str) or not query.strip():
            raise ConfigurationError("the search query is empty: pass some words to look for")
        if k < 1:
            raise ConfigurationError(f"k={k}: ask for at least one result, e.g. k=6")
        index = self._current_index()
        if index is None or not len(index.ids):
            return hits_frame([], columns)
        qvec = self._embedder.embed([query])[0]
        cosine = index.matrix @ qvec
        # Calibrate: 0 at the query's similarity to unrelated text, 1 at identical text.
        if self._null is None:
            self._null = self._embedder.embed(list(NULL_TEXTS))
        level = float(np.mean(np.sort(self._null @ qvec)[-len(NULL_TEXTS) // 2:]))
        vec = np.clip((cosine - level) / max(1.0 - level, 1e-6), 0.0, 1.0)
        use_bm25 = self.hybrid if hybrid is None else hybrid
        if use_bm25:
            _raw, bm = index.bm25.scores(lexical.query_terms(query))
            score = alpha * vec + (1 - alpha) * bm
        else:
            bm = np.zeros_like(vec)
            score = vec
        keep = np.flatnonzero(score > threshold)
        top = keep[np.argsort(-score[keep], kind="stable")][:k]
        info = self._store.chunks_by_id([int(index.ids[i]) for i in top])
        rows = []
        for rank, i in enumerate(top, 1):
            cid = int(index.ids[i])
            if cid not in info:  # deleted between the index snapshot and now
                continue
            doc_id, source, text, page, l0, l1 = info[cid]
            rows.append({"rank": rank, "score": round(float(score[i]), 4), "source": source,
                         "location": chunking.location(page, l0, l1), "text": text,
                         "vector": round(float(vec[i]), 4), "bm25": round(float(bm[i]), 4),
                         "cosine": round(float(cosine[i]), 4),
                         "doc_id": doc_id, "chunk_id": cid, "page": page, "line_start": l0,
                         "line_end": l1})
        return hits_frame(rows, columns)

    # --- asking ---------------------------------------------------------------------------
    @overload
    def ask(self, question: str, model: str | None = None, *, k: int = 4,
            threshold: float = ASK_THRESHOLD, client: Client | None = None,
            stream: Literal[False] = False, **kwargs: Any) -> Reply: ...

    @overload
    def ask(self, question: str, model: str | None = None, *, k: int = 4,
            threshold: float = ASK_THRESHOLD, client: Client | None = None,
            stream: Literal[True], **kwargs: Any) -> ReplyStream: ...

    def ask(self, question: str, model: str | None = None, *, k: int = 4,
            threshold: float = ASK_THRESHOLD, client: Client | None = None, stream: bool = False,
            **kwargs: Any) -> Reply | ReplyStream:
        """Answer from the best passages, citing them as [n]; `Reply.sources` lists them."""
        return answer.ask(self, question, model, k=k, threshold=threshold, client=client,
                   stream=stream, **kwargs)

    def as_retriever(self, k: int = 6, threshold: float = 0.0) -> Any:
        """This knowledge base as a llama-index retriever (NodeWithScore results)."""
        from .llamaindex import KBRetriever  # llama-index's retriever classes are heavy

        return KBRetriever(self, k=k, threshold=threshold)


@dataclass(frozen=True)
class HitVerdict:
    """Whether a search put the passage containing `expected` first, and where it ranked."""

    correct: bool
    expected: str
    #: The rank of the first passage containing `expected`, None when none of them does.
    rank: int | None
    shown: int

    @property
    def symbol(self) -> str:
        """✓ or ✗."""
        return "✓" if self.correct else "✗"

    def __str__(self) -> str:
        if self.correct:
            return f"✓ rank 1 contains {self.expected!r}"
        if self.rank is None:
            return f"✗ none of the {self.shown} passages contains {self.expected!r}"
        return f"✗ rank 1 does not contain {self.expected!r}; rank {self.rank} does"


def hit_verdict(texts: Sequence[str], expected: str) -> HitVerdict:
    """Whether the first of the ranked passage `texts` contains `expected` (the answer's text):
    ✓, else ✗ and where, if anywhere, it ranks (for any ranked passages, e.g. an MCP search's)."""
    if not isinstance(expected, str) or not expected.strip():
        raise ConfigurationError("a verdict needs the text the right passage contains, "
                                 "e.g. hits.verdict('八十度')")
    rank = next((i for i, t in enumerate(texts, 1) if expected in str(t)), None)
    return HitVerdict(rank == 1, expected, rank, len(texts))


@lru_cache(maxsize=1)
def _hits_type() -> type:
    """A DataFrame that shows passage text as text in a notebook (pandas writes a newline as a
    literal "\\n" in its HTML); the data itself is unchanged. Built on first use: pandas is
    imported only when a search runs."""
    import pandas as pd

    class SearchHits(pd.DataFrame):
        """Search results: a DataFrame whose notebook table reads passages as prose."""

        @property
        def _constructor(self) -> type:
            return SearchHits

        def verdict(self, expected: str) -> HitVerdict:
            """✓ when the first passage contains `expected` (the answer's text), else ✗ and
            where, if anywhere, it ranks; for showing whether a search found what it should."""
            return hit_verdict(list(self["text"]) if "text" in self else [], expected)

        def _repr_html_(self) -> str | None:
            shown = pd.DataFrame(self)
            if "text" in shown:
                shown = shown.assign(text=shown["text"].astype(str).str.replace(
                    r"\s+", " ", regex=True))
            return shown._repr_html_()

    return SearchHits


def hits_frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Search results as a `SearchHits` DataFrame."""
    return _hits_type()(rows, columns=columns)


def _counter(embedder: Embedder) -> chunking.Counter:
    """Word pieces as the embedder's own tokenizer counts them (the local MiniLM, Hugging
    Face models), else an estimate (Ollama's models)."""
    count = getattr(embedder, "count_tokens", None)
    if count is None:
        return chunking.estimate_pieces
    # count_tokens includes the special tokens ([CLS] and [SEP]); a chunk's are counted without.
    special = count([""])[0]
    return lambda texts: [n - special for n in count(texts)]


def _as_list(paths: Any) -> list[Any]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def _replaced_by_link(path: Path) -> bool:
    """Whether `path` (stored resolved when it was added) now leads through a symbolic link."""
    try:
        return path.is_symlink() or path.resolve() != path
    except (OSError, RuntimeError):  # a link loop
        return True


def _scan(root: Path, include: list[str], exclude: list[str], recursive: bool
          ) -> tuple[list[tuple[Path, str]], list[dict[str, Any]]]:
    """Files under `root` (resolved) matching the globs, as (real path, source name) pairs,
    each once; and a report row for each path that cannot be used.

    VCS, cache and hidden folders are not entered. A symbolic link is followed only when it
    stays inside the folder (its file is then indexed once, under its real name); a link that
    leaves the folder, loops or dangles gets a row, and nothing is read from its target.
    """
    found: dict[Path, str] = {}
    rows: list[dict[str, Any]] = []

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        rows.append(_row(_source(where, root), "failed", 0,
                         f"cannot read this folder: {exc.strerror or exc}", str(where)))

    if recursive:
        walker: Iterable[tuple[str, list[str], list[str]]] = os.walk(root, onerror=unreadable)
    else:
        try:
            walker = [(str(root), [], sorted(os.listdir(root)))]
        except OSError as exc:
            unreadable(exc)
            walker = []
    for folder, dirs, names in walker:
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for d in dirs:
            # os.walk does not follow directory links; one leaving the folder still gets a row.
            _check_link(Path(folder) / d, root, rows, want_file=False)
        for n in sorted(names):
            f = Path(folder) / n
            rel = f.relative_to(root).as_posix()  # lexical: walked paths are under root
            if n.startswith("."):
                continue
            if include and not any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(n, g)
                                   for g in include):
                continue
            if any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(n, g) for g in exclude):
                continue
            if not _utf8(rel):  # SQLite (and every report) needs text
                rows.append(_row(_source(f, root), "failed", 0, _NOT_UTF8, _printable(str(f))))
                continue
            real = _check_link(f, root, rows, want_file=True)
            if real is not None and real not in found:
                found[real] = _source(real, root)
    return list(found.items()), rows


def _check_link(path: Path, root: Path, rows: list[dict[str, Any]], *, want_file: bool
                ) -> Path | None:
    """The real path of a regular file (or of a link inside `root` to one), else None.

    A link that leaves the folder, loops or dangles, and a path that cannot be examined,
    adds a row instead.
    """
    link = False
    try:
        link = path.is_symlink()
        if not link:
            # Walked folders are real folders under `root`, so `path` is already real.
            # FIFOs, sockets and devices are not files: reading a FIFO would block forever.
            return path if want_file and path.is_file() else None
        real = path.resolve(strict=True)
        inside = real.is_relative_to(root)
        is_file = inside and real.is_file()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a link loop
        why = "a symbolic link that loops or points nowhere" if link else "cannot be examined"
        rows.append(_row(_source(path, root), "failed", 0, f"{why}: {exc}", str(path)))
        return None
    if not inside:
        rows.append(_row(_source(path, root), "skipped", 0,
                         "a symbolic link that points outside the folder: skipped, nothing "
                         "read from its target", str(path)))
        return None
    return real if want_file and is_file else None


def _source(path: Path, root: Path) -> str:
    """The name shown for a file: the added folder's name plus the path inside it."""
    if not path.is_relative_to(root):
        return _printable(path.name)
    return _printable(f"{root.name}/{path.relative_to(root).as_posix()}")


_NOT_UTF8 = "the file name is not valid UTF-8: rename the file to index it"


def _utf8(text: str) -> bool:
    """Whether a path (bytes decoded with surrogate escapes) is valid UTF-8 text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """A path for a report: bytes that are not UTF-8 shown as U+FFFD."""
    return text if _utf8(text) else \
        text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _kept(old: DocRow | None) -> str:
    return "; the previously indexed version is kept" if old else ""


def _row(source: str, status: str, chunks: int, reason: str, path: str | None) -> dict[str, Any]:
    return {"source": source, "status": status, "chunks": chunks, "reason": reason, "path": path}


def _report(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows, columns=REPORT_COLUMNS)
