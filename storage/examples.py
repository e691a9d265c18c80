"""`examples` and `rationales`: the dataset of a data stage and what the teacher wrote for it."""

from __future__ import annotations

import json
from typing import Any, Sequence

from storage.db import Database


def write_examples(db: Database, data_fp: str, rows: Sequence[dict]) -> int:
    return db.replace("examples", {"data_fp": data_fp}, [dict(r, data_fp=data_fp) for r in rows])


def has_examples(db: Database, data_fp: str) -> bool:
    return db.count("examples", {"data_fp": data_fp}) > 0


def read_examples(db: Database, data_fp: str, splits: Sequence[str] = ("train", "val", "test")) -> list[dict[str, Any]]:
    """Rows of the given splits, `meta` and `rationales` decoded, ordered by split and sample id."""
    rows = db.query(
        "SELECT * FROM examples WHERE data_fp = ? AND split IN ({}) ORDER BY split, sample_id".format(", ".join("?" for _ in splits)),
        [data_fp, *splits],
    )
    for r in rows:
        r["meta"] = json.loads(r["meta"] or "{}")
        r["rationales"] = json.loads(r["rationales"] or "[]")
    return rows


def answer_format(db: Database, data_fp: str) -> tuple[str, dict]:
    """The dataset's answer type and the meta of its first example (multiple-choice letters)."""
    row = db.query("SELECT answer_type, meta FROM examples WHERE data_fp = ? LIMIT 1", [data_fp])[0]
    return row["answer_type"], json.loads(row["meta"] or "{}")


def write_rationales(db: Database, teacher_fp: str, rows: Sequence[dict]) -> int:
    return db.replace("rationales", {"teacher_fp": teacher_fp}, [dict(r, teacher_fp=teacher_fp) for r in rows])


def has_rationales(db: Database, teacher_fp: str) -> bool:
    return db.count("rationales", {"teacher_fp": teacher_fp}) > 0


def kept_rationales(db: Database, teacher_fp: str, data_fp: str) -> list[dict]:
    """Kept rationales of train/val examples, with their split, question and gold answer."""
    return db.query(
        """
        SELECT r.sample_id, r.completion_index, r.rationale, e.split, e.question, e.answer
        FROM rationales r JOIN examples e ON e.sample_id = r.sample_id AND e.data_fp = ?
        WHERE r.teacher_fp = ? AND r.kept AND e.split IN ('train', 'val')
        ORDER BY e.split, r.sample_id, r.completion_index
        """,
        [data_fp, teacher_fp],
    )


def teacher_outputs(db, dataset: str | None = None) -> list[dict]:
    """Every stored teacher rationale with the run that first paid for it, in the shape of
    storage.evaluation.written_outputs (group `teacher kept` / `teacher rejected`, test_set
    `teacher`, gold from the examples of the data stage the teacher read); `db` may be a ReadView."""
    where = "AND r.dataset = ?" if dataset else ""
    return db.query(
        f"""SELECT s.run_name, r.dataset, CASE WHEN r.kept THEN 'teacher kept' ELSE 'teacher rejected' END AS "group",
            'teacher' AS test_set, r.rationale AS output, e.answer AS gold, r.correct
        FROM rationales r
        JOIN stage_runs s ON s.stage = 'teacher' AND s.fp = r.teacher_fp AND s.status = 'completed'
        JOIN examples e ON e.data_fp = json_extract_string(s.upstream, '$.data') AND e.sample_id = r.sample_id
        WHERE TRUE {where} ORDER BY s.run_name, r.sample_id, r.completion_index""",
        [dataset] if dataset else [],
    )
