"""dskit: run and learn the DeepSeek-R1 family from a notebook (`import dskit as ds`).

The public API is the flat list in `__all__`; modules are named by concept and documented in
docs/architecture.md. Heavy parts (widgets, pandas, llama-index, the server) load only when
first used: importing dskit does no I/O and starts nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import arena, config, errors, tools
from .client import Client, connect
from .columns import SideBySide, side_by_side
from .comparison import CompareFunction
from .conversation import ChatStream, Conversation, chat
from .health import doctor
from .model_files import register_gguf
from .reasoning import MATH_DIRECTIVE, Chunk, extract_boxed, math_prompt, split_think
from .reply import Reply, Source, Stats
from .reports import report

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
    "embeddings",
    "errors",
    "extract_boxed",
    "grading",
    "kb",
    "math_prompt",
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

# Subpackages whose dependencies (ipywidgets, pandas, matplotlib, llama-index, Starlette) are
# heavy: imported on first attribute access.
_LAZY = ("widgets", "models", "plots", "prompts", "grading", "kb", "embeddings", "serve")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name == "KnowledgeBase":  # llama-index and friends load only when a KB is used
        return importlib.import_module(".kb", __name__).KnowledgeBase
    raise AttributeError(f"module 'dskit' has no attribute {name!r}")
