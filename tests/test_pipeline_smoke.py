"""`skipthink run --preset smoke`: every stage, end to end, through the real CLI and Prefect engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Database
from storage.schema import TABLES
from tests.prefect_helpers import processes_left

pytestmark = pytest.mark.slow
METHODS = ["answer-only", "ft", "cwt-ac", "cwt-sbc", "stt", "skipall"]


# Every run of the smoke test records core-token statistics (the same fingerprints each time).
STATS = ("--set", "training.core_token_stats=true")


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SKIPTHINK_HOME=str(home), PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True, timeout=600)


def test_smoke_run_fills_every_table_and_writes_the_report(tmp_path):
    home = tmp_path / "home"
    # core_token_stats: the over-smoothing analysis rides along (one more validation pass per epoch).
    proc = run_cli(home, "run", "--preset", "smoke", *STATS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["dataset"] == "coin_flip" and set(last["methods"]) == set(METHODS)
    for method, m in last["methods"].items():
        assert 0.0 <= m["accuracy"] <= 100.0, method
        assert m["mean_new_tokens"] > 0, method
        # train_minutes is rounded to 0.01: answer-only can train in under 0.3 s on a fast CPU.
        assert m["n_params"] > 100_000 and 0 <= m["train_minutes"] < 10, (method, m)
    assert sum(m["train_minutes"] for m in last["methods"].values()) > 0
    assert last["methods"]["ft"]["speedup_vs_ft"] == 1.0
    assert "| cwt-sbc" in proc.stdout or "cwt-sbc" in proc.stdout

    db = Database(home / "skipthink.duckdb")
    counts = db.tables()
    for table in TABLES:
        if table in ("teacher_failures", "teacher_batches"):
            continue  # nothing failed, no batch mode
        assert counts[table] > 0, f"{table} is empty"
    assert db.count("train_runs") == len(METHODS)
    assert db.scalar("SELECT count(DISTINCT method) FROM metrics") == len(METHODS)
    assert db.scalar("SELECT count(*) FROM stage_runs WHERE status <> 'completed'") == 0
    assert db.scalar("SELECT count(*) FROM stage_runs WHERE code_version IS NULL") == 0
    # Every method selected its epoch on validation and recorded its budget.
    runs = db.select("train_runs")
    assert all(r["best_val_loss"] is not None and r["target_tokens"] > 0 and json.loads(r["budget"])["mode"] == "epochs" for r in runs), runs
    # SBC searched before the second epoch, over train and validation items alike.
    sbc_run = db.scalar("SELECT train_fp FROM train_runs WHERE method = 'cwt-sbc'")
    assert db.scalar("SELECT min(epoch) FROM chunkings WHERE train_fp = ? AND kind = 'search'", [sbc_run]) == 1
    assert set(db.scalar("SELECT list(DISTINCT e.split) FROM chunkings c JOIN examples e USING (sample_id) WHERE c.train_fp = ?", [sbc_run])) == {"train", "val"}
    # Skip samples for both splits, each with its baseline check.
    assert {r["split"] for r in db.select("skip_samples")} == {"train", "val"}
    assert db.scalar("SELECT count(*) FROM skip_samples WHERE baseline_correct IS NULL") == 0

    # Every trained method recorded core vs rest statistics per epoch; the analysis command reads them.
    mech = run_cli(home, "results", "mechanism", str(home), "--out", str(tmp_path / "mechanism.json"))
    assert mech.returncode == 0, mech.stderr[-2000:]
    curves = json.loads((tmp_path / "mechanism.json").read_text())["over_training"]["coin_flip"]
    assert set(curves) == set(METHODS) and all(rows and rows[0]["core_loss"]["mean"] > 0 for rows in curves.values())

    # The step reader joins every stored output to its run: one group per method, each of the
    # test split's size, plus the teacher's kept and rejected rationales.
    steps = run_cli(home, "results", "steps", str(home), "--out", str(tmp_path / "steps.json"))
    assert steps.returncode == 0, steps.stderr[-2000:]
    groups = json.loads((tmp_path / "steps.json").read_text())["steps"]["summary"]["coin_flip"]
    assert set(groups["test"]) == set(METHODS)
    assert {g: f["accuracy"]["mean"] for g, f in groups["test"].items()} == pytest.approx({m: v["accuracy"] for m, v in last["methods"].items()}, abs=0.01)
    assert groups["test"]["ft"]["mean_skipped_chunks"]["mean"] == 0.0  # FT has no chunks to skip
    # The run's summary counts skipping outputs in SQL; the step reader counts them in Python.
    assert {m: v["skipping_share"] for m, v in last["methods"].items()} == pytest.approx({g: f["skipping_share"]["mean"] for g, f in groups["test"].items()}, abs=0.01)
    assert "teacher kept" in groups["teacher"]

    report_dir = Path(last_report_path(proc.stdout)).parent
    assert (report_dir / "report.md").read_text().count("|") > 20
    for png in ("accuracy_vs_tokens.png", "loss_curves.png"):
        assert (report_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Refresh the evaluations, run in parallel by a local Dask cluster (separate processes):
    # they recompute, everything upstream stays cached.
    before = finished_at(db)
    par = run_cli(home, "run", "--preset", "smoke", *STATS, "--refresh", "evaluate", "--dask-workers", "2")
    assert par.returncode == 0, par.stderr[-4000:]
    assert redone(db, before) == {"evaluate", "report"}
    assert db.count("metrics") == len(METHODS) and db.scalar("SELECT count(DISTINCT evaluate_fp) FROM predictions") == len(METHODS)

    # A run with the same config recomputes nothing: every stage is a cache hit.
    before = finished_at(db)
    again = run_cli(home, "run", "--preset", "smoke", *STATS)
    assert again.returncode == 0, again.stderr[-4000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["run"] == last["run"]
    assert db.count("stage_runs") == counts["stage_runs"]
    log = again.stdout + again.stderr
    assert "Cached" in log and "stage data started" not in log
    assert redone(db, before) == set()

    # The database, not Prefect's result files, decides presence: without them nothing retrains.
    import shutil

    shutil.rmtree(home / "prefect-results")
    assert run_cli(home, "run", "--preset", "smoke", *STATS).returncode == 0
    assert redone(db, before) == set()

    # A stage whose artifacts vanished is recomputed, and what was built on it follows.
    cwt_ac = db.scalar("SELECT train_fp FROM train_runs WHERE method = 'cwt-ac'")
    shutil.rmtree(home / "runs" / cwt_ac)
    assert run_cli(home, "run", "--preset", "smoke", *STATS).returncode == 0
    assert redone(db, before) == {"train:" + cwt_ac, "evaluate", "report"}

    # `skipthink report` re-renders it from the database alone.
    rep = run_cli(home, "report")
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert "stt" in rep.stdout and "report:" in rep.stdout

    # `skipthink bench latency` times that run's trained FT and STT side by side: the same
    # greedy outputs the evaluate stage wrote for the same first questions.
    bench = run_cli(home, "bench", "latency", "--questions", "3", "--repeats", "2")
    assert bench.returncode == 0, bench.stderr[-2000:]
    lat = json.loads(bench.stdout.strip().splitlines()[-1])
    assert (lat["run"], lat["questions"], lat["repeats"], lat["torch_threads"]) == (last["run"], 3, 2, 1)
    for method in ("ft", "stt"):
        rows = db.query("SELECT sample_id, new_tokens FROM predictions WHERE method = ? AND test_set = 'test'", [method])
        first = sorted(rows, key=lambda r: (len(r["sample_id"]), r["sample_id"]))[:3]
        assert lat["methods"][method]["mean_new_tokens"] == pytest.approx(sum(r["new_tokens"] for r in first) / 3, abs=0.01), method
    stt = lat["vs_ft"]["stt"]
    assert stt["latency_ratio_ci95"][0] <= stt["latency_ratio"] <= stt["latency_ratio_ci95"][1]
    assert stt["token_ratio"] == pytest.approx(lat["methods"]["ft"]["mean_new_tokens"] / lat["methods"]["stt"]["mean_new_tokens"], abs=0.01)
    bad = run_cli(home, "bench", "latency", "--method", "ft", "--method", "nonesuch")
    assert bad.returncode == 1 and "did not train and evaluate nonesuch" in bad.stderr


def finished_at(db: Database) -> dict[str, object]:
    return {(r["stage"], r["fp"]): r["finished_at"] for r in db.select("stage_runs")}


def redone(db: Database, before: dict) -> set[str]:
    """Stages rerun since `before` (training runs named by fingerprint)."""
    out = set()
    for (stage, fp), t in finished_at(db).items():
        if before.get((stage, fp)) != t:
            out.add(f"train:{fp}" if stage == "train" else stage)
    return out


def test_two_runs_at_once_share_every_stage(tmp_path):
    """Fault: the same config started twice at once on one home (a double click in the UI).
    Expected: both succeed; every stage runs once; no teacher request is stored (paid) twice."""
    home = tmp_path / "home"
    env = dict(os.environ, SKIPTHINK_HOME=str(home), PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false", OMP_NUM_THREADS="1")
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "flows.cli", "run", "--preset", "smoke", "--set", "evaluation.methods=[ft, cwt-sbc, stt]"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-3000:] for o in outs]
    runs = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert runs[0] == runs[1]
    db = Database(home / "skipthink.duckdb")
    assert db.scalar("SELECT count(*) FROM train_runs") == 3
    assert db.scalar("SELECT count(*) FROM teacher_requests") == db.scalar("SELECT count(DISTINCT key) FROM teacher_requests") > 0
    assert db.scalar("SELECT count(*) FROM stage_runs WHERE status <> 'completed'") == 0


def last_report_path(stdout: str) -> str:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("report: ")]
    assert lines, stdout[-2000:]
    return lines[-1].removeprefix("report: ").strip()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_sigterm_mid_training_marks_the_stage_failed_and_leaves_no_process_behind(tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, SKIPTHINK_HOME=str(home), PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               OMP_NUM_THREADS="1")
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        # Enough epochs that answer-only training is still running when the signal lands: at two
        # epochs a fast machine finished it before the signal arrived (CI, stop 21).
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", "--preset", "smoke", "--set", "training.epochs=400"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while "training answer-only on" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # Before: the run died by the signal (-15) and its temporary Prefect server lived on, orphaned.
    left = processes_left(f"SKIPTHINK_HOME={home}\0")
    assert left == [], f"processes left behind: {left}"
    db = Database(home / "skipthink.duckdb")
    assert db.scalar("SELECT count(*) FROM stage_runs WHERE status = 'running'") == 0
    assert db.scalar("SELECT list(status) FROM stage_runs WHERE stage = 'train'") == ["failed"]


def test_until_chunk_runs_only_what_the_chunk_stage_needs_and_reports_auto_m(tmp_path):
    home = tmp_path / "home"
    proc = run_cli(home, "run", "--preset", "smoke", "--set", "chunking.num_chunks=auto", "--until", "chunk")
    assert proc.returncode == 0, proc.stderr[-4000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["until"] == "chunk" and set(last["stages"]) == {"data", "teacher", "chunk"}
    chunk = last["stages"]["chunk"]
    assert chunk["num_chunks_setting"] == "auto" and chunk["num_chunks"] == round(chunk["mean_train_steps"]) >= 2
    db = Database(home / "skipthink.duckdb")
    assert sorted(db.scalar("SELECT list(stage) FROM stage_runs")) == ["chunk", "data", "teacher"]
    assert db.scalar("SELECT count(*) FROM train_runs") == 0
    bad = run_cli(home, "run", "--preset", "smoke", "--until", "chunks")
    assert bad.returncode == 2 and "unknown stage(s) chunks" in bad.stderr
