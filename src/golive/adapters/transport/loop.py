"""One asyncio event loop on a background thread, shared by every SSH connection.

The engine is threaded (a thread per host job); asyncssh is async. Each call
from a thread is scheduled on this loop and waited for, so one loop drives all
the connections of all deployments in the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="golive-ssh-loop",
                                      daemon=True)
            thread.start()
            _loop = loop
        return _loop


def call(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the shared loop and wait for its result (or its exception)."""
    future = asyncio.run_coroutine_threadsafe(coro, event_loop())
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


def call_soon(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the shared loop; the caller waits on the future."""
    return asyncio.run_coroutine_threadsafe(coro, event_loop())
