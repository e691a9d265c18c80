"""`chunkings`: chunk boundaries per item — the chunk stage's initial ones (`chunk_fp`) and every
search a training run made (`train_fp`: one row per item per refreshed epoch, plus `final`)."""

from __future__ import annotations

import json
from typing import Sequence

from storage.db import Database

ItemKey = tuple[str, int]


def write_initial(db: Database, chunk_fp: str, rows: Sequence[dict]) -> int:
    return db.replace("chunkings", {"chunk_fp": chunk_fp}, [dict(r, chunk_fp=chunk_fp, train_fp=None, epoch=0, kind="initial") for r in rows])


def has_initial(db: Database, chunk_fp: str) -> bool:
    return db.count("chunkings", {"chunk_fp": chunk_fp, "epoch": 0}) > 0


def write_search(db: Database, train_fp: str, rows: Sequence[dict], kind: str = "search") -> int:
    return db.insert("chunkings", [dict(r, train_fp=train_fp, kind=kind) for r in rows])


def delete_search(db: Database, train_fp: str) -> None:
    db.delete("chunkings", {"train_fp": train_fp})


def initial_boundaries(db: Database, chunk_fp: str) -> dict[ItemKey, tuple[int, ...]]:
    rows = db.query("SELECT sample_id, completion_index, boundaries FROM chunkings WHERE chunk_fp = ? AND epoch = 0", [chunk_fp])
    return {(r["sample_id"], r["completion_index"]): tuple(json.loads(r["boundaries"])) for r in rows}


def final_boundaries(db: Database, train_fp: str) -> dict[ItemKey, tuple[int, ...]]:
    """Per item, the chunking a training run ended with: its `final` row (the selected epoch's),
    else its most recent epoch's."""
    rows = db.query(
        """
        SELECT sample_id, completion_index, boundaries FROM chunkings
        WHERE train_fp = ?
        QUALIFY row_number() OVER (PARTITION BY sample_id, completion_index ORDER BY kind = 'final' DESC, epoch DESC) = 1
        """,
        [train_fp],
    )
    return {(r["sample_id"], r["completion_index"]): tuple(json.loads(r["boundaries"])) for r in rows}
