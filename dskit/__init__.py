"""dskit: run and learn the DeepSeek-R1 family from a notebook (`import dskit as ds`)."""

from __future__ import annotations

import importlib
from typing import Any

from . import errors
from .chat import ChatStream, Conversation, chat
from .client import Client, connect
from .doctor import doctor
from .gguf import register_gguf
from .reasoning import MATH_DIRECTIVE, Chunk, extract_boxed, math_prompt, split_think
from .reply import Reply, Stats

__version__ = "0.1.0"

__all__ = [
    "MATH_DIRECTIVE",
    "ChatStream",
    "Chunk",
    "Client",
    "Conversation",
    "Reply",
    "Stats",
    "chat",
    "connect",
    "doctor",
    "errors",
    "extract_boxed",
    "math_prompt",
    "register_gguf",
    "split_think",
    "widgets",
]


def __getattr__(name: str) -> Any:
    # ipywidgets is imported only when the widgets are first used.
    if name == "widgets":
        return importlib.import_module(".widgets", __name__)
    raise AttributeError(f"module 'dskit' has no attribute {name!r}")
