"""Helpers of the tests that start a real `skipthink server`: a free port, a served deployment."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for_deployment(name: str, served: subprocess.Popen, timeout: float = 300):
    """The deployment once the served process has registered it (fails if that process exits)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    async with get_client() as client:
        while time.monotonic() < deadline:
            assert served.poll() is None, "skipthink server exited"
            try:
                return await client.read_deployment_by_name(name)
            except Exception:
                await asyncio.sleep(1)
    raise TimeoutError(f"deployment {name} never appeared")


def processes_with_env(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (children inherit the run's environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue  # gone, or not ours
    return found


def processes_left(marker: str, timeout: float = 30) -> list[int]:
    """The processes still holding `marker` once they have had `timeout` seconds to exit."""
    deadline = time.monotonic() + timeout
    while (left := processes_with_env(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def kill_processes_with_env(marker: str) -> None:
    """SIGKILL whatever still holds `marker`: a failing test must not leave servers running."""
    import signal

    for pid in processes_with_env(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
