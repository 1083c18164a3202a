"""The knowledge-base widget: upload files, read the report, search, ask with sources."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

import ipywidgets as W

from ..client import Client, default_client
from ..kb import KnowledgeBase
from ..kb.excerpt import excerpt
from ..kb.knowledge import ASK_THRESHOLD, REPORT_COLUMNS
from ..reply import Reply
from .base import (
    StatusLine,
    Worker,
    WorkerWidget,
    controls,
    error_html,
    prepare_embedder,
    prepare_model,
    stop_button,
    stream_reply,
    tagged,
)

if TYPE_CHECKING:
    import pandas as pd

# Folders, controls (C0, DEL, C1), bidi overrides and lone surrogates never reach a file name.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f/\\:\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     r"\ud800-\udfff]")
#: The longest file name in bytes that common file systems accept (ext4, APFS, NTFS).
NAME_MAX = 255


def table_html(df: pd.DataFrame, columns: list[str], css: str) -> str:
    """An escaped HTML table of the given columns (document text is untrusted)."""
    if df.empty:
        return f"<div class='{css}'><i>nothing</i></div>"
    shown = df[columns].copy()
    if "text" in shown:
        shown["text"] = shown["text"].str.replace(r"\s+", " ", regex=True).str.slice(0, 160)
    return shown.to_html(index=False, escape=True, classes=css, border=0)


def safe_upload_name(name: str) -> str:
    """A plain file name from an uploaded name: no folders, no control characters, and at
    most `NAME_MAX` bytes of UTF-8 (a longer name is cut at a character, keeping its suffix)."""
    base = _UNSAFE.sub("_", Path(str(name).replace("\\", "/")).name).strip(" .")
    if len(base.encode()) <= NAME_MAX:
        return base or "upload"
    stem, dot, suffix = base.rpartition(".")
    # The suffix decides how the file is read: kept whole unless it alone would fill the name.
    ext = f".{suffix}" if dot and stem and len(suffix.encode()) <= NAME_MAX // 2 else ""
    stem = stem if ext else base
    cut = stem.encode()[:NAME_MAX - len(ext.encode())].decode("utf-8", "ignore")
    return (cut.rstrip(" .") or "upload") + ext


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name (2).ext`… when an earlier file of the same upload has it."""
    n, candidate = 1, name
    while candidate in taken:
        n += 1
        stem, dot, suffix = name.rpartition(".")
        tag = f" ({n})"
        stem = stem if dot else name
        room = NAME_MAX - len(tag.encode()) - len((dot + suffix if dot else "").encode())
        candidate = stem.encode()[:room].decode("utf-8", "ignore") + tag + \
            (dot + suffix if dot else "")
    taken.add(candidate)
    return candidate


class KnowledgeBaseWidget(WorkerWidget):
    """Upload → report, search → ranked table, ask → streamed answer with cited sources."""

    def __init__(self, kb: KnowledgeBase | str = "notebook", *, client: Client | None = None,
                 model: str | None = None, max_tokens: int = 512, k: int = 4,
                 threshold: float | None = None) -> None:
        self.kb = kb if not isinstance(kb, str) else KnowledgeBase(kb)
        self._client = client
        self.model = model
        self.threshold = ASK_THRESHOLD if threshold is None else threshold
        self.max_tokens = max_tokens
        self.upload = tagged(W.FileUpload(
            multiple=True, description="Add files",
            accept=".txt,.md,.pdf,.docx,.html,.htm,.csv,.json,.py"), "upload")
        self.report = tagged(W.HTML(value=""), "report")
        # continuous_update=False: the value arrives when the box loses focus, i.e. before a
        # click on the button that reads it (per-keystroke updates could arrive after it).
        self.query = tagged(W.Text(placeholder="Search… 例如：龙井的水温", continuous_update=False,
                                   layout=W.Layout(width="60%")), "query")
        self.k = W.IntSlider(value=k, min=1, max=20, description="k")
        self.search_button = tagged(W.Button(description="Search", icon="search"), "search")
        self.results = tagged(W.HTML(value=""), "results")
        self.question = tagged(W.Textarea(placeholder="Ask… 例如：冲泡龙井用多少度的水？",
                                          continuous_update=False,
                                          layout=W.Layout(width="100%", height="4em")),
                               "question")
        self.think = tagged(W.Checkbox(value=True, description="reason first", indent=False),
                            "think")
        self.ask_button = tagged(W.Button(description="Ask", button_style="primary",
                                          icon="comments"), "ask")
        self.stop_button = stop_button()
        self.answer = tagged(W.HTML(value=""), "answer")
        #: The last answer as a `Reply` (None before the first, or when it broke off).
        self.last_reply: Reply | None = None
        self.status = StatusLine()
        self.status.done(self._summary())
        self.worker = Worker(self.status, self._set_busy)
        self.upload.observe(lambda _change: self.add_uploaded(), names="value")
        self.search_button.on_click(lambda _: self.search())
        self.query.on_submit(lambda _: self.search())
        self.ask_button.on_click(lambda _: self.ask())
        self.stop_button.on_click(lambda _: self.stop())
        super().__init__([
            self.status,
            controls(self.upload), self.report,
            controls(self.query, self.k, self.search_button), self.results,
            self.question, controls(self.think, self.ask_button, self.stop_button), self.answer,
        ])
        self.add_class("dskit-kb")

    def _summary(self) -> str:
        return (f"knowledge base {self.kb.name!r}: {len(self.kb.files())} documents, "
                f"{len(self.kb)} chunks · embedding model {self.kb.embed_model}")

    @property
    def client(self) -> Client:
        """The chat client, connected on first use."""
        if self._client is None:
            self._client = default_client()
        return self._client

    # --- upload ---------------------------------------------------------------------------
    def add_uploaded(self) -> pd.DataFrame | None:
        """Save the uploaded files next to the knowledge base, add them, show the report.

        Whatever happens, the status line says it: a file that cannot be saved gets a
        report row, a name too long for the file system is shortened (and the row says so).
        """
        files = list(self.upload.value or ())
        if not files:
            return None
        # The value is kept until the next upload: the button then says how many files it got
        # (clearing it showed "Add files (0)" right after an upload).
        try:
            prepare_embedder(self.kb.embedder, self.status)
            self.status.busy(f"indexing {len(files)} file(s)…")
            report = self._save_and_add(files)
        except Exception as exc:  # shown in the widget, not lost in a callback's log
            self.status.error(exc)
            return None
        self.report.value = table_html(report, ["source", "status", "chunks", "reason"],
                                       "dskit-kb-report-table")
        counts = report.status.value_counts()
        done = ", ".join(f"{n} {status}" for status, n in counts.items())
        self.status.done(f"{len(files)} file(s): {done} · {self._summary()}")
        return report

    def _save_and_add(self, files: list[dict]) -> pd.DataFrame:
        import pandas as pd

        folder = self.kb.path / "uploads"
        folder.mkdir(exist_ok=True)
        paths: list[Path] = []
        failed: list[dict] = []
        renamed: dict[str, str] = {}
        taken: set[str] = set()
        for item in files:
            given = str(item.get("name", ""))
            name = _unique(safe_upload_name(given), taken)
            target = folder / name
            try:
                target.write_bytes(bytes(item["content"]))
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or exc
                failed.append({"source": given, "status": "failed", "chunks": 0,
                               "reason": f"could not be saved: {why}", "path": str(target)})
                continue
            paths.append(target)
            if name != Path(given.replace("\\", "/")).name:
                renamed[str(target.resolve())] = name
        report = self.kb.add(paths, progress=False) if paths else \
            pd.DataFrame(columns=REPORT_COLUMNS)
        for i, path in report.path.items():
            if path in renamed:
                note = f"saved as {renamed[path]!r} (a safe, shorter name)"
                reason = report.at[i, "reason"]
                report.at[i, "reason"] = f"{note}; {reason}" if reason else note
        if failed:
            report = pd.concat([report, pd.DataFrame(failed, columns=REPORT_COLUMNS)],
                               ignore_index=True)
        return report

    # --- search ---------------------------------------------------------------------------
    def search(self) -> pd.DataFrame | None:
        """Run the query box's search and show the ranked table."""
        query = self.query.value.strip()
        if not query:
            return None
        try:
            prepare_embedder(self.kb.embedder, self.status)
            self.status.busy("searching…")
            hits = self.kb.search(query, k=self.k.value)
        except Exception as exc:  # shown in the widget
            self.results.value = error_html(exc)
            self.status.error(exc)
            return None
        shown = hits.assign(text=[excerpt(t, query) for t in hits["text"]])  # around the match
        self.results.value = table_html(shown, ["rank", "score", "source", "location", "text"],
                                        "dskit-kb-results-table")
        self.status.done(f"{len(hits)} passage(s) for {query!r}")
        return hits

    # --- ask ------------------------------------------------------------------------------
    def ask(self, wait: bool = False) -> None:
        """Ask the question box's question in a thread (Stop stays clickable)."""
        question = self.question.value.strip()
        if not question or self.busy:
            return
        self.answer.value = f"<div><b>Q:</b> {html.escape(question)}</div>"
        self.status.busy("searching the knowledge base…")
        self.worker.start(self._run, question)
        if wait:
            self.wait()

    def _set_busy(self, busy: bool) -> None:
        self.ask_button.disabled = busy
        self.stop_button.disabled = not busy

    def _run(self, question: str) -> None:
        asked = f"<div><b>Q:</b> {html.escape(question)}</div>"
        model = self.model or self.client.default_model
        prepare_embedder(self.kb.embedder, self.status)
        prepare_model(self.client, model, self.status)
        if self.worker.stopping.is_set():
            self.status.done("stopped before the model started", stopped=True)
            return
        stream = self.kb.ask(question, model, client=self.client, stream=True,
                             threshold=self.threshold, max_tokens=self.max_tokens,
                             think=self.think.value, loop_guard=True)
        self.status.busy(f"{model}: waiting for the first token…")
        self.last_reply = stream_reply(stream, self.answer, asked, self.status, self.worker)
