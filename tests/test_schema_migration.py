"""The v1 -> v2 migration: one name per fingerprint, rows kept, chunkings split by owner."""

from __future__ import annotations

import duckdb

from storage import Database, chunkings, skips, stage_runs
from storage.schema import SCHEMA_VERSION, TABLES_V1, create_tables


def test_v1_rows_survive_the_rename(tmp_path):
    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con, TABLES_V1)
    con.execute("INSERT INTO schema_version (version) VALUES (1)")
    con.execute("INSERT INTO stage_runs (fingerprint, stage, status, summary) VALUES ('c1', 'chunk', 'completed', '{\"num_chunks\": 3}')")
    con.execute(
        "INSERT INTO chunkings (run_id, epoch, sample_id, completion_index, boundaries, kind) VALUES "
        "('c1', 0, 's1', 0, '[1, 2]', 'initial'), ('t1', 1, 's1', 0, '[2, 3]', 'search'), ('t1', 1, 's1', 0, '[2, 4]', 'final')"
    )
    con.execute("INSERT INTO skip_samples (skip_fp, cwt_run_id, sample_id, completion_index, skip_mask) VALUES ('k1', 't1', 's1', 0, '[false, true, false]')")
    con.close()

    db = Database(path)
    assert db.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION == 3
    assert stage_runs.completed_summary(db, "chunk", "c1") == {"num_chunks": 3}
    assert chunkings.initial_boundaries(db, "c1") == {("s1", 0): (1, 2)}
    assert chunkings.final_boundaries(db, "t1") == {("s1", 0): (2, 4)}
    assert chunkings.final_boundaries(db, "c1") == {}  # the chunk stage's rows are no training run's
    rows = skips.samples(db, "k1")
    assert [(r["train_fp"], r["skip_mask"], r["baseline_correct"]) for r in rows] == [("t1", [False, True, False], None)]
