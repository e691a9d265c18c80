"""Fault drills for the teacher stage (issue 13: items 1 storage, 3, 6, 8, 9, 10, 11, 14).

Each drill injects one fault through the real `openai` client against the project's own
teacher server on loopback, with a real DuckDB file, and states in its docstring the fault,
the expected outcome and what must not be lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
from pydantic import ValidationError

from skipthink.datasets.base import Example
from skipthink.config import PipelineConfig, Price, TeacherConfig, TeacherServerConfig, load_config, validate_config
from skipthink.teacher.prompts import load_template
from skipthink.teacher_server import ServerFaults, start_server
from skipthink.teacher.stage import TeacherEndpointError, run_teacher_stage
from skipthink.teacher.tokens import count_tokens
from storage.db import Database
from storage.schema import TABLES_V1
from storage.teacher_store import DuckDBRequestStore
from tests.test_teacher_stage import synthetic_examples

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST_RETRY = dict(backoff_base_s=0.01, backoff_max_s=0.02)
EXACT = TeacherServerConfig(error_rate=0.0)


@pytest.fixture
def db(tmp_path):
    return Database(tmp_path / "skipthink.duckdb")


@pytest.fixture
def store(db):
    return DuckDBRequestStore(db)


def pipeline_config(tmp_path, **teacher):
    cfg = load_config("smoke", overrides=[f"storage.home={tmp_path / 'home'}"])
    return cfg.model_copy(update={"teacher": cfg.teacher.model_copy(update=teacher)})


def teacher_ctx(cfg):
    """The context of the `teacher` stage with fingerprint 'teacher-fp' on examples of data_fp 'data-fp'."""
    from tasks.runtime import StageContext

    return StageContext(cfg, "teacher", "teacher", "teacher-fp", None, {"data": "data-fp"}, Database(cfg.storage.db_path))


def present(cfg) -> bool:
    from tasks.runtime import is_present
    from tasks.stages import REGISTRY

    return is_present(REGISTRY["teacher"], teacher_ctx(cfg))


def stage_with_examples(cfg, examples):
    """The real `teacher` stage (no Prefect engine) on examples stored under data_fp 'data-fp'."""
    from tasks.runtime import execute
    from tasks.stages import REGISTRY

    Database(cfg.storage.db_path).replace("examples", {"data_fp": "data-fp"}, [dict(e.to_row(), data_fp="data-fp") for e in examples])
    return lambda: execute(REGISTRY["teacher"], teacher_ctx(cfg))


# ---- item 3: a partly failed stage is not complete ---------------------------------------------

def test_partly_failed_stage_fails_keeps_responses_and_rerun_retries_only_failures(tmp_path):
    """Fault: a third of the requests get 500s until their retries run out.
    Expected: the stage fails (failed > teacher.max_failed_fraction = 0), writes no rationales and
    is not present; once the outage is over a rerun sends exactly the failed requests and completes.
    Not lost: every response that did arrive (none is paid for twice)."""
    from tasks.teacher import TeacherIncomplete

    with start_server(EXACT, faults=ServerFaults(server_error_fraction=0.3, seed=7)) as server:
        cfg = pipeline_config(tmp_path, base_url=server.base_url, max_retries=0, **FAST_RETRY)
        run = stage_with_examples(cfg, synthetic_examples(5))
        with pytest.raises(TeacherIncomplete, match="max_failed_fraction"):
            run()
        db = Database(cfg.storage.db_path)
        saved, failed_keys = db.count("teacher_requests"), {r["key"] for r in db.select("teacher_failures")}
        status = db.select("stage_runs", {"stage": "teacher"})[0]
        assert failed_keys and saved > 0 and status["status"] == "failed"
        assert db.count("rationales") == 0 and not present(cfg)
        server.app.state.teacher.faults.server_error_fraction = 0.0  # the outage ends
        sent_before = server.request_count
        summary = run()
        resent = server.request_count - sent_before
    # 20 questions x (rationale + answer) = 40 keys; the rerun sent only what had no response.
    assert resent == 40 - saved and summary["usage"]["cached"] == saved
    assert summary["filter"]["failed"] == 0 and present(cfg)
    assert db.count("teacher_requests") == 40 and db.count("rationales") == 20


def test_failures_within_max_failed_fraction_complete(store):
    """Fault: one in ten requests fails for good. Expected: with teacher.max_failed_fraction=0.5
    the outcome carries no failure; with the default 0 it does. Not lost: the other responses."""
    with start_server(EXACT, faults=ServerFaults(server_error_fraction=0.1, seed=1)) as server:
        cfg = TeacherConfig(base_url=server.base_url, max_retries=0, **FAST_RETRY)
        strict = run_teacher_stage(synthetic_examples(5), cfg, store, "fp-frac")
        lenient = run_teacher_stage(synthetic_examples(5), cfg.model_copy(update={"max_failed_fraction": 0.5}), store, "fp-frac")
    assert strict.summary["filter"]["failed"] > 0 and "max_failed_fraction" in strict.failure
    assert lenient.failure is None and lenient.summary["usage"]["calls"] <= strict.summary["filter"]["failed"] * 2


# ---- item 8: writer save errors, unstorable text, bad 200 responses ----------------------------

class SaveFailsTwice(DuckDBRequestStore):
    """The real DuckDB store, whose first two saves raise (a lock timeout, a full disk)."""

    def __init__(self, db):
        super().__init__(db)
        self.failures_left = 2

    def save_responses(self, rows):
        if self.failures_left:
            self.failures_left -= 1
            raise OSError("disk full (injected)")
        super().save_responses(rows)


def test_save_error_puts_rows_back_and_no_paid_response_is_lost(db):
    """Fault: the first two flushes to the database raise. Expected: the stage completes; the rows
    of the failed flushes are saved by a later one. Not lost: any response (40 requests paid,
    40 rows stored, a rerun sends nothing)."""
    store = SaveFailsTwice(db)
    with start_server(EXACT) as server:
        cfg = TeacherConfig(base_url=server.base_url, flush_every=2, max_concurrency=2)
        out = run_teacher_stage(synthetic_examples(5), cfg, store, "fp-save")
        paid = server.stats["completions_ok"]
        rerun = run_teacher_stage(synthetic_examples(5), cfg, DuckDBRequestStore(db), "fp-save")
        assert server.stats["completions_ok"] == paid
    assert store.failures_left == 0 and out.failure is None
    assert paid == 40 == db.count("teacher_requests") and rerun.summary["usage"]["calls"] == 0


def test_a_lone_surrogate_is_sanitised_not_fatal(store):
    """Fault: every answer carries a lone surrogate (valid JSON, not valid UTF-8), which made the
    insert raise UnicodeEncodeError on every rerun. Expected: stored with U+FFFD in its place, the
    stage completes and a rerun is served from the database. Not lost: any response."""
    with start_server(EXACT, faults=ServerFaults(surrogate_fraction=1.0)) as server:
        cfg = TeacherConfig(base_url=server.base_url)
        out = run_teacher_stage(synthetic_examples(2), cfg, store, "fp-surrogate")
        rerun = run_teacher_stage(synthetic_examples(2), cfg, store, "fp-surrogate")
    responses = [r["response"] for r in store.db.query("SELECT response FROM teacher_requests")]
    assert len(responses) == 16 and all(r.endswith("\ufffd") for r in responses)
    # Only last-letter answers compare the whole text, so there the appended U+FFFD makes them wrong.
    assert out.failure is None and out.summary["filter"]["failed"] == 0
    assert {r["dataset"] for r in out.rationales if not r["correct"]} == {"last_letter_concatenation"}
    assert rerun.summary["usage"]["calls"] == 0 and rerun.summary["usage"]["cached"] == 16


@pytest.mark.parametrize("fault, endpoint, error_class", [
    ("null_content", "chat", "NullContent"),
    ("bad_choices", "completions", "BadChoices"),
    ("huge", "completions", "OversizedText"),
    ("nul", "chat", "NulInText"),
])
def test_bad_200_is_a_classed_failure_not_retried(store, fault, endpoint, error_class):
    """Fault: every answer is a 200 whose choices cannot be used (null content, `choices` not a
    list, 10 MB of text, a NUL byte). Expected: one attempt per call (at temperature 0 a retry
    returns the same), a teacher_failures row per key naming the class, the stage fails.
    Not lost: nothing is stored as a rationale that was not one."""
    with start_server(EXACT, faults=ServerFaults(**{f"{fault}_fraction": 1.0})) as server:
        cfg = TeacherConfig(base_url=server.base_url, endpoint=endpoint, max_retries=5, **FAST_RETRY)
        out = run_teacher_stage(synthetic_examples(1), cfg, store, f"fp-{fault}")
        stats = server.stats
    failures = store.db.select("teacher_failures")
    assert stats["requests"] == 4 == stats[fault] and store.db.count("teacher_requests") == 0
    assert [(f["error_class"], f["attempts"]) for f in failures] == [(error_class, 1)] * 4
    assert out.summary["filter"]["failed"] == 4 and "4 of 4 requests failed" in out.failure


# ---- item 9: budget ---------------------------------------------------------------------------

PRICES = {"scripted-teacher": Price(input_per_mtok=1000.0, output_per_mtok=0.0)}


def test_retries_and_empty_200s_are_costed(store):
    """Fault: every answer is an empty 200 (billed, unusable); each call is tried 3 times.
    Expected: each attempt's prompt tokens are costed in the summary and in teacher_failures.cost_usd.
    Not lost: the account of what was spent."""
    examples = synthetic_examples(1)
    with start_server(EXACT, faults=ServerFaults(empty_fraction=1.0)) as server:
        cfg = TeacherConfig(base_url=server.base_url, prices=PRICES, max_retries=2, **FAST_RETRY)
        out = run_teacher_stage(examples, cfg, store, "fp-empty")
    template = load_template("zs_cot")
    expected = sum(3 * count_tokens(template.rationale_prompt(ex.question)) * 1000.0 / 1e6 for ex in examples)
    assert out.summary["usage"]["cost_usd"] == pytest.approx(expected)
    assert store.db.scalar("SELECT sum(cost_usd) FROM teacher_failures") == pytest.approx(expected)
    assert {f["attempts"] for f in store.db.select("teacher_failures")} == {3}


def test_budget_stops_retries_of_billed_empty_answers(store):
    """Fault: empty 200s forever, with 100 retries allowed. Expected: the billed attempts reach
    max_cost_usd and the stage stops ('budget') instead of retrying on. Not lost: the spend record."""
    with start_server(EXACT, faults=ServerFaults(empty_fraction=1.0)) as server:
        cfg = TeacherConfig(base_url=server.base_url, prices=PRICES, max_cost_usd=0.3, max_retries=100, max_concurrency=2, **FAST_RETRY)
        out = run_teacher_stage(synthetic_examples(5), cfg, store, "fp-empty-budget")
        sent = server.request_count
    assert out.summary["stopped"] == "budget" and "stopped early (budget)" in out.failure
    assert 0.3 <= out.summary["usage"]["cost_usd"] < 0.3 + 2 * 0.1 and sent < 20


def test_batch_mode_submits_only_what_the_budget_covers(store):
    """Fault: a budget smaller than the whole batch. Expected: the batch holds only the calls whose
    worst-case cost fits; the stage stops with 'budget' and spends no more than max_cost_usd.
    Not lost: the answered calls (a rerun with a larger budget sends only the rest)."""
    prices = {"scripted-teacher": Price(input_per_mtok=100.0, output_per_mtok=1000.0)}
    examples = synthetic_examples(2)
    with start_server(EXACT) as server:
        cfg = TeacherConfig(base_url=server.base_url, mode="batch", batch_poll_s=0.05, prices=prices, max_cost_usd=0.1)
        out = run_teacher_stage(examples, cfg, store, "fp-batch-budget")
        batches = store.db.select("teacher_batches")
    # Worst case per rationale call: 128 completion tokens at $1000/M x 0.5 discount = $0.064 + prompt.
    assert [b["n_requests"] for b in batches] == [1] and out.summary["stopped"] == "budget"
    assert 0 < store.db.scalar("SELECT sum(cost_usd) FROM teacher_requests") <= 0.1


def test_batch_polling_has_a_deadline_and_a_rerun_polls_the_same_batch(store):
    """Fault: the batch stays in progress longer than teacher.batch_timeout_s. Expected: the stage
    stops ('batch_deadline') within about the deadline, the batch stays stored and open; a rerun
    polls that batch rather than paying for a second one. Not lost: the submitted batch."""
    examples = synthetic_examples(1)
    with start_server(EXACT, faults=ServerFaults(batch_delay_s=1.5)) as server:
        cfg = TeacherConfig(base_url=server.base_url, mode="batch", batch_poll_s=0.05, batch_timeout_s=0.3)
        started = time.monotonic()
        first = run_teacher_stage(examples, cfg, store, "fp-deadline")
        took = time.monotonic() - started
        [batch] = store.db.select("teacher_batches")
        second = run_teacher_stage(examples, cfg.model_copy(update={"batch_timeout_s": 60.0}), store, "fp-deadline")
        stats = server.stats
    assert first.summary["stopped"] == "batch_deadline" and took < 5 and batch["status"] != "saved"
    assert second.failure is None and stats["batches_created"] == 2  # the stored rationale batch + answers
    assert store.db.select("teacher_batches", order_by="created_at")[0]["batch_id"] == batch["batch_id"]


# ---- item 10: an unreachable or misconfigured teacher fails fast --------------------------------

def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_fails_fast_naming_the_redacted_endpoint(store):
    """Fault: nothing listens at base_url (which carries credentials). Expected: GET /models fails
    at once with TeacherEndpointError naming the endpoint without its credentials and the error
    class; no request is retried for minutes. Not lost: nothing was paid."""
    port = _closed_port()
    cfg = TeacherConfig(base_url=f"http://admin:hunter2@127.0.0.1:{port}/v1", max_retries=8)
    started = time.monotonic()
    with pytest.raises(TeacherEndpointError) as err:
        run_teacher_stage(synthetic_examples(1), cfg, store, "fp-down")
    message = str(err.value)
    assert time.monotonic() - started < 10
    assert f"http://127.0.0.1:{port}/v1" in message and "APIConnectionError" in message and "hunter2" not in message
    assert store.db.count("teacher_failures") == 0


def test_wrong_key_and_wrong_path_fail_before_the_first_request(store, monkeypatch):
    """Fault: a 401 (wrong key) and a 404 (base_url without /v1). Expected: both fail on GET /models
    with the class and status in the message, before any completion request."""
    monkeypatch.setenv("DRILL_API_KEY", "sk-wrong")
    with start_server(EXACT, faults=ServerFaults(api_key="sk-right")) as server:
        with pytest.raises(TeacherEndpointError, match=r"AuthenticationError \(HTTP 401\) on GET /models"):
            run_teacher_stage(synthetic_examples(1), TeacherConfig(base_url=server.base_url, api_key_env="DRILL_API_KEY"), store, "fp-401")
        wrong_path = server.base_url.removesuffix("/v1")
        with pytest.raises(TeacherEndpointError, match=r"NotFoundError \(HTTP 404\)"):
            run_teacher_stage(synthetic_examples(1), TeacherConfig(base_url=wrong_path, api_key_env="DRILL_API_KEY"), store, "fp-404")
        assert server.stats["requests"] == 0 and server.stats["unauthorized"] == 1


def test_identical_failures_stop_the_stage_after_n(store, monkeypatch):
    """Fault: the endpoint check is off and every completion answers 401. Expected: the stage stops
    after teacher.max_identical_failures attempts in a row, not after one failure per request; the
    failure rows recorded so far have the key redacted. Not lost: the failure record."""
    canary = "sk-canary-drill-0c4f"
    monkeypatch.setenv("DRILL_API_KEY", canary)
    with start_server(EXACT, faults=ServerFaults(api_key="sk-right")) as server:
        cfg = TeacherConfig(base_url=server.base_url, api_key_env="DRILL_API_KEY", check_endpoint=False,
                            max_identical_failures=3, max_concurrency=1)
        with pytest.raises(TeacherEndpointError, match="3 attempts in a row failed with AuthenticationError") as err:
            run_teacher_stage(synthetic_examples(5), cfg, store, "fp-streak")
        assert server.stats["requests"] == 3
    messages = [f["message"] for f in store.db.select("teacher_failures")]
    assert len(messages) == 2 and all("REDACTED" in m and canary not in m for m in messages)
    assert canary not in str(err.value)


def test_base_url_scheme_is_validated_without_echoing_credentials():
    """Fault: a base_url that is not http(s). Expected: a config error naming the field, with the
    credentials of the URL removed."""
    with pytest.raises(ValidationError, match="scheme must be http or https") as err:
        TeacherConfig(base_url="file://user:s3cret@localhost/etc/passwd")
    assert "s3cret" not in str(err.value)
    with pytest.raises(ValueError, match="no host"):
        TeacherConfig(base_url="http:///v1")


# ---- item 11: rationales the user brings ---------------------------------------------------------

def _ex(sid, question, answer, answer_type, *rationales, meta=None):
    return Example("mine", "train", sid, question, answer, answer_type, meta or {}, tuple(rationales))


def test_dataset_rationales_are_graded_by_their_final_statement(store):
    """Fault: another teacher's rationales state the answer in their own words. Expected: each is
    read from its final statement and checked against the gold answer by the answer type's rules;
    the consistent ones are kept. Not lost: any consistent rationale."""
    examples = [
        _ex("1", "Take the last letters of Alan Bob Cy Dora.", "nbya", "string",
            "Alan ends with n, Bob with b, Cy with y, Dora with a, so all together we get: nbya"),
        _ex("2", "What is 3 times 4?", "12", "number", "3 times 4 is 3 + 3 + 3 + 3. The final result is 12."),
        _ex("3", "Which is heavier? (A) a feather (B) a brick (C) a leaf", "B", "letter",
            "A brick weighs far more than a feather or a leaf. Hence (B).", meta={"choice_letters": "ABC"}),
        _ex("4", "Is the coin still heads up?", "no", "yes_no", "Ann flips it once. No one flips it back, so the answer is no."),
        _ex("5", "What is 2.5 plus 1?", "3.5", "float", "2.5 + 1 = 3.5.\nThat makes 3.5 in total."),
        _ex("6", "What is 3 times 4?", "12", "number", "3 times 4 is 12. The final result is 13."),
        _ex("7", "Alice and Bob swap balls. Which choice is true? Answer choices: (A) orange ball, (B) white ball, (C) blue ball.",
            "B", "letter", "Alice now has the orange ball. At the end of the game, Bob has the white ball.", meta={"choice_letters": "ABC"}),
    ]
    out = run_teacher_stage(examples, TeacherConfig(source="dataset"), store, "fp-own-words")
    graded = [(r["sample_id"], r["predicted"], r["correct"]) for r in out.rationales]
    assert graded == [("1", "nbya", True), ("2", "12", True), ("3", "B", True), ("4", "no", True),
                      ("5", "3.5", True), ("6", "13", False), ("7", "B", True)]
    assert out.summary["filter"]["kept"] == 6 and out.failure is None


def test_dataset_stage_fails_when_the_filter_keeps_too_few(tmp_path):
    """Fault: most brought rationales disagree with the gold answer. Expected: the stage fails
    (kept < teacher.min_kept_fraction = 0.5) with the drop counts and one dropped example, instead
    of training on a handful. Not lost: the dataset itself (nothing is written)."""
    from tasks.teacher import TeacherIncomplete

    examples = [_ex(str(i), f"What is {i} plus 1?", str(i + 1), "number", f"{i} plus 1 is {i + 2}. So we get {i + 2}.")
                for i in range(3)] + [_ex("9", "What is 9 plus 1?", "10", "number", "9 plus 1 is 10. So we get 10.")]
    cfg = pipeline_config(tmp_path, source="dataset")
    with pytest.raises(TeacherIncomplete) as err:
        stage_with_examples(cfg, examples)()
    message = str(err.value)
    assert "kept 1 of 4 rationales (3 dropped as inconsistent" in message and "min_kept_fraction=0.5" in message
    assert "Example dropped: mine/0 gold '1', read '2' from '0 plus 1 is 2. So we get 2.'" in message
    assert Database(cfg.storage.db_path).count("rationales") == 0


# ---- item 6: SIGINT / SIGTERM -------------------------------------------------------------------

STAGE_CHILD = """
import asyncio, sys
from skipthink.config import TeacherConfig
from skipthink.teacher.stage import run_teacher_stage
from storage.db import Database
from storage.teacher_store import DuckDBRequestStore
from tests.test_teacher_stage import synthetic_examples
cfg = TeacherConfig.model_validate_json(sys.argv[2])
run = lambda: run_teacher_stage(synthetic_examples(int(sys.argv[4])), cfg, DuckDBRequestStore(Database(sys.argv[1])), "fp-signal")
if sys.argv[3] == "in-loop":
    async def host():  # an async host (a notebook, a served app) calling the sync stage
        run()
    asyncio.run(host())
else:
    run()
"""

TASK_CHILD = """
import sys
from skipthink.config import PipelineConfig
from storage import Database
from tasks.runtime import StageContext, execute
from tasks.stages import REGISTRY
cfg = PipelineConfig.model_validate_json(sys.argv[1])
execute(REGISTRY["teacher"], StageContext(cfg, "teacher", "teacher", "teacher-fp", None, {"data": "data-fp"}, Database(cfg.storage.db_path)))
"""


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a job started in the background inherits


def _interrupt_mid_stage(argv, db, sig, server, inherit_ignored_sigint=False):
    child = subprocess.Popen([sys.executable, "-c", *argv], cwd=REPO, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_ignore_sigint if inherit_ignored_sigint else None)
    deadline = time.monotonic() + 60
    while server.stats["completions_ok"] < 20 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    before = db.count("teacher_requests")
    child.send_signal(sig)
    try:
        _, err = child.communicate(timeout=20)
    finally:
        child.kill()
    return child.returncode, err, before


@pytest.mark.parametrize("sig, path, ignored", [
    (signal.SIGINT, "direct", True),
    (signal.SIGTERM, "direct", False),
    (signal.SIGINT, "in-loop", False),
])
def test_signal_stops_sending_flushes_and_exits_non_zero(tmp_path, db, sig, path, ignored):
    """Fault: SIGINT or SIGTERM mid-stage, also when SIGINT was inherited as ignored (a background
    job) and when the stage runs beside a running event loop (the threaded path). Expected: the
    child stops sending at once, exits non-zero with TeacherInterrupted. Not lost: every response
    that arrived (at most the calls in flight are missing; a rerun sends exactly the rest)."""
    with start_server(EXACT, faults=ServerFaults(latency_ms=100)) as server:
        cfg = TeacherConfig(base_url=server.base_url, max_concurrency=4, flush_every=64, flush_interval_s=30)
        code, err, before = _interrupt_mid_stage([STAGE_CHILD, str(db.path), cfg.model_dump_json(), path, "25"], db, sig, server, ignored)
        saved, answered = db.count("teacher_requests"), server.stats["completions_ok"]
        time.sleep(0.3)
        assert server.stats["requests"] <= answered + cfg.max_concurrency  # nothing sent after the stop
        sent = server.request_count
        rerun = run_teacher_stage(synthetic_examples(25), cfg.model_copy(update={"max_concurrency": 32}), DuckDBRequestStore(db), "fp-signal")
        resent = server.request_count - sent
    assert code != 0 and "TeacherInterrupted" in err and f"interrupted by {signal.Signals(sig).name}" in err
    # flush_every=64 and a 30 s interval: rows were saved only by the flush on the signal.
    assert saved >= before and answered - saved <= cfg.max_concurrency
    assert resent == 200 - saved and rerun.failure is None


def test_sigint_inherited_as_ignored_marks_the_stage_failed(tmp_path):
    """Fault: SIGINT to the teacher task body started as a background job (SIGINT ignored).
    Expected: the stage_runs row is 'failed' naming TeacherInterrupted, no rationales are written,
    the process exits non-zero. Not lost: the responses that arrived."""
    with start_server(EXACT, faults=ServerFaults(latency_ms=100)) as server:
        cfg = pipeline_config(tmp_path, base_url=server.base_url, max_concurrency=4, flush_every=4)
        stage_with_examples(cfg, synthetic_examples(25))
        db = Database(cfg.storage.db_path)
        code, err, before = _interrupt_mid_stage([TASK_CHILD, cfg.model_dump_json()], db, signal.SIGINT, server, True)
    [row] = db.select("stage_runs", {"stage": "teacher"})
    assert code != 0 and row["status"] == "failed" and "TeacherInterrupted" in row["summary"]
    assert db.count("rationales") == 0 and db.count("teacher_requests") >= before > 0


# ---- item 14: redaction and the api_key_env rule -------------------------------------------------

def test_base_url_credentials_never_reach_stage_runs_prefect_parameters_or_reports(tmp_path):
    """Fault: credentials in base_url (userinfo and a query value). Expected: stage_runs (config and
    summary), the Prefect flow-run parameters and the stage summary hold the URL redacted, while the
    in-process config keeps what the client needs. Not lost: the endpoint's identity (host, path)."""
    from prefect import flow

    @flow
    def takes_a_config(config: PipelineConfig) -> None:  # the parameter of `distill`, serialised as Prefect does
        pass

    cfg = pipeline_config(tmp_path, base_url="https://admin:hunter2@teacher.example.com/v1?key=s3cret")
    params = json.dumps(takes_a_config.serialize_parameters({"config": cfg}))
    assert "hunter2" not in params and "s3cret" not in params
    assert "https://teacher.example.com/v1?key=REDACTED" in params
    assert validate_config(cfg).teacher.base_url == cfg.teacher.base_url  # the run itself still has it

    with start_server(EXACT) as server:
        port = server.base_url.split(":")[-1].split("/")[0]
        cfg = pipeline_config(tmp_path, base_url=f"http://admin:hunter2@127.0.0.1:{port}/v1")
        summary = stage_with_examples(cfg, synthetic_examples(1))()
    stored = json.dumps(Database(cfg.storage.db_path).select("stage_runs"), default=str)
    assert summary["endpoint_description"] == f"http://127.0.0.1:{port}/v1"
    assert "hunter2" not in stored + json.dumps(summary) and f"127.0.0.1:{port}/v1" in stored


def test_api_key_env_must_name_a_key_variable(monkeypatch):
    """Fault: a parameter naming an arbitrary environment variable (HOME, a database password) as
    the API key, which would send it to whatever base_url says. Expected: only *_API_KEY, *_TOKEN
    or names listed in SKIPTHINK_ALLOWED_KEY_VARS are accepted."""
    monkeypatch.delenv("SKIPTHINK_ALLOWED_KEY_VARS", raising=False)
    for ok in ("OPENAI_API_KEY", "HF_TOKEN"):
        assert TeacherConfig(api_key_env=ok).api_key_env == ok
    for bad in ("HOME", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "API_KEY", "not a name"):
        with pytest.raises(ValidationError, match="api_key_env"):
            TeacherConfig(api_key_env=bad)
    monkeypatch.setenv("SKIPTHINK_ALLOWED_KEY_VARS", "AZURE_OPENAI_KEY, OTHER_KEY")
    assert TeacherConfig(api_key_env="AZURE_OPENAI_KEY").api_key_env == "AZURE_OPENAI_KEY"


# ---- item 1 (storage): a request key is stored once ---------------------------------------------

def test_migration_dedupes_request_keys_and_keeps_the_first(tmp_path):
    """Fault: a v1 database where two concurrent runs stored the same key twice. Expected: opening
    it migrates to a unique key, keeping the first stored response; later saves of a stored key
    are ignored. Not lost: one response per key, the one runs already used."""
    path = tmp_path / "v1.duckdb"
    with duckdb.connect(str(path)) as con:
        for name in ("schema_version", "teacher_requests"):
            con.execute(f"CREATE TABLE {name} ({TABLES_V1[name]})")
        con.execute("INSERT INTO schema_version (version) VALUES (1)")
        con.execute("""INSERT INTO teacher_requests (key, response, created_at) VALUES
                       ('k1', 'first', TIMESTAMP '2026-01-01 10:00'), ('k1', 'second', TIMESTAMP '2026-01-01 10:01'),
                       ('k2', 'only', TIMESTAMP '2026-01-01 10:02')""")
    db = Database(path)
    store = DuckDBRequestStore(db)
    store.save_responses([{"key": "k1", "response": "third"}, {"key": "k3", "response": "new"}, {"key": "k3", "response": "dup"}])
    rows = {r["key"]: r["response"] for r in db.select("teacher_requests")}
    assert rows == {"k1": "first", "k2": "only", "k3": "new"} and db.count("teacher_requests") == 3
    assert "cost_usd" in {c["name"] for c in db.query("PRAGMA table_info('teacher_failures')")}


def test_two_concurrent_runs_store_each_request_once(tmp_path, db):
    """Fault: two processes run the same teacher stage at once on one database (without the
    stage lock both send). Expected: every request key is stored exactly once. Not lost: any key."""
    with start_server(EXACT) as server:
        cfg = TeacherConfig(base_url=server.base_url, max_concurrency=4, flush_every=4)
        children = [subprocess.Popen([sys.executable, "-c", STAGE_CHILD, str(db.path), cfg.model_dump_json(), "direct", "5"],
                                     cwd=REPO, stderr=subprocess.DEVNULL) for _ in range(2)]
        codes = [c.wait(timeout=120) for c in children]
        sent = server.request_count
    keys = [r["key"] for r in db.query("SELECT key FROM teacher_requests")]
    assert codes == [0, 0] and len(keys) == len(set(keys)) == 40 and sent > 40  # both sent; each key stored once
