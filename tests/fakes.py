"""A scripted backend on the real `Backend` seam, for fast, deterministic chat-layer tests.

The real backends are tested against real models and servers elsewhere; this one lets a test
say exactly which pieces arrive, in which order, and where a stream breaks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from dskit.backends.base import ChatRequest, Delta, Done, Event
from dskit.errors import StreamInterrupted
from dskit.reasoning.plan import ReasoningSupport
from dskit.reply import Stats

Step = str | Delta | Done | BaseException


class ScriptedBackend:
    """Replays a script per request: strings are raw text, `Delta`s and `Done`s go as they are,
    an exception is raised where it stands. Without a `Done`, one is added at the end."""

    name = "fake"

    def __init__(self, *scripts: Sequence[Step], support: ReasoningSupport | None = None,
                 models: Sequence[str] = ("fake:1b",), details: dict[str, Any] | None = None,
                 gate: threading.Event | None = None) -> None:
        self.scripts = [list(s) for s in scripts]
        self.support = support or ReasoningSupport()
        self.models = list(models)
        self.details = details or {}
        #: When set, the stream waits on it before each step (to stop it from another thread).
        self.gate = gate
        self.requests: list[ChatRequest] = []
        self.closed: list[bool] = []  # per request: whether the consumer closed the stream

    @property
    def default_model(self) -> str:
        return self.models[0]

    def list_models(self) -> list[str]:
        return list(self.models)

    def model_details(self, model: str) -> dict[str, Any]:
        return dict(self.details.get(model, {}))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "models": self.models}

    def reasoning_support(self) -> ReasoningSupport:
        return self.support

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        index = len(self.requests)
        self.requests.append(request)
        self.closed.append(False)
        script = self.scripts[min(index, len(self.scripts) - 1)] if self.scripts else []
        done_sent = False
        try:
            for step in script:
                if self.gate is not None:
                    self.gate.wait(10)
                if isinstance(step, BaseException):
                    raise step
                if isinstance(step, Done):
                    done_sent = True
                yield Delta("raw", step) if isinstance(step, str) else step
            if not done_sent:
                yield Done(Stats(eval_tokens=len(script), eval_time=0.01), "stop",
                           prefixed=bool(request.plan.prefix))
        except GeneratorExit:
            self.closed[index] = True
            raise


def interrupted(message: str = "connection reset") -> StreamInterrupted:
    """The error a backend raises when its stream breaks off."""
    return StreamInterrupted(message)
