"""`train_runs` and `train_log`: one row per finished training run, and its loss curve."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from storage.db import Database


def completed_run(db: Database, train_fp: str) -> Optional[dict[str, Any]]:
    rows = db.select("train_runs", {"train_fp": train_fp, "status": "completed"})
    return rows[0] if rows else None


def write_run(db: Database, train_fp: str, row: dict) -> None:
    db.replace("train_runs", {"train_fp": train_fp}, [dict(row, train_fp=train_fp)])


def delete_run(db: Database, train_fp: str, keep_log: bool = False) -> None:
    """Forget a training run's rows (its log too unless `keep_log`, for a run that resumes)."""
    db.delete("train_runs", {"train_fp": train_fp})
    if not keep_log:
        db.delete("train_log", {"train_fp": train_fp})


def append_log(db: Database, train_fp: str, rows: Sequence[dict]) -> int:
    return db.insert("train_log", [dict(r, train_fp=train_fp) for r in rows])


def loss_curve(db: Database, train_fp: str) -> list[tuple[int, float]]:
    rows = db.query("SELECT step, loss FROM train_log WHERE train_fp = ? AND kind = 'train' AND loss IS NOT NULL ORDER BY step", [train_fp])
    return [(r["step"], r["loss"]) for r in rows]
