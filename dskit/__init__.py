"""dskit: run and learn the DeepSeek-R1 family from a notebook (`import dskit as ds`)."""

from __future__ import annotations

import importlib
from typing import Any

from . import errors
from .chat import ChatStream, Conversation, chat
from .client import Client, connect
from .compare import compare
from .doctor import doctor
from .gguf import register_gguf
from .reasoning import MATH_DIRECTIVE, Chunk, extract_boxed, math_prompt, split_think
from .reply import Reply, Source, Stats

__version__ = "0.1.0"

__all__ = [
    "MATH_DIRECTIVE",
    "ChatStream",
    "Chunk",
    "Client",
    "Conversation",
    "KnowledgeBase",
    "Reply",
    "Source",
    "Stats",
    "chat",
    "compare",
    "connect",
    "doctor",
    "errors",
    "extract_boxed",
    "kb",
    "math_prompt",
    "models",
    "register_gguf",
    "serve",
    "split_think",
    "widgets",
]


def __getattr__(name: str) -> Any:
    # Heavy parts (ipywidgets, pandas, matplotlib, the server) load only when first used.
    if name in ("widgets", "models", "plots", "prompts", "kb", "embeddings", "serve"):
        return importlib.import_module(f".{name}", __name__)
    if name == "KnowledgeBase":  # llama-index and friends load only when a KB is used
        return importlib.import_module(".kb", __name__).KnowledgeBase
    raise AttributeError(f"module 'dskit' has no attribute {name!r}")
