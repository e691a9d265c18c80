"""Teacher client throughput against the local server with added latency, per concurrency level.

The stage is I/O bound: with latency L per request, concurrency c should approach c/L requests
per second until client or server CPU saturates. Runs the real OnlineRunner (retries, limits,
response buffering) over HTTP into an in-memory store, so only the client path is measured.
"""

from __future__ import annotations

import asyncio
import io
import time

from skipthink.config import TeacherConfig, TeacherServerConfig
from skipthink.teacher.calls import RATIONALE, Call
from skipthink.teacher.client import OnlineRunner, make_client
from skipthink.teacher_server import ServerFaults, start_server_process
from skipthink.teacher.store import MemoryRequestStore
from skipthink.teacher.usage import Usage

_QUESTION = 'A coin is heads up. Ann flips the coin. Bob does not flip the coin. Is the coin still heads up? Note that "flip" here means "reverse".'


async def _measure(base_url: str, n_requests: int, concurrency: int) -> float:
    cfg = TeacherConfig(max_concurrency=concurrency, max_tokens=128)
    client = make_client(base_url, "sk-local-bench", cfg.timeout_s)
    store = MemoryRequestStore()
    usage = Usage(n_requests, stream=io.StringIO())
    runner = OnlineRunner(cfg, client, store, usage, "bench", "zs_cot/v1")
    prompt = f"Q: {_QUESTION}\nA: Let's think step by step."
    calls = [Call(RATIONALE, "bench", str(i), (0,), (f"k{i}",), prompt, {"temperature": 0.0, "max_tokens": 128}) for i in range(n_requests)]
    started = time.perf_counter()
    await runner.run(calls)
    elapsed = time.perf_counter() - started
    await client.close()
    if len(store.responses) != n_requests:
        raise RuntimeError(f"benchmark: {len(store.responses)} of {n_requests} requests succeeded")
    return n_requests / elapsed


def run(n_requests: int = 1000, latency_ms: float = 50, concurrency: list[int] | None = None) -> dict:
    levels = list(concurrency or [1, 32])
    # The server gets its own process (and core), as a real endpoint would not share our GIL.
    handle = start_server_process(TeacherServerConfig(backend="scripted", error_rate=0.0), faults=ServerFaults(latency_ms=latency_ms))
    try:
        asyncio.run(_measure(handle.base_url, min(20, n_requests), max(levels)))  # warm-up
        rps = {c: asyncio.run(_measure(handle.base_url, n_requests, c)) for c in levels}
    finally:
        handle.stop()
    result = {"benchmark": "teacher", "n_requests": n_requests, "latency_ms": latency_ms}
    result.update({f"c{c}_rps": round(v, 2) for c, v in rps.items()})
    result["ratio"] = round(rps[levels[-1]] / rps[levels[0]], 2)
    result["ideal_ratio"] = round(levels[-1] / levels[0], 2)
    return result
