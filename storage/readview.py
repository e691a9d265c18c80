"""Sandboxed read-only queries for people, reports and sweeps: `skipthink db`, the per-run view.

A query someone types may run for minutes, and while a DuckDB file is open (even read-only) no
writer can open it. So a reader copies each file under its writers' lock (a file copy, not a
query), lets go, and queries the copies. The copies are attached read-only to an in-memory
database that exposes one view per table (UNION ALL over every file, so the per-run layout
reads as one database), then external access is switched off and the configuration locked:
no `COPY … TO`, no `read_csv('/etc/passwd')`, no ATTACH, no extension installs. Copying also
makes a file the user cannot write (chmod 444, a read-only volume) inspectable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import pyarrow as pa
from filelock import FileLock

from storage.db import StorageError, columns, lock_path, select_sql
from storage.schema import TABLES_V1

_SANDBOX = {"autoload_known_extensions": False, "autoinstall_known_extensions": False}


def _writers_lock(db_file: Path, timeout_s: float):
    lock = lock_path(db_file)
    # Nobody can take a lock we cannot create (a read-only directory or volume): read unlocked.
    writable = os.access(lock, os.W_OK) if lock.exists() else os.access(db_file.parent, os.W_OK)
    return FileLock(str(lock), timeout=timeout_s, thread_local=False, is_singleton=False) if writable else nullcontext()


def snapshot(db_file: Path, dest: Path, timeout_s: float = 600.0) -> Path:
    """Copy a database file (and its write-ahead log, if a writer died) under its lock."""
    db_file = Path(db_file).expanduser().resolve()
    if not db_file.is_file():
        raise StorageError(f"{db_file}: no database file there")
    with _writers_lock(db_file, timeout_s):
        shutil.copyfile(db_file, dest)
        wal = Path(str(db_file) + ".wal")
        if wal.is_file():
            shutil.copyfile(wal, str(dest) + ".wal")
    return dest


def database_files(target: Path) -> list[Path]:
    """A database file, or every `*.duckdb` file in a directory (the per-run layout)."""
    target = Path(target).expanduser()
    if target.is_dir():
        files = sorted(target.glob("*.duckdb"))
        if not files:
            raise StorageError(f"{target}: no *.duckdb files in this directory")
        return files
    if not target.is_file():
        raise StorageError(f"{target}: no database file there")
    return [target]


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class ReadView:
    """Read-only queries over one or more database files. Holds no open connection."""

    def __init__(self, files: Sequence[Path | str], lock_timeout_s: float = 600.0):
        if not files:
            raise StorageError("a read view needs at least one database file")
        self.files = [Path(f).expanduser().resolve() for f in files]
        self.path = self.files[0] if len(self.files) == 1 else self.files[0].parent  # for messages
        self.lock_timeout_s = lock_timeout_s

    def __repr__(self) -> str:
        return f"ReadView({[str(f) for f in self.files]!r})"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with tempfile.TemporaryDirectory(prefix="skipthink-read-") as tmp:
            copies = [snapshot(f, Path(tmp) / f"{i}.duckdb", self.lock_timeout_s) for i, f in enumerate(self.files)]
            con = duckdb.connect(":memory:", config=_SANDBOX)
            try:
                for i, copy in enumerate(copies):
                    con.execute(f"ATTACH {_quote(copy)} AS db{i} (READ_ONLY)")
                _create_views(con, _by_age(con, len(copies)))
                con.execute("SET enable_progress_bar = false")  # it would print into `db sql --json`
                con.execute("SET enable_external_access = false")
                con.execute("SET lock_configuration = true")
                yield con
            finally:
                con.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self.connect() as con:
            cur = con.execute(sql, params or [])
            if cur.description is None:
                return []
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self.connect() as con:
            return con.execute(sql, params or []).to_arrow_table()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        with self.connect() as con:
            row = con.execute(sql, params or []).fetchone()
            return row[0] if row else None

    def select(self, table: str, where: dict[str, Any] | None = None, order_by: str | None = None) -> list[dict[str, Any]]:
        """As `Database.select`, so report code reads a view or a database alike."""
        sql, params = select_sql("*", table, where)
        return self.query(sql + (f" ORDER BY {order_by}" if order_by else ""), params)

    def count(self, table: str, where: dict[str, Any] | None = None) -> int:
        sql, params = select_sql("count(*)", table, where)
        return int(self.scalar(sql, params))

    def tables(self) -> dict[str, int]:
        with self.connect() as con:
            return {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in _view_names(con)}

    def export(self, table: str, dest: str | Path) -> Path:
        """Write a table to Parquet (written by pyarrow: the sandbox cannot write files)."""
        import pyarrow.parquet as pq

        with self.connect() as con:
            names = _view_names(con)
            if table not in names:
                raise StorageError(f"unknown table {table!r}; tables are {', '.join(names)}")
            data = con.execute(f'SELECT * FROM "{table}"').to_arrow_table()
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(data, dest)
        return dest


def _view_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE database_name = 'memory' AND NOT internal ORDER BY 1").fetchall()]


def _by_age(con: duckdb.DuckDBPyConnection, n: int) -> list[str]:
    """Aliases oldest first, by when each file's schema was created (file names need not sort)."""
    def created(i: int):
        try:
            return con.execute(f"SELECT min(applied_at) FROM db{i}.main.schema_version").fetchone()[0]
        except duckdb.CatalogException:  # a pre-v1 file: older than any versioned one
            return None

    stamps = {i: created(i) for i in range(n)}
    return [f"db{i}" for i in sorted(stamps, key=lambda i: (stamps[i] is not None, stamps[i] or 0, i))]


def _create_views(con: duckdb.DuckDBPyConnection, aliases: list[str]) -> None:
    """One view per table name in any attached file. Over several files (the per-run layout)
    each table's rows are UNION ALL BY NAME (a file of an older schema contributes NULLs), and
    for each value of the table's key column (its first: a stage fingerprint, request key or
    run id) only the newest file holding that value counts, so two runs that computed the same
    stage do not show it twice. Every file stays readable as itself: `db0.examples`, ..."""
    age = {alias: rank for rank, alias in enumerate(aliases)}
    rows = con.execute(
        "SELECT table_name, list(database_name ORDER BY database_name) FROM duckdb_tables() "
        "WHERE schema_name = 'main' AND database_name LIKE 'db%' GROUP BY table_name ORDER BY table_name"
    ).fetchall()
    for name, dbs in rows:
        if len(aliases) == 1:
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM db0.main."{name}"')
            continue
        union = " UNION ALL BY NAME ".join(f'SELECT *, {age[d]} AS _file FROM {d}.main."{name}"' for d in dbs)
        key = columns(name)[0] if name in TABLES_V1 else None
        if key is None:
            con.execute(f'CREATE VIEW "{name}" AS SELECT * EXCLUDE (_file) FROM ({union})')
        else:
            con.execute(
                f'CREATE VIEW "{name}" AS SELECT * EXCLUDE (_file, _newest) FROM '
                f'(SELECT *, max(_file) OVER (PARTITION BY "{key}") AS _newest FROM ({union})) WHERE _file = _newest'
            )
