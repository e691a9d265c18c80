"""The teacher stage's RequestStore over the DuckDB file (`teacher_requests`, `teacher_failures`,
`teacher_batches`). Each method is one short locked transaction, so a killed stage keeps every
flushed response and a concurrent reader never waits long. `teacher_requests.key` is unique
and a save ignores keys already stored: two runs (or a flush repeated after a cancelled one)
never store a response twice, and the first stored response is the one every run reads.

In the per-run layout each run writes its own file, so a response another run already paid for
sits in that run's file: `others` names those files, and a key this file lacks is looked up
there (a read-only snapshot of them, queried for the missing keys only) and copied into this file, so no
run pays for a response twice whichever layout the home uses."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from storage.db import Database, iter_batches
from storage.readview import ReadView

# Columns returned for saved responses: what the stage needs to continue and to account cost.
_RESPONSE_COLUMNS = "key, response, finish_reason, prompt_tokens, completion_tokens, cost_usd, completion_index, step"
_KEYS_PER_QUERY = 2000


class DuckDBRequestStore:
    def __init__(self, db: Database, others: Sequence[Path] = ()):
        self.db = db
        self.others = [Path(f).resolve() for f in others if Path(f).resolve() != db.path]

    def load_responses(self, keys: Sequence[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for chunk in iter_batches(dict.fromkeys(keys), _KEYS_PER_QUERY):
            placeholders = ", ".join("?" for _ in chunk)
            rows = self.db.query(f"SELECT {_RESPONSE_COLUMNS} FROM teacher_requests WHERE key IN ({placeholders})", chunk)
            out.update((r["key"], r) for r in rows)
        missing = [k for k in dict.fromkeys(keys) if k not in out]
        if missing and self.others:
            found = self._from_other_runs(missing)
            if found:
                self.save_responses(found)
                out.update((r["key"], {c: r[c] for c in _RESPONSE_COLUMNS.split(", ")}) for r in found)
        return out

    def _from_other_runs(self, keys: Sequence[str]) -> list[dict]:
        """The responses other runs' files hold for `keys` (the oldest one per key, as in one
        file), queried key by key in chunks, never the other files' whole tables."""
        files = [f for f in self.others if f.is_file()]
        if not files:
            return []
        found: dict[str, dict] = {}
        with ReadView(files).connect() as con:
            for chunk in iter_batches(keys, _KEYS_PER_QUERY):
                placeholders = ", ".join("?" for _ in chunk)
                cur = con.execute(
                    f"SELECT * FROM teacher_requests WHERE key IN ({placeholders}) ORDER BY created_at NULLS LAST", chunk
                )
                names = [d[0] for d in cur.description]
                for record in (dict(zip(names, row)) for row in cur.fetchall()):
                    found.setdefault(record["key"], record)
        return list(found.values())

    def save_responses(self, rows: Sequence[dict]) -> None:
        data = self.db.to_arrow("teacher_requests", list(rows))
        if data.num_rows == 0:
            return
        names = ", ".join(data.column_names)
        with self.db.transaction() as con:
            con.register("_incoming_responses", data)
            try:
                con.execute(f"INSERT OR IGNORE INTO teacher_requests ({names}) SELECT {names} FROM _incoming_responses")
            finally:
                con.unregister("_incoming_responses")

    def save_failures(self, rows: Sequence[dict]) -> None:
        self.db.insert("teacher_failures", list(rows))

    def open_batches(self, teacher_fp: str, step: str) -> list[dict]:
        return self.db.query(
            "SELECT * FROM teacher_batches WHERE teacher_fp = ? AND step = ? AND coalesce(status, '') <> 'saved' ORDER BY created_at",
            [teacher_fp, step],
        )

    def save_batch(self, row: dict) -> None:
        self.db.insert("teacher_batches", [row])

    def set_batch_status(self, batch_id: str, status: str) -> None:
        self.db.execute("UPDATE teacher_batches SET status = ? WHERE batch_id = ?", [status, batch_id])
