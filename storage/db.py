"""The DuckDB file and the one rule for touching it.

DuckDB lets one process hold a file read-write, and while it does no other process may open
it at all. So every access here is short: take a cross-process file lock, open, do one
transaction, close. Bulk rows go in as Arrow tables (row-by-row parameter binding manages
~200 rows/s into a file; Arrow inserts are ~1000x faster).
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import duckdb
import pyarrow as pa
from filelock import FileLock

from storage.schema import TABLES, ensure_schema

_schema_ready: set[str] = set()
_schema_guard = threading.Lock()


class StorageError(RuntimeError):
    pass


def _json_cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list, tuple)) else value


def lock_path(db_file: Path) -> Path:
    """The cross-process writers' lock of a database file."""
    return Path(str(db_file) + ".lock")


class Database:
    """A DuckDB file plus its lock. Cheap to create; holds no open connection."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 600.0):
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = str(lock_path(self.path))
        self.lock_timeout_s = lock_timeout_s
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A fresh FileLock per call: flock locks are per open file, so threads of one process
        # exclude each other as well as other processes.
        with FileLock(self._lock_path, timeout=self.lock_timeout_s, thread_local=False, is_singleton=False):
            yield

    def _ensure_schema(self) -> None:
        key = str(self.path)
        with _schema_guard:
            if key in _schema_ready:
                return
            with self.transaction() as con:
                ensure_schema(con)
            _schema_ready.add(key)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One read-write transaction under the lock; rolled back on error."""
        with self._locked():
            con = duckdb.connect(str(self.path))
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            finally:
                con.close()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short read-only connection under the lock."""
        with self._locked():
            con = duckdb.connect(str(self.path), read_only=True)
            try:
                yield con
            finally:
                con.close()

    # ---- writes -----------------------------------------------------------------------
    @staticmethod
    def to_arrow(table: str, rows: Sequence[dict] | pa.Table) -> pa.Table:
        if isinstance(rows, pa.Table):
            return rows
        if table not in TABLES:
            raise StorageError(f"unknown table {table!r}")
        cols = columns(table)
        unknown = set().union(*(r.keys() for r in rows)) - set(cols) if rows else set()
        if unknown:
            raise StorageError(f"{table}: unknown columns {sorted(unknown)}")
        present = [c for c in cols if any(c in r for r in rows)]
        return pa.table({c: [_json_cell(r.get(c)) for r in rows] for c in present})

    def _insert(self, con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> int:
        if data.num_rows == 0:
            return 0
        names = ", ".join(data.column_names)
        con.register("_incoming", data)
        try:
            con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _incoming")
        finally:
            con.unregister("_incoming")
        return data.num_rows

    def insert(self, table: str, rows: Sequence[dict] | pa.Table) -> int:
        """Append rows in one transaction."""
        data = self.to_arrow(table, rows)
        if data.num_rows == 0:
            return 0
        with self.transaction() as con:
            return self._insert(con, table, data)

    def replace(self, table: str, where: dict[str, Any], rows: Sequence[dict] | pa.Table) -> int:
        """Delete the rows matching `where`, insert `rows`: one transaction, so a crash leaves
        either the old rows or the new ones, never neither."""
        data = self.to_arrow(table, rows)
        clause, params = _where(where)
        with self.transaction() as con:
            con.execute(f"DELETE FROM {table} WHERE {clause}", params)
            return self._insert(con, table, data)

    def delete(self, table: str, where: dict[str, Any]) -> None:
        clause, params = _where(where)
        with self.transaction() as con:
            con.execute(f"DELETE FROM {table} WHERE {clause}", params)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.transaction() as con:
            con.execute(sql, params or [])

    # ---- reads ------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self.reader() as con:
            cur = con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self.reader() as con:
            return con.execute(sql, params or []).to_arrow_table()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        with self.reader() as con:
            row = con.execute(sql, params or []).fetchone()
            return row[0] if row else None

    def select(self, table: str, where: dict[str, Any] | None = None, order_by: str | None = None) -> list[dict[str, Any]]:
        sql, params = select_sql("*", table, where)
        if order_by:
            sql += f" ORDER BY {order_by}"
        return self.query(sql, params)

    def count(self, table: str, where: dict[str, Any] | None = None) -> int:
        return int(self.scalar(*select_sql("count(*)", table, where)))

    def tables(self) -> dict[str, int]:
        with self.reader() as con:
            names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema='main' ORDER BY 1").fetchall()]
            return {n: int(con.execute(f"SELECT count(*) FROM {n}").fetchone()[0]) for n in names}

    def export(self, table: str, dest: str | Path) -> Path:
        """Write a table to Parquet."""
        _check_table(table)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        import pyarrow.parquet as pq

        pq.write_table(self.query_arrow(f"SELECT * FROM {table}"), dest)
        return dest


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise StorageError(f"unknown table {table!r}; tables are {', '.join(sorted(TABLES))}")


def columns(table: str) -> list[str]:
    cols = []
    for line in TABLES[table].strip().splitlines():
        name = line.strip().split()[0]
        cols.append(name)
    return cols


def select_sql(what: str, table: str, where: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """`SELECT what FROM table [WHERE …]` and its parameters (one checked table, named columns)."""
    _check_table(table)
    if not where:
        return f"SELECT {what} FROM {table}", []
    clause, params = _where(where)
    return f"SELECT {what} FROM {table} WHERE {clause}", params


def _where(where: dict[str, Any]) -> tuple[str, list[Any]]:
    if not where:
        raise StorageError("refusing an empty WHERE (would touch every row)")
    parts, params = [], []
    for col, value in where.items():
        if not col.replace("_", "").isalnum():
            raise StorageError(f"bad column name {col!r}")
        if isinstance(value, (list, tuple, set)):
            values = list(value)
            parts.append(f"{col} IN ({', '.join('?' for _ in values)})" if values else "FALSE")
            params.extend(values)
        else:
            parts.append(f"{col} = ?")
            params.append(value)
    return " AND ".join(parts), params


def iter_batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
