"""ipywidgets front-ends: `chat()`, `compare()`, `arena()` and `knowledge_base()`.

Each widget lives in its own module on the shared machinery of `base` (status line, worker
thread, model preparation, the one streaming loop). Every part carries a stable `dskit-…` CSS
class so browser tests and styles can find it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .arena_widget import ArenaWidget
from .chat_widget import ChatWidget
from .compare_widget import CompareWidget
from .kb_widget import KnowledgeBaseWidget

if TYPE_CHECKING:
    from ..client import Client
    from ..kb import KnowledgeBase

__all__ = ["ArenaWidget", "ChatWidget", "CompareWidget", "KnowledgeBaseWidget", "arena", "chat",
           "compare", "knowledge_base"]


def chat(client: Client | None = None, model: str | None = None, **kwargs: Any) -> ChatWidget:
    """An interactive chat widget for a notebook."""
    return ChatWidget(client, model, **kwargs)


def compare(client: Client | None = None, models: list[str] | None = None,
            **kwargs: Any) -> CompareWidget:
    """An interactive comparison widget for a notebook."""
    return CompareWidget(client, models, **kwargs)


def arena(client: Client | None = None, models: list[str] | None = None,
          **kwargs: Any) -> ArenaWidget:
    """A blind arena: 2–4 models answer the same prompt in columns A, B, …; vote, then see who
    was who; votes build a leaderboard (`ds.arena.leaderboard()`)."""
    return ArenaWidget(client, models, **kwargs)


def knowledge_base(kb: KnowledgeBase | str = "notebook", **kwargs: Any) -> KnowledgeBaseWidget:
    """Upload files, search with a ranked table, ask with cited sources (a name opens or
    creates the knowledge base)."""
    return KnowledgeBaseWidget(kb, **kwargs)
