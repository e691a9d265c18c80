"""The teacher stage against the built-in server over HTTP, with real DuckDB files."""

from __future__ import annotations

import json
import logging
import random

import pytest

from skipthink.datasets.base import Example
from skipthink.datasets.synthetic import coin_flip, last_letter_concatenation, multiarith, tracking_shuffled_objects
from skipthink.config import Price, SyntheticOptions, TeacherConfig, TeacherServerConfig
from skipthink.teacher_server import ServerFaults, start_server
from skipthink.teacher.stage import TeacherSetupError, run_teacher_stage
from storage.db import Database
from storage.teacher_store import DuckDBRequestStore

GENERATORS = {"coin_flip": (coin_flip, "yes_no"), "last_letter_concatenation": (last_letter_concatenation, "string"),
              "tracking_shuffled_objects": (tracking_shuffled_objects, "letter"), "multiarith": (multiarith, "number")}


def synthetic_examples(n_per_dataset: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for name, (module, answer_type) in GENERATORS.items():
        for i in range(n_per_dataset):
            g = module.generate_one(rng, SyntheticOptions())
            out.append(Example(name, "train", str(i), g.question, g.answer, answer_type))
    return out


@pytest.fixture
def store(tmp_path):
    return DuckDBRequestStore(Database(tmp_path / "skipthink.duckdb"))


def test_embedded_server_stage_filters_and_a_rerun_hits_the_cache(store):
    examples = synthetic_examples(10)
    cfg = TeacherConfig(n_completions=2, temperature=0.7, server=TeacherServerConfig(error_rate=0.3, seed=1))
    first = run_teacher_stage(examples, cfg, store, "fp-a")
    f = first.summary["filter"]
    assert f["requested"] == 80 and f["failed"] == 0
    assert 0 < f["incorrect"] < 80 and f["kept"] == 80 - f["incorrect"]
    # The scripted error model: a wrong step always gives a wrong answer, and only those are dropped.
    kept = [r for r in first.rationales if r["kept"]]
    assert all(r["correct"] for r in kept) and len(kept) == f["kept"]
    assert {r["completion_index"] for r in first.rationales} == {0, 1}
    assert first.rationales[0]["rationale"].startswith(" \n\n")
    assert first.summary["usage"]["calls"] == 40 + 80  # 40 rationale calls with n=2, 80 answer calls
    assert store.db.count("teacher_requests") == 160
    second = run_teacher_stage(examples, cfg, store, "fp-a")
    assert second.summary["usage"]["calls"] == 0 and second.summary["usage"]["cached"] == 160
    assert second.rationales == first.rationales


def test_rate_limits_and_server_errors_are_retried_and_nothing_is_stored_twice(store):
    faults = ServerFaults(rate_limit_fraction=0.2, retry_after_s=0.01, server_error_fraction=0.1, seed=3)
    with start_server(TeacherServerConfig(error_rate=0.0), faults=faults) as server:
        cfg = TeacherConfig(base_url=server.base_url, max_concurrency=16, max_retries=30, backoff_base_s=0.01, backoff_max_s=0.05)
        outcome = run_teacher_stage(synthetic_examples(15), cfg, store, "fp-faults")
        stats = server.stats
    assert outcome.summary["filter"]["failed"] == 0 and outcome.summary["complete"]
    assert stats["rate_limited"] > 0 and stats["server_errors"] > 0
    assert stats["completions_ok"] == 120 == outcome.summary["usage"]["calls"]
    rows = store.db.query("SELECT key, attempts FROM teacher_requests")
    assert len(rows) == len({r["key"] for r in rows}) == 120
    assert max(r["attempts"] for r in rows) > 1
    assert store.db.count("teacher_failures") == 0
    assert all(r["correct"] for r in outcome.rationales)


def test_hung_empty_and_malformed_answers_are_retried(store):
    faults = ServerFaults(hang_fraction=0.1, hang_s=3.0, empty_fraction=0.1, malformed_fraction=0.1, seed=5)
    with start_server(TeacherServerConfig(error_rate=0.0), faults=faults) as server:
        cfg = TeacherConfig(base_url=server.base_url, timeout_s=0.4, max_retries=30, backoff_base_s=0.01, backoff_max_s=0.05)
        outcome = run_teacher_stage(synthetic_examples(5), cfg, store, "fp-hang")
        stats = server.stats
    assert stats["hung"] > 0 and stats["empty"] > 0 and stats["malformed"] > 0
    assert outcome.summary["filter"] == {"requested": 20, "failed": 0, "truncated": 0, "incorrect": 0, "kept": 20}


def test_unknown_questions_and_exhausted_retries_become_failures(store):
    odd = Example("coin_flip", "train", "x", "What is the colour of the sky?", "blue", "string")
    with start_server(TeacherServerConfig(), faults=ServerFaults(server_error_fraction=1.0)) as broken:
        cfg = TeacherConfig(base_url=broken.base_url, max_retries=2, backoff_base_s=0.01)
        out = run_teacher_stage(synthetic_examples(1)[:1], cfg, store, "fp-fail")
    assert out.summary["filter"]["failed"] == 1 and not out.summary["complete"]
    failure = store.db.select("teacher_failures")[0]
    assert failure["attempts"] == 3 and failure["error_class"] == "InternalServerError"
    out = run_teacher_stage([odd], TeacherConfig(), store, "fp-fail2")
    failure = store.db.select("teacher_failures", {"teacher_fp": "fp-fail2"})[0]
    assert failure["attempts"] == 1 and failure["error_class"] == "BadRequestError" and "scripted teacher" in failure["message"]


def test_truncated_rationales_are_marked_and_can_be_dropped(store):
    cfg = TeacherConfig(max_tokens=12, drop_truncated=True)
    out = run_teacher_stage(synthetic_examples(2), cfg, store, "fp-trunc")
    assert out.summary["filter"]["truncated"] == 8 and out.summary["filter"]["kept"] == 0
    assert all(r["truncated"] and not r["kept"] for r in out.rationales)
    assert {r["finish_reason"] for r in store.db.query("SELECT finish_reason FROM teacher_requests WHERE step = 'rationale'")} == {"length"}


def test_budget_stops_gracefully_and_costs_are_accounted(store):
    prices = {"scripted-teacher": Price(input_per_mtok=1000.0, output_per_mtok=2000.0)}
    progress_calls = []
    cfg = TeacherConfig(prices=prices, max_cost_usd=0.5, max_concurrency=2)
    out = run_teacher_stage(synthetic_examples(10), cfg, store, "fp-budget", progress=lambda d, t, i: progress_calls.append((d, t, i)))
    assert out.summary["stopped"] == "budget" and not out.summary["complete"]
    spent = store.db.scalar("SELECT sum(cost_usd) FROM teacher_requests")
    assert 0.5 <= spent < 0.5 + 2 * 0.2  # stops at the budget, plus at most the calls in flight
    assert out.summary["usage"]["cost_usd"] == pytest.approx(spent, rel=1e-6)
    row = store.db.query("SELECT prompt_tokens, completion_tokens, cost_usd FROM teacher_requests LIMIT 1")[0]
    assert row["cost_usd"] == pytest.approx((row["prompt_tokens"] * 1000 + row["completion_tokens"] * 2000) / 1e6)
    assert progress_calls and progress_calls[-1][2]["cost_usd"] == pytest.approx(spent, rel=1e-3)


def test_one_step_few_shot_and_chat_templates(store, tmp_path):
    examples = synthetic_examples(3)
    exact = TeacherServerConfig(error_rate=0.0)
    one = run_teacher_stage(examples, TeacherConfig(prompt="zs_cot_one_step", endpoint="chat", server=exact), store, "fp-one")
    assert one.summary["usage"]["calls"] == 12 and one.summary["filter"]["kept"] == 12
    assert all("Therefore, the answer is" in r["rationale"] for r in one.rationales)
    exemplars = tmp_path / "exemplars.txt"
    exemplars.write_text('Q: A coin is heads up. Ann flips the coin. Is the coin still heads up? Note that "flip" here means "reverse".\n'
                         "A: Ann flips the coin, so it is tails up. The answer is no.\n")
    few = run_teacher_stage(examples, TeacherConfig(prompt="few_shot", few_shot_file=exemplars, server=exact), store, "fp-few")
    assert few.summary["template_version"].startswith("few_shot/v1+") and few.summary["filter"]["kept"] == 12
    assert all(r["rationale"].rstrip().endswith(".") and "\n" not in r["rationale"] for r in few.rationales)
    versions = {r["template_version"] for r in store.db.query("SELECT DISTINCT template_version FROM teacher_requests")}
    assert versions == {"zs_cot_one_step/v1", few.summary["template_version"]}


def test_dataset_rationales_need_no_api_call(store):
    ex = Example("multiarith", "train", "0", "Ann had 3 apples and got 4 more. How many?", "7", "number",
                 rationales=("Ann has 3 + 4 = 7 apples. Therefore, the answer is 7.", "3 + 4 = 8. So the answer is 8."))
    cfg = TeacherConfig(source="dataset", base_url="http://10.255.255.1:9/v1")  # unreachable: must not be used
    out = run_teacher_stage([ex], cfg, store, "fp-ds")
    assert [(r["predicted"], r["correct"], r["kept"]) for r in out.rationales] == [("7", True, True), ("8", False, False)]
    assert out.summary["filter"] == {"requested": 2, "failed": 0, "truncated": 0, "incorrect": 1, "kept": 1}
    assert store.db.count("teacher_requests") == 0


def test_remote_endpoint_without_key_fails_before_any_request(store, monkeypatch):
    monkeypatch.delenv("SKIPTHINK_TEST_API_KEY", raising=False)
    cfg = TeacherConfig(base_url="https://api.example.com/v1", api_key_env="SKIPTHINK_TEST_API_KEY")
    with pytest.raises(TeacherSetupError, match="SKIPTHINK_TEST_API_KEY"):
        run_teacher_stage(synthetic_examples(1), cfg, store, "fp-nokey")
    assert store.db.count("teacher_requests") == 0 and store.db.count("teacher_failures") == 0


def test_api_key_never_leaks(store, monkeypatch, caplog, capfd):
    canary = "sk-canary-5f3a9c7e1d2b4a6f"
    monkeypatch.setenv("SKIPTHINK_TEST_API_KEY", canary)
    caplog.set_level(logging.DEBUG)
    with start_server(TeacherServerConfig(), faults=ServerFaults(server_error_fraction=0.3, seed=2)) as server:
        cfg = TeacherConfig(base_url=server.base_url, api_key_env="SKIPTHINK_TEST_API_KEY", backoff_base_s=0.01, max_retries=1)
        out = run_teacher_stage(synthetic_examples(3), cfg, store, "fp-secret")
    captured = capfd.readouterr()
    assert out.summary["usage"]["calls"] > 0
    assert canary not in json.dumps(out.summary) + json.dumps(out.rationales, default=str)
    assert canary not in caplog.text + captured.out + captured.err
    assert canary.encode() not in store.db.path.read_bytes()
    assert canary not in json.dumps(store.db.select("teacher_failures"), default=str)


def test_per_run_files_reuse_what_another_run_paid_for(tmp_path):
    from storage.layout import other_run_databases

    examples = synthetic_examples(5)
    cfg = TeacherConfig(server=TeacherServerConfig(error_rate=0.2, seed=1))
    first = DuckDBRequestStore(Database(tmp_path / "db" / "run-a.duckdb"))
    a = run_teacher_stage(examples, cfg, first, "fp")
    paid = a.summary["usage"]["calls"]
    assert paid == 40 and first.db.count("teacher_requests") == 40

    own = Database(tmp_path / "db" / "run-b.duckdb")
    others = other_run_databases(tmp_path, own.path)
    assert others == [first.db.path]
    b = run_teacher_stage(examples, cfg, DuckDBRequestStore(own, others), "fp")
    assert b.summary["usage"]["calls"] == 0 and b.summary["usage"]["cached"] == 40
    assert b.rationales == a.rationales
    # Copied into this run's own file: it stands alone, and the other file is untouched.
    assert own.count("teacher_requests") == 40 and first.db.count("teacher_requests") == 40

    # A question no run has asked is still sent (and only it).
    more = examples + synthetic_examples(1, seed=9)
    c = run_teacher_stage(more, cfg, DuckDBRequestStore(own, others), "fp")
    assert c.summary["usage"]["calls"] == 8 and own.count("teacher_requests") == 48
