import json
import multiprocessing as mp
import re
import subprocess
import sys

import duckdb
import pyarrow.parquet as pq
import pytest

from storage import Database, ReadView, StorageError
from storage.schema import SCHEMA_VERSION, TABLES_V0, TABLES_V1, create_tables, current_version


def _rows(n, fp="fp", offset=0):
    return [
        dict(data_fp=fp, dataset="coin_flip", split="train", sample_id=str(offset + i), question=f"q{i}", answer="yes", answer_type="yes_no", meta={"i": i})
        for i in range(n)
    ]


def test_fresh_database_has_every_table(tmp_path):
    db = Database(tmp_path / "a.duckdb")
    assert set(db.tables()) == set(TABLES_V1)
    assert db.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION


def test_migration_from_v0_keeps_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con, TABLES_V0)
    con.execute("INSERT INTO examples VALUES ('fp', 'coin_flip', 'train', '7', 'Is it heads?', 'yes', '{}')")
    con.close()
    with duckdb.connect(str(path)) as con:
        assert current_version(con) == 0
    db = Database(path)
    rows = db.select("examples")
    assert len(rows) == 1 and rows[0]["question"] == "Is it heads?" and rows[0]["answer_type"] == "string"
    assert db.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION
    assert set(TABLES_V1) <= set(db.tables())


def test_bulk_insert_select_and_replace(tmp_path):
    db = Database(tmp_path / "a.duckdb")
    assert db.insert("examples", _rows(5000)) == 5000
    assert db.count("examples", {"data_fp": "fp"}) == 5000
    assert json.loads(db.select("examples", {"sample_id": "3"})[0]["meta"]) == {"i": 3}
    db.replace("examples", {"data_fp": "fp"}, _rows(10))
    assert db.count("examples") == 10


def test_failed_replace_keeps_old_rows(tmp_path):
    db = Database(tmp_path / "a.duckdb")
    db.insert("examples", _rows(10))
    bad = _rows(3)
    bad[1]["question"] = None  # violates NOT NULL
    with pytest.raises(duckdb.Error):
        db.replace("examples", {"data_fp": "fp"}, bad)
    assert db.count("examples") == 10
    with pytest.raises(StorageError, match="unknown columns"):
        db.insert("examples", [dict(_rows(1)[0], bogus=1)])
    with pytest.raises(StorageError, match="unknown table"):
        db.count("nope")


def _writer(path, worker, batches):
    db = Database(path)
    for b in range(batches):
        db.insert("examples", _rows(50, fp=f"w{worker}", offset=b * 50))
        db.query("SELECT count(*) FROM examples")


def test_three_processes_writing_lose_no_rows(tmp_path):
    path = tmp_path / "shared.duckdb"
    Database(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 20)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db = Database(path)
    assert db.count("examples") == 3 * 20 * 50
    for w in range(3):
        assert db.scalar("SELECT count(DISTINCT sample_id) FROM examples WHERE data_fp = ?", [f"w{w}"]) == 1000


def test_db_cli_tables_sql_export(tmp_path):
    path = tmp_path / "a.duckdb"
    Database(path).insert("examples", _rows(4))
    exe = [sys.executable, "-m", "flows.cli", "db"]
    out = subprocess.run([*exe, "tables", "--db", str(path)], capture_output=True, text=True, check=True).stdout
    assert "examples" in out and "4" in out
    out = subprocess.run([*exe, "sql", "SELECT sample_id FROM examples ORDER BY sample_id", "--json", "--db", str(path)], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [{"sample_id": str(i)} for i in range(4)]
    dest = tmp_path / "ex.parquet"
    subprocess.run([*exe, "export", "examples", str(dest), "--db", str(path)], check=True, capture_output=True)
    assert pq.read_table(dest).num_rows == 4


# ---- `skipthink db`: a sandboxed, snapshot-based reader ------------------------------------
def _db_cli(*args, check=False):
    """`skipthink db ARGS` in process (one real subprocess run is test_db_cli_tables_sql_export)."""
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["db", *args])
    assert not check or result.exit_code == 0, result.output
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_db_sql_cannot_write_or_read_other_files(tmp_path):
    path = tmp_path / "a.duckdb"
    Database(path).insert("examples", _rows(2))
    target = tmp_path / "x.csv"
    attempts = {
        f"COPY (SELECT 1) TO '{target}'": "disabled by configuration",
        "SELECT * FROM read_csv('/etc/passwd')": "disabled by configuration",
        "SELECT * FROM read_text('/etc/hostname')": "disabled by configuration",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS o": "disabled by configuration",
        "SET enable_external_access = true": "configuration has been locked",
        f"SELECT 1; COPY examples TO '{target}'": "disabled by configuration",
        "DELETE FROM examples": "Can only delete from base table",
        "DELETE FROM db0.examples": "read-only mode",
    }
    for query, message in attempts.items():
        out = _db_cli("sql", query, "--db", str(path))
        assert out.returncode == 1 and message in out.stderr, (query, out.stderr)
    assert not target.exists() and not (tmp_path / "other.duckdb").exists()
    assert Database(path).count("examples") == 2


def test_db_mistyped_path_is_an_error_not_a_new_database(tmp_path, home):
    missing = tmp_path / "typo.duckdb"
    out = _db_cli("tables", "--db", str(missing))
    assert out.returncode == 1 and "typo.duckdb: no database file there" in out.stderr
    assert not missing.exists()
    out = _db_cli("tables")  # an empty home
    assert out.returncode == 1 and "no database here" in out.stderr and not home.exists()


def test_db_inspects_a_read_only_file_without_touching_it(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "old.duckdb"
    con = duckdb.connect(str(path))
    create_tables(con, TABLES_V0)  # an old schema version: opening it read-write would migrate it
    con.execute("INSERT INTO examples VALUES ('fp', 'coin_flip', 'train', '7', 'Is it heads?', 'yes', '{}')")
    con.close()
    before = path.read_bytes()
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        out = _db_cli("sql", "SELECT question FROM examples", "--json", "--db", str(path))
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == [{"question": "Is it heads?"}]
        assert "examples" in _db_cli("tables", "--db", str(path), check=True).stdout
    finally:
        folder.chmod(0o755)
    # Not migrated, no WAL; a lock file only where the caller may create one (root may, here).
    assert path.read_bytes() == before and {p.name for p in folder.iterdir()} <= {"old.duckdb", "old.duckdb.lock"}


def test_a_long_read_does_not_block_writers(tmp_path):
    path = tmp_path / "a.duckdb"
    db = Database(path, lock_timeout_s=2.0)
    db.insert("examples", _rows(3))
    view = ReadView([path])
    with view.connect() as con:  # a query in progress: the writers' lock is already released
        db.insert("examples", _rows(2, offset=3))
        assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 3  # its snapshot
    assert view.scalar("SELECT count(*) FROM examples") == 5


# ---- the per-run layout: one writer per file, one view over all (issue 13, item 15) --------
def _per_run_writer(home, worker, batches, ready):
    from skipthink.config import StorageConfig

    db = Database(StorageConfig(home=home, layout="per_run").db_path)
    ready.wait(60)  # both processes write at the same time
    for b in range(batches):
        db.insert("examples", _rows(50, fp=f"w{worker}", offset=b * 50))
    # Both compute the same stage: the view must show it once.
    db.replace("examples", {"data_fp": "shared"}, [dict(r, question=f"from w{worker}") for r in _rows(5, fp="shared")])
    db.replace("stage_runs", {"fp": "shared", "stage": "data"}, [{"fp": "shared", "stage": "data", "status": "completed", "run_name": f"w{worker}"}])


def test_per_run_layout_two_concurrent_writers_read_through_one_view(tmp_path):
    from skipthink.config import StorageConfig
    from storage.layout import home_databases, home_view

    home = tmp_path / "home"
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(2)
    procs = [ctx.Process(target=_per_run_writer, args=(str(home), w, 10, ready)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    files = home_databases(home)
    assert len(files) == 2 and all(f.parent == home / "db" for f in files)
    assert {f.name.split("-")[-1] for f in files} == {f"{p.pid}.duckdb" for p in procs}  # one file per process
    view = home_view(home)
    counts = view.query("SELECT data_fp, count(*) AS n FROM examples GROUP BY 1 ORDER BY 1")
    assert counts == [{"data_fp": "shared", "n": 5}, {"data_fp": "w0", "n": 500}, {"data_fp": "w1", "n": 500}]
    # The newest file is the one whose schema was created last (names need not sort).
    newest_file = max(files, key=lambda f: Database(f).scalar("SELECT min(applied_at) FROM schema_version"))
    newest = Database(newest_file).scalar("SELECT max(question) FROM examples WHERE data_fp = 'shared'")
    assert view.query("SELECT DISTINCT question FROM examples WHERE data_fp = 'shared'") == [{"question": newest}]
    assert view.query("SELECT run_name FROM stage_runs") == [{"run_name": newest.removeprefix("from ")}]
    assert view.scalar("SELECT count(*) FROM db0.examples") + view.scalar("SELECT count(*) FROM db1.examples") == 1010
    out = _db_cli("tables", "--db", str(home / "db"), check=True).stdout
    assert re.search(r"^examples\s+1005\s*$", out, re.M) and re.search(r"^stage_runs\s+1\s*$", out, re.M)
    with pytest.raises(ValueError, match="storage.db_file: only for layout single"):
        StorageConfig(home=home, layout="per_run", db_file=home / "x.duckdb")
    # A flow names its run's file, so the processes of that run (Dask workers) share it.
    assert StorageConfig(home=home, layout="per_run", run_id="flow-1").db_path == home / "db" / "flow-1.duckdb"
    with pytest.raises(ValueError, match="run_id"):
        StorageConfig(home=home, layout="per_run", run_id="../escape")


def test_read_view_offers_the_database_read_api(tmp_path):
    path = tmp_path / "a.duckdb"
    db = Database(path)
    db.insert("examples", _rows(4))
    view = ReadView([path])
    assert view.count("examples", {"sample_id": ["1", "2"]}) == 2
    assert [r["sample_id"] for r in view.select("examples", {"data_fp": "fp"}, order_by="sample_id DESC")] == ["3", "2", "1", "0"]
    assert view.tables()["examples"] == 4 and view.path == path.resolve()
    with pytest.raises(StorageError, match="unknown table"):
        view.count("nope")
