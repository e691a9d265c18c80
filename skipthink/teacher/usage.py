"""Token usage, cost and the live progress line of the teacher stage."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO

from skipthink.config import Price

ProgressCallback = Callable[[int, int, dict], None]


def call_cost(prices: dict[str, Price], model: str, prompt_tokens: int, completion_tokens: int, discount: float = 1.0) -> float:
    """USD for one call; a model without a price costs 0."""
    price = prices.get(model)
    if price is None:
        return 0.0
    return (prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok) / 1e6 * discount


class Usage:
    """Running totals of this stage run, reported to a terminal line and a callback."""

    def __init__(self, total: int, progress: Optional[ProgressCallback] = None, stream: Optional[TextIO] = None, label: str = "teacher"):
        self.total = total
        self.done = 0  # keys with a response (cached or new)
        self.cached = 0
        self.sent_calls = 0
        self.failed = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0  # spent in this run
        self.cached_cost_usd = 0.0  # spent earlier on responses reused now
        self.retries = 0
        self.started = time.monotonic()
        self._progress = progress
        self._stream = stream if stream is not None else sys.stderr
        self._label = label
        self._last_draw = 0.0

    @property
    def total_cost_usd(self) -> float:
        return self.cost_usd + self.cached_cost_usd

    def add_total(self, n: int) -> None:
        self.total += n
        self.report(force=True)

    def add_cached(self, n: int, cost: float) -> None:
        self.done += n
        self.cached += n
        self.cached_cost_usd += cost
        self.report()

    def add_response(self, n_keys: int, prompt_tokens: int, completion_tokens: int, cost: float) -> None:
        self.done += n_keys
        self.sent_calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost_usd += cost
        self.report()

    def add_spent(self, cost: float) -> None:
        """Cost of an attempt that brought no usable response (a retried or failed 200)."""
        self.cost_usd += cost

    def add_failure(self, n_keys: int) -> None:
        self.failed += n_keys
        self.report()

    def info(self) -> dict:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "done": self.done, "total": self.total, "cached": self.cached, "failed": self.failed,
            "calls": self.sent_calls, "calls_per_s": round(self.sent_calls / elapsed, 2),
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.total_cost_usd, 6), "retries": self.retries, "elapsed_s": round(elapsed, 2),
        }

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.2 and self.done + self.failed < self.total:
            return
        self._last_draw = now
        info = self.info()
        if self._progress is not None:
            self._progress(self.done, self.total, info)
        width = 24
        filled = int(width * min(self.done / self.total, 1.0)) if self.total else width
        line = (
            f"\r{self._label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{info['calls_per_s']:.1f} req/s  {self.prompt_tokens + self.completion_tokens} tok  "
            f"${info['cost_usd']:.4f}  failed {self.failed}"
        )
        self._stream.write(line)
        self._stream.flush()

    def close(self) -> None:
        self.report(force=True)
        self._stream.write("\n")
        self._stream.flush()
