"""Where a project home keeps its database files.

`single`: `<home>/skipthink.duckdb`, shared by the processes of one machine, which take turns
under a file lock. A file lock is no protection across machines (NFS, CephFS and cloud volumes
may not implement it, and DuckDB's own lock is advisory), so many pods must not share it.
`per_run`: every run writes its own `<home>/db/<name>.duckdb` (`storage.run_id`, else
`<start>-<host>-<pid>`) and nobody else ever writes that file; readers (`skipthink db`, reports, sweeps) see all of them through one
`ReadView`.
"""

from __future__ import annotations

from pathlib import Path

from storage.db import StorageError
from storage.readview import ReadView

SINGLE_FILE = "skipthink.duckdb"
PER_RUN_DIR = "db"


def home_databases(home: Path) -> list[Path]:
    """The single-layout file, then the per-run files by name, that exist under `home`."""
    home = Path(home).expanduser()
    single = home / SINGLE_FILE
    files = ([single] if single.is_file() else []) + sorted((home / PER_RUN_DIR).glob("*.duckdb"))
    if not files:
        raise StorageError(f"{home}: no database here (neither {SINGLE_FILE} nor {PER_RUN_DIR}/*.duckdb)")
    return files


def home_view(home: Path) -> ReadView:
    """A read view of every database under `home`, whichever layout wrote them."""
    return ReadView(home_databases(home))


def other_run_databases(home: Path, own: Path) -> list[Path]:
    """The per-run files under `home` other than `own` (none in the single layout)."""
    own = Path(own).expanduser().resolve()
    return [f.resolve() for f in sorted((Path(home).expanduser() / PER_RUN_DIR).glob("*.duckdb")) if f.resolve() != own]
