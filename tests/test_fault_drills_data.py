"""Fault drills for data, the database and checkpoints (issue 13, items 12, 13 and 14's checkpoints).

Each drill injects one fault the way it happens in practice and checks three things, stated in
its docstring: the fault, the expected outcome, and what must not be lost.
"""

import json
import os
import pickle
import threading
import time

import pytest
import torch

from skipthink.checkpoints import TRAINER_FILE, CheckpointError, latest_checkpoint
from skipthink.config import load_config
from skipthink.train_worker import main as train_worker_main
from storage import Database, ReadView
from tasks.items import read_examples
from tasks.stages import plan, run_node


class Planted:
    """A pickle payload: unpickling it creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _db_sql(db, query):
    """`skipthink db sql QUERY --json --db DB`, in process (the CLI's subprocess test is in test_storage)."""
    from typer.testing import CliRunner

    from flows.cli import app

    return CliRunner().invoke(app, ["db", "sql", query, "--json", "--db", str(db)])


def _rows(n, fp, offset=0):
    return [dict(data_fp=fp, dataset="d", split="train", sample_id=str(offset + i), question="q", answer="a", answer_type="string") for i in range(n)]


# ---- item 13: the database ----------------------------------------------------------------
def test_drill_long_ad_hoc_query_while_the_pipeline_writes(tmp_path):
    """Fault: someone runs a slow `db sql` query while a stage is saving rows.
    Expected: the stage's write goes through while the query is still running (it waits only for
    the snapshot copy, never for the query); the query answers from its snapshot. Not lost: any
    row the stage wrote. (No absolute timing bound: it must hold on a loaded machine too.)"""
    db = Database(tmp_path / "a.duckdb", lock_timeout_s=120.0)
    db.insert("examples", _rows(10, "before"))
    answer: dict = {}
    reader = threading.Thread(target=lambda: answer.update(ReadView([db.path]).query(
        "SELECT (SELECT count(*) FROM examples) AS n, sum(hash(i)) AS h FROM range(300000000) t(i)")[0]))
    started = time.perf_counter()
    reader.start()
    time.sleep(0.5)  # the snapshot is taken in milliseconds; the query then runs for seconds
    t0 = time.perf_counter()
    db.insert("examples", _rows(5, "during"))
    waited = time.perf_counter() - t0
    assert reader.is_alive(), "the query ended before the write: the drill proved nothing"
    reader.join(300)
    query_s = time.perf_counter() - started
    assert waited < query_s / 2 and answer["n"] == 10
    assert db.count("examples", {"data_fp": "during"}) == 5 and db.count("examples") == 15


def test_drill_exfiltration_and_tampering_through_db_sql(tmp_path):
    """Fault: `db sql` is handed statements that write files, read host files, attach other
    databases, install extensions or change the database.
    Expected: each is refused with DuckDB's reason and exit code 1; no file appears.
    Not lost: the database's rows."""
    path = tmp_path / "a.duckdb"
    Database(path).insert("examples", _rows(3, "fp"))
    out_file = tmp_path / "stolen.csv"
    for query in (
        f"COPY (SELECT 1) TO '{out_file}'",
        f"COPY (SELECT * FROM examples) TO '{out_file}' (FORMAT csv)",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM glob('/root/*')",
        f"ATTACH '{tmp_path / 'new.duckdb'}' AS x",
        "INSTALL httpfs",
        "SELECT 1; DROP TABLE db0.examples",
        "UPDATE db0.examples SET question = 'x'",
    ):
        result = _db_sql(path, query)
        assert result.exit_code == 1 and result.stderr.startswith("error: "), (query, result.output)
    assert not out_file.exists() and not (tmp_path / "new.duckdb").exists()
    assert json.loads(_db_sql(path, "SELECT count(*) AS n, min(question) AS q FROM examples").stdout) == [{"n": 3, "q": "q"}]


def test_drill_mistyped_db_path(tmp_path):
    """Fault: `--db` names a file that does not exist (a typo, a wrong home).
    Expected: an error naming the path, exit code 1. Not lost: nothing is created in its place
    (before, an empty database appeared there and the query answered "no rows")."""
    typo = tmp_path / "skipthink.duckbd"
    result = _db_sql(typo, "SELECT count(*) FROM examples")
    assert result.exit_code == 1 and f"{typo}: no database file there" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---- item 12: bad data files --------------------------------------------------------------
def _file_cfg(path, home):
    return load_config("smoke", overrides=[
        "dataset.source=file", f"dataset.path={path}", "dataset.name=sums", "dataset.answer_type=number", f"storage.home={home}",
    ])


def _write(path, records, raw_tail=b""):
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + raw_tail)


def test_drill_data_file_gains_a_latin1_byte(tmp_path):
    """Fault: a dataset file that loaded yesterday is edited in a Latin-1 editor ("Zürich").
    Expected: the edit changes the data stage's fingerprint (so nothing stale is reused), and the
    stage fails naming the file and the byte offset; `stage_runs` records the failure.
    Not lost: the examples of yesterday's file (its own fingerprint)."""
    home, path = tmp_path / "home", tmp_path / "d.jsonl"
    records = [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(10)]
    _write(path, records)
    good = _file_cfg(path, home)
    good_fp = plan(good).fp("data")
    assert run_node(good, "data")["examples"] == 10
    good_size = path.stat().st_size
    _write(path, records, raw_tail='{"question": "How far is Z\xfcrich?", "answer": "3"}\n'.encode("latin-1"))
    bad = _file_cfg(path, home)
    bad_fp = plan(bad).fp("data")
    assert bad_fp != good_fp
    offset = good_size + len('{"question": "How far is Z')
    with pytest.raises(Exception, match=rf"d\.jsonl: not UTF-8 text: byte 0xfc at byte offset {offset} "):
        run_node(bad, "data")
    db = Database(good.storage.db_path)
    failed = db.select("stage_runs", {"fp": bad_fp})
    assert failed[0]["status"] == "failed" and f"byte offset {offset}" in json.loads(failed[0]["summary"])["error"]
    assert len(read_examples(db, good_fp)) == 10 and db.count("examples", {"data_fp": bad_fp}) == 0


def test_drill_structured_value_where_text_belongs(tmp_path):
    """Fault: an export wrote some answers as JSON objects ({"value": 4}) and some flags as
    booleans instead of text.
    Expected: the data stage fails naming the file, the line and the field, instead of storing
    the Python repr "{'value': 4}" as a gold answer. Not lost: no half-loaded dataset is stored."""
    home, path = tmp_path / "home", tmp_path / "d.jsonl"
    _write(path, [{"question": "What is 1 + 1?", "answer": "2"}, {"question": "What is 2 + 2?", "answer": {"value": 4}}])
    cfg = _file_cfg(path, home)
    with pytest.raises(Exception, match=r"d\.jsonl: line 2: field 'answer' holds a dict \(\{'value': 4\}\); expected text"):
        run_node(cfg, "data")
    assert Database(cfg.storage.db_path).count("examples") == 0


# ---- item 14 (part): checkpoints and the DDP job file --------------------------------------
@pytest.fixture(scope="module")
def tiny():
    from skipthink.perf.train import toy_items

    cfg = load_config("smoke", overrides=[
        "student.size=nano", "student.vocab_size=400", "student.n_positions=128", "student.device=cpu", "chunking.num_chunks=3",
        "training.max_length=128", "training.batch_size=8", "training.epochs=2", "training.log_every=2",
    ])
    items = toy_items(24, 3, seed=2)
    return cfg, items[:16], items[16:]


def test_drill_planted_pickle_in_a_checkpoint(tmp_path, tiny):
    """Fault: someone with write access to the home replaces a run's `trainer.pt` with a pickle
    that runs a command when loaded, then the run is resumed.
    Expected: the payload never runs; resuming either refuses with a CheckpointError naming the
    file or starts the run over. Not lost: the run's other checkpoints' files and its out_dir."""
    from skipthink.perf.train import item_texts
    from skipthink.student import build_initial_student
    from skipthink.training import train_student

    cfg, train, val = tiny
    init = build_initial_student(cfg.student, item_texts(train), 3, tmp_path / "init")
    out = tmp_path / "run"
    train_student("ft", train, val, init, out, cfg)
    ckpt = latest_checkpoint(out)
    marker = tmp_path / "pwned"
    torch.save({"model": Planted(marker), "optimizer": {}, "scheduler": {}}, ckpt / TRAINER_FILE)
    try:
        result = train_student("ft", train, val, init, out, cfg)
    except CheckpointError as e:
        assert f"{ckpt / TRAINER_FILE}: not a loadable checkpoint (UnpicklingError" in str(e)
    else:
        assert result.steps == 2 * 2 and result.epochs_run == 2  # started over from scratch
    assert not marker.exists()
    assert (out / "final" / "model.safetensors").is_file()


def test_drill_planted_pickle_as_the_ddp_job_file(tmp_path):
    """Fault: the job file a torchrun worker reads is replaced by a pickle payload.
    Expected: the worker refuses it (it parses JSON only) and the payload never runs.
    Not lost: nothing else in the job directory is touched."""
    job = tmp_path / "ddp" / "job.json"
    job.parent.mkdir()
    marker = tmp_path / "pwned"
    job.write_bytes(pickle.dumps(Planted(marker), protocol=0))  # protocol 0 is ASCII: it even decodes
    with pytest.raises(json.JSONDecodeError):
        train_worker_main(str(job))
    assert not marker.exists() and sorted(p.name for p in job.parent.iterdir()) == ["job.json"]
