"""Knowledge bases over local files: `ds.KnowledgeBase(name).add(paths)`, `.search()`, `.ask()`."""

from __future__ import annotations

from ..errors import KnowledgeBaseBusy, KnowledgeBaseError, LoadError
from .knowledge import KnowledgeBase, hit_verdict, kb_home, list_kbs, validate_name

__all__ = ["KnowledgeBase", "KnowledgeBaseBusy", "KnowledgeBaseError", "LoadError", "hit_verdict",
           "kb_home", "list_kbs", "validate_name"]
