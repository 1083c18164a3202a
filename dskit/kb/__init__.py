"""Knowledge bases over local files: `ds.KnowledgeBase(name).add(paths)`, `.search()`, `.ask()`."""

from __future__ import annotations

from ..errors import KnowledgeBaseBusy, KnowledgeBaseError, LoadError
from .knowledge import KnowledgeBase, kb_home, list_kbs, validate_name

__all__ = ["KnowledgeBase", "KnowledgeBaseBusy", "KnowledgeBaseError", "LoadError", "kb_home",
           "list_kbs", "validate_name"]
