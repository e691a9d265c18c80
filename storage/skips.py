"""`skip_samples`: per item, which chunks the CWT student could do without (and whether it
passed the baseline check with nothing removed)."""

from __future__ import annotations

import json
from typing import Sequence

from storage.db import Database

ItemKey = tuple[str, int]


def write_samples(db: Database, skipdata_fp: str, train_fp: str, rows: Sequence[dict]) -> int:
    return db.replace("skip_samples", {"skipdata_fp": skipdata_fp}, [dict(r, skipdata_fp=skipdata_fp, train_fp=train_fp) for r in rows])


def has_samples(db: Database, skipdata_fp: str) -> bool:
    return db.count("skip_samples", {"skipdata_fp": skipdata_fp}) > 0


def usable_masks(db: Database, skipdata_fp: str) -> dict[ItemKey, tuple[bool, ...]]:
    """Skip masks of the items that passed the baseline check (the others yield no skip sample)."""
    rows = db.query("SELECT sample_id, completion_index, skip_mask FROM skip_samples WHERE skipdata_fp = ? AND baseline_correct", [skipdata_fp])
    return {(r["sample_id"], r["completion_index"]): tuple(json.loads(r["skip_mask"])) for r in rows}


def samples(db: Database, skipdata_fp: str) -> list[dict]:
    rows = db.select("skip_samples", {"skipdata_fp": skipdata_fp}, order_by="sample_id, completion_index")
    for r in rows:
        r["skip_mask"] = json.loads(r["skip_mask"])
    return rows
