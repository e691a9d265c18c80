"""Where teacher responses persist: a protocol, so this package never imports storage.

`storage.teacher_store.DuckDBRequestStore` implements it over the DuckDB file;
`MemoryRequestStore` is for benchmarks that measure the client alone.
Rows are dicts with the `teacher_requests` / `teacher_failures` / `teacher_batches` columns.
"""

from __future__ import annotations

import threading
from typing import Protocol, Sequence


class RequestStore(Protocol):
    def load_responses(self, keys: Sequence[str]) -> dict[str, dict]:
        """Saved `teacher_requests` rows for those of `keys` that are done, by key."""

    def save_responses(self, rows: Sequence[dict]) -> None:
        """Store response rows; a key already stored keeps its first response (the row is ignored)."""

    def save_failures(self, rows: Sequence[dict]) -> None:
        """Append failure rows (key, attempts, error_class, message, ...)."""

    def open_batches(self, teacher_fp: str, step: str) -> list[dict]:
        """Submitted batches of this stage and step whose results are not saved yet."""

    def save_batch(self, row: dict) -> None:
        """Record a submitted batch (batch_id, teacher_fp, step, input_file_id, status, calls)."""

    def set_batch_status(self, batch_id: str, status: str) -> None:
        """Update a batch's status ('saved' once its responses are stored)."""


class MemoryRequestStore:
    """A RequestStore in a dict (thread-safe); nothing survives the process."""

    def __init__(self) -> None:
        self.responses: dict[str, dict] = {}
        self.failures: list[dict] = []
        self.batches: dict[str, dict] = {}
        self._lock = threading.Lock()

    def load_responses(self, keys: Sequence[str]) -> dict[str, dict]:
        with self._lock:
            return {k: self.responses[k] for k in keys if k in self.responses}

    def save_responses(self, rows: Sequence[dict]) -> None:
        with self._lock:
            for r in rows:
                self.responses.setdefault(r["key"], dict(r))

    def save_failures(self, rows: Sequence[dict]) -> None:
        with self._lock:
            self.failures.extend(dict(r) for r in rows)

    def open_batches(self, teacher_fp: str, step: str) -> list[dict]:
        with self._lock:
            return [dict(b) for b in self.batches.values() if b["teacher_fp"] == teacher_fp and b["step"] == step and b["status"] != "saved"]

    def save_batch(self, row: dict) -> None:
        with self._lock:
            self.batches[row["batch_id"]] = dict(row)

    def set_batch_status(self, batch_id: str, status: str) -> None:
        with self._lock:
            self.batches[batch_id]["status"] = status
