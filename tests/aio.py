"""Run a coroutine function to completion from synchronous test code, whatever loop is running."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio

T = TypeVar("T")


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """`anyio.run(fn)` on a thread of its own."""
    # Playwright's sync API (the session-scoped browser in tests/browser) leaves its event loop
    # registered on the main thread for the rest of the run, and anyio.run refuses to start
    # under a running loop; a Jupyter kernel is the same. A fresh thread has no loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, fn).result()
