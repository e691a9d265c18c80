"""DuckDB storage for every pipeline artifact: schema, migrations, locked short transactions."""

from storage.db import Database, StorageError
from storage.readview import ReadView, database_files

__all__ = ["Database", "ReadView", "StorageError", "database_files"]
