"""The chat layer: a reply as a stream (`stream`), the steps of a structured or tool reply
(`steps`), and `chat()` / `Conversation` (`session`), each importing only the ones before it."""

from .session import Conversation, chat
from .stream import ChatStream, as_messages, build_request

__all__ = ["ChatStream", "Conversation", "as_messages", "build_request", "chat"]
