"""Early exits from one trace: the reply generated once, then closed at each checkpoint exactly
as `think_budget` closes it, with only the answer generated from there (issue 23's early-exit
curve; `compare(..., exit_at=[...])` builds its rows on this)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..backends.base import Cancellation, EarlyExits, Trace
from ..client import Client, default_client
from ..errors import BudgetUnsupported
from ..reply import Reply
from .stream import ChatStream, Messages, as_messages, build_request


@dataclass
class Exit:
    """One checkpoint of a trace: its stream, or None where the reasoning ended before it
    (the whole reply is then this checkpoint's reply too, as a budget that size changes
    nothing)."""

    checkpoint: int | None  # None: the whole reply
    stream: ChatStream | None


def exits(prompt: str | Messages, model: str | None = None, *, exit_at: Any,
          client: Client | None = None, system: str | None = None, loop_guard: bool = False,
          **kwargs: Any) -> Iterator[Exit]:
    """The whole reply first (`Exit(None, stream)`), then each checkpoint from the last down
    (each one's prefix is a prefix of the one before, so a backend's cache holds it).

    Read each stream before asking for the next. Keyword arguments are `ds.chat`'s (no
    `think_budget`: each checkpoint is one). Raises `BudgetUnsupported` where the backend
    cannot continue a reasoning, as a budget would.
    """
    client = client or default_client()
    request, notes = build_request(client, as_messages(prompt, system), model,
                                   exit_at=exit_at, **kwargs)
    backend = client.backend
    if not isinstance(backend, EarlyExits):
        raise BudgetUnsupported(f"the {backend.name} backend cannot continue a reasoning",
                                "exit_at")
    if not request.plan.exits:  # nothing reasons (a note says why): the reply alone
        yield Exit(None, ChatStream(client, request, notes, loop_guard))
        return
    trace: Trace = backend.trace(request)
    try:
        whole = ChatStream(client, request, notes, loop_guard, events=trace.stream())
        yield Exit(None, whole)
        if not whole.finished or whole.stopped:
            return  # stopped (or left unread): no checkpoint is a result
        for checkpoint in sorted(request.plan.exits, reverse=True):
            part = replace(request, cancel=Cancellation(),
                           plan=replace(request.plan, budget=checkpoint, exits=()))
            events = trace.exit(checkpoint, part.cancel)
            yield Exit(checkpoint, None if events is None
                       else ChatStream(client, part, notes, loop_guard, events=events))
    finally:
        trace.close()


def early_exits(prompt: str | Messages, model: str | None = None, *, exit_at: Any,
                **kwargs: Any) -> dict[int | None, Reply]:
    """The replies of one trace closed at each checkpoint, and the whole reply under None:
    `ds.early_exits("7*8?", exit_at=[0, 32, 64])` → {None: …, 64: …, 32: …, 0: …}.

    The reasoning is generated once; each checkpoint costs only its answer. A checkpoint the
    reasoning never reached gets the whole reply (what `think_budget` that size gives).
    """
    replies: dict[int | None, Reply] = {}
    for point in exits(prompt, model, exit_at=exit_at, **kwargs):
        replies[point.checkpoint] = point.stream.collect() if point.stream is not None \
            else replies[None]
    return replies
