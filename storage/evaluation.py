"""`predictions` and `metrics`: what each evaluated method answered, and its accuracy and speed."""

from __future__ import annotations

import json
from typing import Sequence

from storage.db import Database

METRIC_COLUMNS = ("method", "dataset", "test_set", "n", "accuracy", "mean_new_tokens", "latency_median_s", "throughput_qps")


def write_results(db: Database, evaluate_fp: str, predictions: Sequence[dict], metrics: Sequence[dict]) -> None:
    db.replace("predictions", {"evaluate_fp": evaluate_fp}, [dict(r, evaluate_fp=evaluate_fp) for r in predictions])
    db.replace("metrics", {"evaluate_fp": evaluate_fp}, [dict(r, evaluate_fp=evaluate_fp) for r in metrics])


def has_metrics(db: Database, evaluate_fp: str) -> bool:
    return db.count("metrics", {"evaluate_fp": evaluate_fp}) > 0


def metrics(db: Database, evaluate_fps: Sequence[str]) -> list[dict]:
    if not evaluate_fps:
        return []
    placeholders = ", ".join("?" for _ in evaluate_fps)
    return db.query(f"SELECT {', '.join(METRIC_COLUMNS)} FROM metrics WHERE evaluate_fp IN ({placeholders})", list(evaluate_fps))


def predictions(db: Database, evaluate_fps: Sequence[str], test_set: str = "test") -> list[dict]:
    if not evaluate_fps:
        return []
    placeholders = ", ".join("?" for _ in evaluate_fps)
    return db.query(
        f"SELECT * FROM predictions WHERE evaluate_fp IN ({placeholders}) AND test_set = ? ORDER BY sample_id, method", [*evaluate_fps, test_set]
    )


def share_containing(db: Database, evaluate_fps: Sequence[str], text: str) -> dict[str, float]:
    """evaluate_fp -> percent of its outputs on the run's own split (not `real`) that contain `text`."""
    if not evaluate_fps:
        return {}
    placeholders = ", ".join("?" for _ in evaluate_fps)
    rows = db.query(
        f"""SELECT evaluate_fp, 100.0 * avg(CASE WHEN contains(output, ?) THEN 1 ELSE 0 END) AS share
        FROM predictions WHERE evaluate_fp IN ({placeholders}) AND test_set <> 'real' GROUP BY evaluate_fp""",
        [text, *evaluate_fps],
    )
    return {r["evaluate_fp"]: r["share"] for r in rows}


def metric_extra(row: dict) -> dict:
    return json.loads(row.get("extra") or "{}")


def written_outputs(db, dataset: str | None = None) -> list[dict]:
    """Every stored student output with the run that first evaluated it (run_name, dataset,
    group = method, test_set, output, gold, correct); `db` may be a ReadView over several homes."""
    where = "AND p.dataset = ?" if dataset else ""
    return db.query(
        f"""SELECT s.run_name, p.dataset, p.method AS "group", p.test_set, p.output, p.gold, p.correct
        FROM predictions p JOIN stage_runs s ON s.stage = 'evaluate' AND s.fp = p.evaluate_fp AND s.status = 'completed'
        WHERE TRUE {where} ORDER BY s.run_name, p.method, p.test_set, p.sample_id""",
        [dataset] if dataset else [],
    )
