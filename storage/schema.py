"""DuckDB schema, versioned, with forward migrations that keep rows.

Version history:
  v0  the pre-release layout: `examples` without `answer_type`/`rationales`, no
      `schema_version` table (kept only so the migration path is real and tested).
  v1  every table of docs/DESIGN.md §2, plus `stage_runs` and `schema_version`.
  v2  one name per fingerprint: `<stage>_fp` columns (`train_fp`, `chunk_fp`, `skipdata_fp`,
      `evaluate_fp`; `stage_runs.fp`), chunkings say which stage wrote them, skip samples
      record the baseline check and their split, training runs record their budget.
  v3  `teacher_requests.key` unique (duplicates from concurrent runs deduplicated, the first
      stored kept), so a response is stored once whoever saves it; `teacher_failures.cost_usd`
      (what an unusable 200 answer cost).
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = 3

# JSON-ish columns are VARCHAR holding JSON text: portable to Parquet and any reader.
TABLES_V1: dict[str, str] = {
    "schema_version": """
        version INTEGER NOT NULL,
        applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp""",
    "stage_runs": """
        fingerprint VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        run_name VARCHAR,
        status VARCHAR NOT NULL,
        code_version VARCHAR,
        config VARCHAR,
        upstream VARCHAR,
        summary VARCHAR,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        duration_s DOUBLE""",
    "examples": """
        data_fp VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        split VARCHAR NOT NULL,
        sample_id VARCHAR NOT NULL,
        question VARCHAR NOT NULL,
        answer VARCHAR NOT NULL,
        answer_type VARCHAR NOT NULL,
        meta VARCHAR,
        rationales VARCHAR""",
    "teacher_requests": """
        key VARCHAR NOT NULL,
        teacher_fp VARCHAR,
        dataset VARCHAR,
        sample_id VARCHAR,
        completion_index INTEGER,
        step VARCHAR,
        endpoint VARCHAR,
        model VARCHAR,
        template_version VARCHAR,
        params VARCHAR,
        prompt VARCHAR,
        response VARCHAR,
        finish_reason VARCHAR,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost_usd DOUBLE,
        latency_s DOUBLE,
        attempts INTEGER,
        batch_id VARCHAR,
        created_at TIMESTAMP DEFAULT current_timestamp""",
    "teacher_failures": """
        key VARCHAR NOT NULL,
        teacher_fp VARCHAR,
        dataset VARCHAR,
        sample_id VARCHAR,
        completion_index INTEGER,
        step VARCHAR,
        attempts INTEGER,
        error_class VARCHAR,
        message VARCHAR,
        created_at TIMESTAMP DEFAULT current_timestamp,
        cost_usd DOUBLE""",
    "teacher_batches": """
        batch_id VARCHAR NOT NULL,
        teacher_fp VARCHAR NOT NULL,
        step VARCHAR,
        input_file_id VARCHAR,
        status VARCHAR,
        n_requests INTEGER,
        calls VARCHAR,
        created_at TIMESTAMP DEFAULT current_timestamp""",
    "rationales": """
        teacher_fp VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        sample_id VARCHAR NOT NULL,
        completion_index INTEGER NOT NULL,
        rationale VARCHAR,
        predicted VARCHAR,
        correct BOOLEAN,
        truncated BOOLEAN,
        kept BOOLEAN,
        request_key VARCHAR""",
    "train_runs": """
        run_id VARCHAR NOT NULL,
        method VARCHAR NOT NULL,
        dataset VARCHAR,
        status VARCHAR,
        checkpoint_path VARCHAR,
        checkpoint_sha256 VARCHAR,
        n_params BIGINT,
        steps INTEGER,
        epochs INTEGER,
        best_epoch INTEGER,
        best_val_loss DOUBLE,
        train_seconds DOUBLE,
        config VARCHAR,
        created_at TIMESTAMP DEFAULT current_timestamp""",
    "train_log": """
        run_id VARCHAR NOT NULL,
        epoch INTEGER,
        step INTEGER,
        loss DOUBLE,
        lr DOUBLE,
        tokens_per_s DOUBLE,
        val_loss DOUBLE,
        kind VARCHAR""",
    "chunkings": """
        run_id VARCHAR NOT NULL,
        epoch INTEGER NOT NULL,
        sample_id VARCHAR NOT NULL,
        completion_index INTEGER,
        boundaries VARCHAR NOT NULL,
        score DOUBLE,
        moves INTEGER,
        kind VARCHAR""",
    "skip_samples": """
        skip_fp VARCHAR NOT NULL,
        cwt_run_id VARCHAR,
        sample_id VARCHAR NOT NULL,
        completion_index INTEGER,
        skip_mask VARCHAR NOT NULL,
        n_skipped INTEGER,
        checks INTEGER""",
    "predictions": """
        eval_fp VARCHAR NOT NULL,
        run_id VARCHAR,
        method VARCHAR NOT NULL,
        dataset VARCHAR,
        test_set VARCHAR,
        sample_id VARCHAR NOT NULL,
        output VARCHAR,
        predicted VARCHAR,
        gold VARCHAR,
        correct BOOLEAN,
        new_tokens INTEGER,
        latency_s DOUBLE""",
    "metrics": """
        eval_fp VARCHAR NOT NULL,
        run_id VARCHAR,
        method VARCHAR NOT NULL,
        dataset VARCHAR,
        test_set VARCHAR,
        n INTEGER,
        accuracy DOUBLE,
        mean_new_tokens DOUBLE,
        latency_median_s DOUBLE,
        throughput_qps DOUBLE,
        extra VARCHAR""",
}


def _v2_tables() -> dict[str, str]:
    t = dict(TABLES_V1)
    t["stage_runs"] = t["stage_runs"].replace("fingerprint VARCHAR NOT NULL", "fp VARCHAR NOT NULL")
    t["train_runs"] = t["train_runs"].replace("run_id VARCHAR NOT NULL", "train_fp VARCHAR NOT NULL").replace(
        "train_seconds DOUBLE,", "train_seconds DOUBLE,\n        target_tokens BIGINT,\n        budget VARCHAR,"
    )
    t["train_log"] = t["train_log"].replace("run_id VARCHAR NOT NULL", "train_fp VARCHAR NOT NULL")
    t["chunkings"] = t["chunkings"].replace("run_id VARCHAR NOT NULL,", "chunk_fp VARCHAR,\n        train_fp VARCHAR,")
    t["skip_samples"] = (
        t["skip_samples"]
        .replace("skip_fp VARCHAR NOT NULL", "skipdata_fp VARCHAR NOT NULL")
        .replace("cwt_run_id VARCHAR", "train_fp VARCHAR")
        .replace("checks INTEGER", "checks INTEGER,\n        baseline_correct BOOLEAN,\n        split VARCHAR")
    )
    for name in ("predictions", "metrics"):
        t[name] = t[name].replace("eval_fp VARCHAR NOT NULL", "evaluate_fp VARCHAR NOT NULL").replace("run_id VARCHAR", "train_fp VARCHAR")
    return t


# The current layout: what a new database gets and what every migration ends at.
TABLES: dict[str, str] = _v2_tables()

# v0 had a narrower examples table and nothing else we kept.
TABLES_V0 = {
    "examples": """
        data_fp VARCHAR NOT NULL,
        dataset VARCHAR NOT NULL,
        split VARCHAR NOT NULL,
        sample_id VARCHAR NOT NULL,
        question VARCHAR NOT NULL,
        answer VARCHAR NOT NULL,
        meta VARCHAR""",
}


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
    return {r[0] for r in rows}


def current_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """None for an empty database, else the recorded version (0 when unversioned)."""
    tables = _existing_tables(con)
    if not tables:
        return None
    if "schema_version" not in tables:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def create_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, str]) -> None:
    for name, cols in tables.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")


def _migrate_0_to_1(con: duckdb.DuckDBPyConnection) -> None:
    cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'examples'").fetchall()}
    if "answer_type" not in cols:
        con.execute("ALTER TABLE examples ADD COLUMN answer_type VARCHAR DEFAULT 'string'")
    if "rationales" not in cols:
        con.execute("ALTER TABLE examples ADD COLUMN rationales VARCHAR DEFAULT '[]'")
    create_tables(con, TABLES_V1)


def _migrate_1_to_2(con: duckdb.DuckDBPyConnection) -> None:
    create_tables(con, TABLES_V1)  # a v1 file missing a table (never written to) gets it first
    renames = {
        "stage_runs": [("fingerprint", "fp")],
        "train_runs": [("run_id", "train_fp")],
        "train_log": [("run_id", "train_fp")],
        "chunkings": [("run_id", "train_fp")],
        "skip_samples": [("skip_fp", "skipdata_fp"), ("cwt_run_id", "train_fp")],
        "predictions": [("eval_fp", "evaluate_fp"), ("run_id", "train_fp")],
        "metrics": [("eval_fp", "evaluate_fp"), ("run_id", "train_fp")],
    }
    for table, pairs in renames.items():
        for old, new in pairs:
            con.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
    con.execute("ALTER TABLE chunkings ALTER COLUMN train_fp DROP NOT NULL")
    con.execute("ALTER TABLE chunkings ADD COLUMN chunk_fp VARCHAR")
    # v1 kept the chunk stage's rows under its fingerprint in the same column as training runs'.
    con.execute("UPDATE chunkings SET chunk_fp = train_fp, train_fp = NULL WHERE kind = 'initial'")
    con.execute("ALTER TABLE train_runs ADD COLUMN target_tokens BIGINT")
    con.execute("ALTER TABLE train_runs ADD COLUMN budget VARCHAR")
    con.execute("ALTER TABLE skip_samples ADD COLUMN baseline_correct BOOLEAN")
    con.execute("ALTER TABLE skip_samples ADD COLUMN split VARCHAR")


def _migrate_2_to_3(con: duckdb.DuckDBPyConnection) -> None:
    # Keep the first stored row of each key (what a resumed stage already used), drop the rest.
    # A fresh table, because DuckDB's index build still sees rows deleted in the same transaction.
    con.execute(f"CREATE TABLE _teacher_requests_unique ({TABLES_V1['teacher_requests']})")
    con.execute("""INSERT INTO _teacher_requests_unique SELECT * FROM teacher_requests
                   QUALIFY row_number() OVER (PARTITION BY key ORDER BY created_at NULLS LAST, rowid) = 1""")
    con.execute("DROP TABLE teacher_requests")
    con.execute("ALTER TABLE _teacher_requests_unique RENAME TO teacher_requests")
    create_indexes(con)
    create_tables(con, TABLES)  # any table this version adds, in its current layout
    cols = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'teacher_failures'").fetchall()}
    if "cost_usd" not in cols:
        con.execute("ALTER TABLE teacher_failures ADD COLUMN cost_usd DOUBLE")


def create_indexes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE UNIQUE INDEX IF NOT EXISTS teacher_requests_key ON teacher_requests (key)")


MIGRATIONS = {1: _migrate_0_to_1, 2: _migrate_1_to_2, 3: _migrate_2_to_3}


def ensure_schema(con: duckdb.DuckDBPyConnection) -> int:
    """Create or migrate to SCHEMA_VERSION inside the caller's transaction; returns the version."""
    version = current_version(con)
    if version is None:
        create_tables(con, TABLES)
        create_indexes(con)
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION])
        return SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise RuntimeError(f"database schema v{version} is newer than this skipthink (v{SCHEMA_VERSION}); upgrade skipthink")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[target](con)
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [target])
    return SCHEMA_VERSION
