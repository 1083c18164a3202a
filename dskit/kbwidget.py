"""The knowledge-base widget: upload files, read the report, search, ask with sources."""

from __future__ import annotations

import html
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from .display import reply_html
from .errors import DskitError, StreamInterrupted

if TYPE_CHECKING:
    import pandas as pd

    from .chat import ChatStream
    from .client import Client
    from .kb import KnowledgeBase

_REFRESH_S = 0.1
_UNSAFE = re.compile(r"[\x00-\x1f/\\:]")


def _error(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, DskitError) else f"{type(exc).__name__}: {exc}"
    return f"<span style='color:#c22'>{html.escape(text)}</span>"


def table_html(df: pd.DataFrame, columns: list[str], css: str) -> str:
    """An escaped HTML table of the given columns (document text is untrusted)."""
    if df.empty:
        return f"<div class='{css}'><i>nothing</i></div>"
    shown = df[columns].copy()
    if "text" in shown:
        shown["text"] = shown["text"].str.replace(r"\s+", " ", regex=True).str.slice(0, 160)
    return shown.to_html(index=False, escape=True, classes=css, border=0)


def safe_upload_name(name: str) -> str:
    """A plain file name from an uploaded name: no folders, no control characters."""
    base = _UNSAFE.sub("_", Path(str(name).replace("\\", "/")).name).strip(" .")
    return base or "upload"


class KnowledgeBaseWidget(W.VBox):
    """Upload → report, search → ranked table, ask → streamed answer with cited sources."""

    def __init__(self, kb: KnowledgeBase | str = "notebook", *, client: Client | None = None,
                 model: str | None = None, max_tokens: int = 512, k: int = 4,
                 threshold: float | None = None) -> None:
        from .kb import KnowledgeBase
        from .kb.knowledge import ASK_THRESHOLD

        self.kb = kb if not isinstance(kb, str) else KnowledgeBase(kb)
        self._client = client
        self.model = model
        self.upload = W.FileUpload(multiple=True, description="Add files",
                                   accept=".txt,.md,.pdf,.docx,.html,.htm,.csv,.json,.py")
        self.report = W.HTML(value="")
        self.query = W.Text(placeholder="Search… 例如：龙井的水温", layout=W.Layout(width="60%"))
        self.k = W.IntSlider(value=k, min=1, max=20, description="k")
        self.search_button = W.Button(description="Search", icon="search")
        self.results = W.HTML(value="")
        self.question = W.Textarea(placeholder="Ask… 例如：冲泡龙井用多少度的水？",
                                   layout=W.Layout(width="100%", height="4em"))
        self.threshold = ASK_THRESHOLD if threshold is None else threshold
        self.max_tokens = max_tokens
        self.think = W.Checkbox(value=True, description="reason first", indent=False)
        self.ask_button = W.Button(description="Ask", button_style="primary", icon="comments")
        self.stop_button = W.Button(description="Stop", button_style="warning", icon="stop",
                                    disabled=True)
        self.answer = W.HTML(value="")
        self.status = W.HTML(value=self._summary())
        self._stream: ChatStream | None = None
        self._thread: threading.Thread | None = None
        self.upload.observe(lambda _change: self.add_uploaded(), names="value")
        self.search_button.on_click(lambda _: self.search())
        self.query.on_submit(lambda _: self.search())
        self.ask_button.on_click(lambda _: self.ask())
        self.stop_button.on_click(lambda _: self.stop())
        for widget, css in ((self.report, "dskit-kb-report"), (self.results, "dskit-kb-results"),
                            (self.answer, "dskit-kb-answer"), (self.status, "dskit-kb-status")):
            widget.add_class(css)
        super().__init__([
            self.status,
            W.HBox([self.upload]), self.report,
            W.HBox([self.query, self.k, self.search_button]), self.results,
            self.question, W.HBox([self.think, self.ask_button, self.stop_button]), self.answer,
        ])
        self.add_class("dskit-kb")

    def _summary(self) -> str:
        files = len(self.kb.files())
        return html.escape(f"knowledge base {self.kb.name!r}: {files} documents, "
                           f"{len(self.kb)} chunks · embedding model {self.kb.embed_model}")

    @property
    def client(self) -> Client:
        """The chat client, connected on first use."""
        if self._client is None:
            from .client import default_client

            self._client = default_client()
        return self._client

    # --- upload ---------------------------------------------------------------------------
    def add_uploaded(self) -> pd.DataFrame | None:
        """Save the uploaded files next to the knowledge base, add them, show the report."""
        files = list(self.upload.value or ())
        if not files:
            return None
        folder = self.kb.path / "uploads"
        folder.mkdir(exist_ok=True)
        paths = []
        for item in files:
            target = folder / safe_upload_name(item["name"])
            target.write_bytes(bytes(item["content"]))
            paths.append(target)
        self.upload.value = ()  # the bytes live on disk now; do not keep a copy in the widget
        self.status.value = f"<i>indexing {len(paths)} file(s)…</i>"
        try:
            report = self.kb.add(paths, progress=False)
        except Exception as exc:  # shown in the widget, not lost in a callback's log
            self.status.value = _error(exc)
            return None
        self.report.value = table_html(report, ["source", "status", "chunks", "reason"],
                                       "dskit-kb-report-table")
        self.status.value = self._summary()
        return report

    # --- search ---------------------------------------------------------------------------
    def search(self) -> pd.DataFrame | None:
        """Run the query box's search and show the ranked table."""
        query = self.query.value.strip()
        if not query:
            return None
        try:
            hits = self.kb.search(query, k=self.k.value)
        except Exception as exc:  # shown in the widget
            self.results.value = _error(exc)
            return None
        self.results.value = table_html(hits, ["rank", "score", "source", "location", "text"],
                                        "dskit-kb-results-table")
        return hits

    # --- ask ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether an answer is being generated."""
        return self._thread is not None and self._thread.is_alive()

    def ask(self, wait: bool = False) -> None:
        """Ask the question box's question in a thread (Stop stays clickable)."""
        question = self.question.value.strip()
        if not question or self.busy:
            return
        self.ask_button.disabled, self.stop_button.disabled = True, False
        self.answer.value = f"<div><b>Q:</b> {html.escape(question)}</div>"
        self.status.value = "<i>searching, then waiting for the model…</i>"
        self._thread = threading.Thread(target=self._run, args=(question,), daemon=True)
        self._thread.start()
        if wait:
            self.wait()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the current answer is finished."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        """Stop the answer being generated."""
        if self._stream is not None:
            self._stream.stop()

    def _run(self, question: str) -> None:
        asked = f"<div><b>Q:</b> {html.escape(question)}</div>"
        try:
            stream = self.kb.ask(question, self.model, client=self.client, stream=True,
                                 threshold=self.threshold, max_tokens=self.max_tokens,
                                 think=self.think.value)
            self._stream = stream  # type: ignore[assignment]
            last = 0.0
            for _ in stream:
                if time.monotonic() - last >= _REFRESH_S:
                    last = time.monotonic()
                    self.status.value = "<i>generating…</i>"
                    self.answer.value = asked + reply_html(stream.reply, open_thinking=True,
                                                           streaming=True)
            self.answer.value = asked + reply_html(stream.reply)
            self.status.value = html.escape(("stopped · " if stream.stopped else "")
                                            + stream.reply.stats.summary())
        except StreamInterrupted as exc:
            if exc.partial is not None:
                self.answer.value = asked + reply_html(exc.partial)
            self.status.value = _error(exc)
        except Exception as exc:  # a worker thread has no caller: show it rather than lose it
            self.status.value = _error(exc)
        finally:
            self._stream = None
            self.ask_button.disabled, self.stop_button.disabled = False, True


def knowledge_base(kb: KnowledgeBase | str = "notebook", **kwargs: Any) -> KnowledgeBaseWidget:
    """A knowledge-base widget for a notebook (a name opens or creates it)."""
    return KnowledgeBaseWidget(kb, **kwargs)
