"""dskit: run and learn the DeepSeek-R1 family from a notebook (`import dskit as ds`).

The public API is the flat list in `__all__`; modules are named by concept and documented in
docs/architecture.md. Heavy parts (widgets, pandas, llama-index, the server) load only when
first used: importing dskit does no I/O and starts nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import config, errors, tools
from .checkup import doctor
from .client import Client, connect
from .conversation.exits import early_exits
from .conversation.session import Conversation, chat
from .conversation.stream import ChatStream
from .evals import arena
from .evals.comparison import CompareFunction
from .evals.reports import report
from .evals.side_by_side import SideBySide, side_by_side
from .mcp_tools import mcp_http, mcp_stdio
from .reasoning.think import MATH_DIRECTIVE, Chunk, extract_boxed, math_prompt, split_think
from .reply import Reply, Source, Stats
from .weights.files import register_gguf

if TYPE_CHECKING:
    from .kb import KnowledgeBase

__version__ = "0.1.0"

#: `ds.compare(models, prompts, samples)` runs a comparison; `ds.compare.summary(rows)`.
compare = CompareFunction()

__all__ = [
    "MATH_DIRECTIVE",
    "ChatStream",
    "Chunk",
    "Client",
    "Conversation",
    "KnowledgeBase",
    "Reply",
    "SideBySide",
    "Source",
    "Stats",
    "arena",
    "chat",
    "compare",
    "config",
    "connect",
    "doctor",
    "early_exits",
    "embeddings",
    "errors",
    "extract_boxed",
    "grading",
    "kb",
    "math_prompt",
    "mcp_http",
    "mcp_stdio",
    "models",
    "plots",
    "prompts",
    "register_gguf",
    "report",
    "serve",
    "side_by_side",
    "split_think",
    "tools",
    "widgets",
]

# Modules whose dependencies (ipywidgets, pandas, matplotlib, llama-index, Starlette) are heavy:
# imported on first attribute access (`ds.prompts` is dskit.evals.prompts).
_LAZY = {"widgets": ".widgets", "models": ".models", "plots": ".evals.plots",
         "prompts": ".evals.prompts", "grading": ".evals.grading", "kb": ".kb",
         "embeddings": ".embeddings", "serve": ".serve", "evals": ".evals",
         "reasoning": ".reasoning", "weights": ".weights"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(_LAZY[name], __name__)
    if name == "KnowledgeBase":  # llama-index and friends load only when a KB is used
        return importlib.import_module(".kb", __name__).KnowledgeBase
    raise AttributeError(f"module 'dskit' has no attribute {name!r}")
