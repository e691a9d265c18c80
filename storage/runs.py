"""Past runs read back from the database: what `skipthink runs`, `skipthink report RUN` and the
report's examples ask for.

A run is identified by its `report` stage fingerprint (what `skipthink run` prints as `run`).
Each `stage_runs` row records its inputs' fingerprints in `upstream`, so a run's data and
teacher stages are found from its trainings, even when other runs share some of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional, Sequence

from storage.db import Database

_COLUMNS = "fp, stage, run_name, status, summary, upstream, started_at, finished_at"


@dataclass(frozen=True)
class StageRecord:
    """One `stage_runs` row with its JSON columns parsed."""

    fp: str
    stage: str
    run_name: Optional[str]
    status: str
    summary: dict[str, Any]
    upstream: dict[str, str]  # input name -> fingerprint
    started_at: Optional[datetime]
    finished_at: Optional[datetime]

    @property
    def when(self) -> Optional[datetime]:
        return self.finished_at or self.started_at


def _record(row: dict[str, Any]) -> StageRecord:
    return StageRecord(
        fp=row["fp"], stage=row["stage"], run_name=row["run_name"], status=row["status"],
        summary=json.loads(row["summary"] or "{}"), upstream=json.loads(row["upstream"] or "{}"),
        started_at=row["started_at"], finished_at=row["finished_at"],
    )


def report_records(db: Database) -> list[StageRecord]:
    """Every `report` stage row, newest first (completed, failed or still running)."""
    rows = db.query(f"SELECT {_COLUMNS} FROM stage_runs WHERE stage = 'report' ORDER BY coalesce(finished_at, started_at) DESC")
    return [_record(r) for r in rows]


def find_report(db: Database, run: Optional[str] = None) -> StageRecord:
    """The completed report of `run`: a fingerprint prefix, else an exact run name (its latest
    report); None = the most recent. LookupError when nothing, or more than one run, matches."""
    done = [r for r in report_records(db) if r.status == "completed"]
    if not done:
        raise LookupError(f"no finished run in {db.path}")
    if run is None:
        return done[0]
    by_prefix = [r for r in done if r.fp.startswith(run)]
    if len(by_prefix) > 1:
        listed = ", ".join(f"{r.fp} ({r.run_name})" for r in by_prefix[:10])
        raise LookupError(f"{run!r} matches {len(by_prefix)} runs: {listed}; give more characters")
    if by_prefix:
        return by_prefix[0]
    by_name = [r for r in done if r.run_name == run]
    if by_name:
        return by_name[0]
    raise LookupError(f"no finished run {run!r} (a report fingerprint prefix or a run name) in {db.path}")


def unfinished_runs(db: Database) -> list[StageRecord]:
    """Per run name, its latest stage row when that row failed or is still running and no
    report started after it: runs that stopped before their report."""
    rows = db.query(
        f"""
        WITH latest AS (
            SELECT {_COLUMNS},
                   row_number() OVER (PARTITION BY run_name ORDER BY coalesce(finished_at, started_at) DESC) AS rank
            FROM stage_runs WHERE stage <> 'report'
        )
        SELECT {_COLUMNS} FROM latest l
        WHERE rank = 1 AND status IN ('failed', 'running')
          AND NOT EXISTS (SELECT 1 FROM stage_runs r WHERE r.stage = 'report' AND r.run_name = l.run_name AND r.started_at >= l.started_at)
        ORDER BY coalesce(finished_at, started_at) DESC
        """
    )
    return [_record(r) for r in rows]


def _json_column(db: Database, column: str, stage: str, fp: str) -> dict[str, Any]:
    rows = db.query(f"SELECT {column} FROM stage_runs WHERE stage = ? AND fp = ?", [stage, fp])
    return json.loads(rows[0][column] or "{}") if rows else {}


def inputs_of(db: Database, stage: str, fp: str) -> dict[str, str]:
    """Input name -> fingerprint that stage run was built from (empty when unknown)."""
    return _json_column(db, "upstream", stage, fp)


def config_of(db: Database, stage: str, fp: str) -> dict[str, Any]:
    """The config a stage run was fingerprinted from (empty when unknown)."""
    return _json_column(db, "config", stage, fp)


def questions(db: Database, data_fp: str, sample_ids: Sequence[str]) -> dict[str, str]:
    """sample_id -> question text among one data stage's examples."""
    if not sample_ids:
        return {}
    marks = ", ".join("?" for _ in sample_ids)
    rows = db.query(f"SELECT sample_id, question FROM examples WHERE data_fp = ? AND sample_id IN ({marks})", [data_fp, *sample_ids])
    return {r["sample_id"]: r["question"] for r in rows}
