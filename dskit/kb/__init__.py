"""Knowledge bases over local files: `ds.KnowledgeBase(name).add(paths)`, `.search()`, `.ask()`."""

from __future__ import annotations

from .knowledge import (
    KnowledgeBase,
    KnowledgeBaseBusy,
    KnowledgeBaseError,
    kb_home,
    list_kbs,
    validate_name,
)
from .loaders import LoadError

__all__ = ["KnowledgeBase", "KnowledgeBaseBusy", "KnowledgeBaseError", "LoadError", "kb_home",
           "list_kbs", "validate_name"]
