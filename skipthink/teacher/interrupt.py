"""Explicit Ctrl-C / SIGTERM handling for the teacher stage.

Python's default SIGINT handler raises KeyboardInterrupt wherever the main thread happens to
be, never in the thread that runs the event loop when the stage was started from inside a
running loop, and not at all when the process inherited SIGINT as ignored (a job started in
the background). So the stage installs its own handlers for SIGINT and SIGTERM for as long as
it sends: the first signal cancels the stage's coroutine (workers stop, what arrived is
flushed) and the stage raises `TeacherInterrupted`; a second signal gets the previous
behaviour (a hard stop). Handlers can only be installed from the main thread; elsewhere the
stage runs without them.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TeacherInterrupted(KeyboardInterrupt):
    """The stage stopped on a signal; every response that arrived is saved."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"teacher stage interrupted by {signal.Signals(signum).name}; saved responses are kept, rerun to continue")


class StopOnSignal:
    """Cancels one asyncio task (possibly on another thread's loop) when a stop signal arrives."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._task: Optional[asyncio.Task] = None
        self._lock = threading.Lock()

    def attach(self) -> None:
        """Called from inside the coroutine to be cancelled; cancels at once if a signal came first."""
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            early = self.signum is not None
        if early:
            self._task.cancel()

    def trigger(self, signum: int) -> None:
        with self._lock:
            if self.signum is None:
                self.signum = signum
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)

    async def run(self, coro):
        """Await `coro` as the cancellable task."""
        self.attach()
        return await coro

    @contextmanager
    def installed(self) -> Iterator["StopOnSignal"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

        def handler(signum, frame):
            for s, h in previous.items():  # a second signal: whatever was there before
                signal.signal(s, h if h is not None else signal.SIG_DFL)
            self.trigger(signum)

        for s in STOP_SIGNALS:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)
