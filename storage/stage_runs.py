"""`stage_runs`: one row per (stage, fingerprint) — its status, timings, config and summary."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Optional

from storage.db import Database


def record(db: Database, stage: str, fp: str, status: str, **fields: Any) -> None:
    """Write the row for (stage, fp) in one transaction (replacing any earlier one)."""
    row = dict(fields, stage=stage, fp=fp, status=status)
    for key in ("config", "upstream", "summary"):
        if key in row and not isinstance(row[key], str) and row[key] is not None:
            row[key] = json.dumps(row[key], sort_keys=True, default=str)
    db.replace("stage_runs", {"fp": fp, "stage": stage}, [row])


def status(db: Database, stage: str, fp: str) -> Optional[str]:
    rows = db.query("SELECT status FROM stage_runs WHERE stage = ? AND fp = ?", [stage, fp])
    return rows[0]["status"] if rows else None


def completed_summary(db: Database, stage: str, fp: str) -> Optional[dict]:
    """The summary of a completed run of this stage and fingerprint, else None."""
    rows = db.query("SELECT summary FROM stage_runs WHERE stage = ? AND fp = ? AND status = 'completed'", [stage, fp])
    return json.loads(rows[0]["summary"] or "{}") if rows else None


def latest_completed(db: Database, stage: str, fp_prefix: str = "") -> Optional[dict]:
    """The most recently finished completed run of `stage` whose fingerprint starts with the prefix."""
    rows = db.query(
        "SELECT fp, summary, finished_at FROM stage_runs WHERE stage = ? AND status = 'completed' AND starts_with(fp, ?) ORDER BY finished_at DESC LIMIT 1",
        [stage, fp_prefix],
    )
    if not rows:
        return None
    return {"fp": rows[0]["fp"], "summary": json.loads(rows[0]["summary"] or "{}"), "finished_at": rows[0]["finished_at"]}


def started_at(db: Database, stage: str, fp: str) -> Optional[datetime]:
    rows = db.query("SELECT started_at FROM stage_runs WHERE stage = ? AND fp = ?", [stage, fp])
    return rows[0]["started_at"] if rows else None


def completed_summaries(db, stage: str) -> list[dict]:
    """Every completed run of `stage`: fp, run_name and parsed summary (`db` may be a ReadView)."""
    rows = db.query("SELECT fp, run_name, summary FROM stage_runs WHERE stage = ? AND status = 'completed' ORDER BY fp", [stage])
    return [{"fp": r["fp"], "run_name": r["run_name"], "summary": json.loads(r["summary"] or "{}")} for r in rows]
