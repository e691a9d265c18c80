"""Run a coroutine to completion from synchronous code, whether or not an event loop is already
running in this thread (a notebook, an async host, Prefect's own loop)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Coroutine


def in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def run_coroutine(coro: Coroutine) -> Any:
    """`asyncio.run(coro)`, in a fresh worker thread when this thread's loop is busy."""
    if not in_event_loop():
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
