"""Resuming the teacher stage: after SIGKILL / Ctrl-C nothing saved is sent again; batch mode
polls the stored batch instead of submitting a second one.

The SIGINT child starts with SIGINT ignored, as a child of a background shell does (this test
used to flake there: the child ignored the signal and finished normally); the stage's own
handler must stop it anyway."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from skipthink.config import TeacherConfig, TeacherServerConfig
from skipthink.teacher_server import ServerFaults, start_server, start_server_process
from skipthink.teacher.stage import run_teacher_stage
from storage.db import Database
from storage.teacher_store import DuckDBRequestStore
from tests.test_teacher_stage import synthetic_examples

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGE_CHILD = """
import sys
from skipthink.config import TeacherConfig
from skipthink.teacher.stage import run_teacher_stage
from storage.db import Database
from storage.teacher_store import DuckDBRequestStore
from tests.test_teacher_stage import synthetic_examples
cfg = TeacherConfig.model_validate_json(sys.argv[2])
run_teacher_stage(synthetic_examples(25), cfg, DuckDBRequestStore(Database(sys.argv[1])), "fp-kill")
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_stage_never_resends_a_saved_request(tmp_path, sig):
    db_path = tmp_path / "skipthink.duckdb"
    db = Database(db_path)
    # 100 ms per request at concurrency 4: a full stage takes >= 5 s, so even on a loaded machine
    # (CI beside a training run) the signal lands mid-stage rather than after the child finished.
    with start_server_process(TeacherServerConfig(error_rate=0.0), faults=ServerFaults(latency_ms=100)) as server:
        cfg = TeacherConfig(base_url=server.base_url, max_concurrency=4, flush_every=4, flush_interval_s=0.1)
        ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sig == signal.SIGINT else None
        child = subprocess.Popen([sys.executable, "-c", STAGE_CHILD, str(db_path), cfg.model_dump_json()], cwd=REPO,
                                 stderr=subprocess.DEVNULL, preexec_fn=ignore_sigint)
        deadline = time.monotonic() + 60
        while db.count("teacher_requests") < 40 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        child.send_signal(sig)
        child.wait(timeout=30)
        assert child.returncode != 0  # it was stopped mid-stage, not finished
        saved = db.count("teacher_requests")
        sent_before = server.request_count
        assert 40 <= saved < 200 and sent_before >= saved
        outcome = run_teacher_stage(synthetic_examples(25), cfg, DuckDBRequestStore(db), "fp-kill")
        sent_after = server.request_count - sent_before
    # 100 questions x (rationale + answer) = 200 requests in all; the rerun sent only the unsaved ones.
    assert sent_after == 200 - saved
    assert outcome.summary["usage"]["cached"] == saved and outcome.summary["filter"]["failed"] == 0
    keys = [r["key"] for r in db.query("SELECT key FROM teacher_requests")]
    assert len(keys) == len(set(keys)) == 200


class CrashAfterSubmit(DuckDBRequestStore):
    """Dies right after the batch id is stored, like a process killed while polling."""

    def save_batch(self, row: dict) -> None:
        super().save_batch(row)
        raise KeyboardInterrupt


def test_batch_mode_end_to_end_and_restart_polls_the_stored_batch(tmp_path):
    db = Database(tmp_path / "skipthink.duckdb")
    examples = synthetic_examples(5)
    with start_server(TeacherServerConfig(error_rate=0.0), faults=ServerFaults(batch_delay_s=0.3)) as server:
        cfg = TeacherConfig(base_url=server.base_url, mode="batch", batch_poll_s=0.05, n_completions=2, temperature=0.7)
        with pytest.raises(KeyboardInterrupt):
            run_teacher_stage(examples, cfg, CrashAfterSubmit(db), "fp-batch")
        stored = db.select("teacher_batches")
        assert len(stored) == 1 and stored[0]["step"] == "rationale" and stored[0]["n_requests"] == 20
        outcome = run_teacher_stage(examples, cfg, DuckDBRequestStore(db), "fp-batch")
        stats = server.stats
    # One batch per step in all: the restart polled the stored rationale batch, then sent answers.
    assert stats["batches_created"] == 2 and stats["requests"] == 0
    assert outcome.summary["filter"] == {"requested": 40, "failed": 0, "truncated": 0, "incorrect": 0, "kept": 40}
    batches = db.select("teacher_batches", order_by="created_at")
    assert [b["batch_id"] for b in batches][0] == stored[0]["batch_id"]
    assert [b["status"] for b in batches] == ["saved", "saved"]
    rows = db.query("SELECT batch_id, step, cost_usd FROM teacher_requests")
    assert len(rows) == 80 and {r["batch_id"] for r in rows} == {b["batch_id"] for b in batches}
    calls = json.loads(batches[0]["calls"])
    assert len(calls) == 20 and all(len(c["keys"]) == 2 for c in calls)
