"""`skipthink db …`: look into the database without writing SQL files.

Every command reads through a sandboxed `ReadView` (a snapshot, read-only, no file access), so
`db sql` cannot write or read other files, never blocks the pipeline's writers for the length
of a query, and a mistyped `--db` is an error rather than a new empty database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import duckdb
import typer

from skipthink.config import default_home
from storage import ReadView, StorageError, database_files
from storage.layout import home_databases

app = typer.Typer(no_args_is_help=True)

DbOption = typer.Option(
    None, "--db", help="DuckDB file, or a directory of per-run files (default: every database under $SKIPTHINK_HOME)."
)


def open_db(db: Optional[Path]) -> ReadView:
    try:
        return ReadView(database_files(db) if db else home_databases(default_home()))
    except StorageError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def _run(fn):
    """Database errors (a bad query, a refused file access) as one line and exit code 1."""
    try:
        return fn()
    except (StorageError, duckdb.Error) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def print_rows(rows: list[dict]) -> None:
    if not rows:
        typer.echo("(no rows)")
        return
    cols = list(rows[0])
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    widths = [min(60, max(len(c), *(len(row[i]) for row in cells))) for i, c in enumerate(cols)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    typer.echo("  ".join("-" * w for w in widths))
    for row in cells:
        typer.echo("  ".join(v[:w].ljust(w) for v, w in zip(row, widths)))


def _cell(v) -> str:
    s = "" if v is None else str(v)
    return s.replace("\n", "\\n")


@app.command("tables")
def tables(db: Optional[Path] = DbOption) -> None:
    """Every table with its row count."""
    view = open_db(db)
    print_rows([{"table": t, "rows": n} for t, n in _run(view.tables).items()])


@app.command("sql")
def sql(query: str = typer.Argument(..., help="A SELECT statement."), as_json: bool = typer.Option(False, "--json", help="Print JSON rows."), db: Optional[Path] = DbOption) -> None:
    """Run a read-only query and print the result."""
    view = open_db(db)
    rows = _run(lambda: view.query(query))
    if as_json:
        typer.echo(json.dumps(rows, default=str))
    else:
        print_rows(rows)


@app.command("export")
def export(table: str, dest: Path, db: Optional[Path] = DbOption) -> None:
    """Write TABLE to a Parquet file."""
    view = open_db(db)
    path = _run(lambda: view.export(table, dest))
    typer.echo(f"wrote {path}")
