"""What the HTTP backends share: a reply that Stop ends at once, and a limit on silence.

A read blocked on a stalled server cannot be interrupted from the thread that waits in it,
and closing a socket from another thread does not wake it either. So an HTTP reply is read
in a helper thread (`interruptible`): the caller waits on a queue and leaves the moment the
request is cancelled, and the cancel callback (`shutdown`) shuts the socket down, which wakes
the helper's read and tells the server to stop generating. A server that sends nothing for
the idle limit (between chunks, never on the whole reply: R1 may think for minutes) fails
the read with a timeout, which the backend reports as `StreamInterrupted`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from .. import config
from ..errors import redact
from .base import ABANDONED, Cancellation

T = TypeVar("T")

#: Seconds a server may stay silent in the middle of a reply (or before its first chunk,
#: e.g. while it loads a model) before the reply counts as stalled.
IDLE_TIMEOUT = 300.0
#: Connecting must be quick: nothing is generated before the connection exists.
CONNECT_TIMEOUT = 10.0

_END = object()


class _Redacting(logging.Filter):
    """Secrets out of a log record (httpx logs each request's URL, credentials included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: left alone
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = _Redacting()
#: The loggers of the HTTP clients dskit uses (a filter acts only where a record is logged).
HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11",
                "httpcore.http2", "httpcore.proxy")


def redact_http_logs() -> None:
    """Keep secrets out of the HTTP clients' log records (idempotent; done when a backend that
    talks HTTP is made, not on import)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def idle_timeout(given: float | None = None) -> float:
    """The idle limit: the argument, else DSKIT_IDLE_TIMEOUT, else `IDLE_TIMEOUT`."""
    if given is not None:
        return float(given)
    return config.idle_timeout() or IDLE_TIMEOUT


def timeouts(idle: float) -> httpx.Timeout:
    """httpx timeouts: a short connect, `idle` seconds between bytes read or written."""
    return httpx.Timeout(idle, connect=min(CONNECT_TIMEOUT, idle))


def shutdown(response: httpx.Response) -> Callable[[], None]:
    """A function that ends `response` from any thread: it shuts the socket down, which wakes
    a read blocked on it and closes the connection (the server then stops generating)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None

    def close() -> None:
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    return close


def interruptible(events: Iterator[T], cancel: Cancellation, idle: float | None = None,
                  stalled: Callable[[], Exception] | None = None) -> Iterator[T]:
    """`events`, read in a helper thread; ends as soon as `cancel` is set.

    Errors raised by `events` are raised here. Leaving early (closing this generator) sets
    `cancel`, which stops the helper: its cancel callbacks unblock the read it waits in.
    With `idle`, no event for that many seconds raises `stalled()`: a server that sends only
    keep-alive comments keeps the socket busy, so the read's own timeout never fires.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    forget = cancel.on_cancel(lambda: items.put(("cancelled", None)))

    def pump() -> None:
        try:
            for item in events:
                items.put(("item", item))
                if cancel.is_set():
                    break
        except BaseException as exc:  # handed to the reading thread, which raises it
            items.put(("error", exc))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):  # already reported above
                    close()
            items.put(("end", _END))

    threading.Thread(target=pump, daemon=True, name="dskit-http-reply").start()
    finished = False
    try:
        while True:
            try:
                kind, value = items.get(timeout=idle)
            except queue.Empty:
                cancel.set(ABANDONED)  # stops the helper's read
                raise (stalled() if stalled is not None else TimeoutError(
                    f"no event for {idle} s")) from None
            if kind == "item":
                yield value
            elif kind == "error":
                if cancel.is_set():
                    return  # the read failed because we shut it down: a stop, not an error
                finished = True
                raise value
            elif kind == "end":
                finished = True
                return
            else:
                return  # cancelled
    finally:
        forget()
        if not finished:
            # The caller left (or stopped): the helper must stop reading too. Whoever decided
            # the stop gave its reason first; this one counts only when nobody did.
            cancel.set(ABANDONED)
