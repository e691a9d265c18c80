"""Past runs read back from a real DuckDB file: prefix lookup, `skipthink runs`, and the
report's examples drawn from stored predictions and skip samples."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from flows.cli_pipeline import render_runs
from storage import Database
from storage import skips
from storage.runs import find_report, inputs_of, unfinished_runs
from tasks.report import natural_key, question_examples, skip_examples

METHODS = ("ft", "cwt-sbc", "stt")


def stage(fp, name, upstream, run_name="r1", status="completed", summary=None, minute=0):
    return {
        "fp": fp, "stage": name, "run_name": run_name, "status": status, "upstream": json.dumps(upstream),
        "summary": json.dumps(summary or {}), "started_at": datetime(2026, 12, 1, 10, minute), "finished_at": datetime(2026, 12, 1, 10, minute, 30),
    }


@pytest.fixture
def db(tmp_path):
    db = Database(tmp_path / "s.duckdb")
    evals = {m: f"ev-{m}" for m in METHODS}
    rows = [
        stage("d1", "data", {}),
        stage("t1", "teacher", {"data": "d1"}),
        stage("c1", "chunk", {"data": "d1", "teacher": "t1"}),
        *(stage(f"tr-{m}", "train", {"data": "d1", "teacher": "t1", "chunk": "c1"}) for m in ("ft", "cwt-sbc")),
        stage("sk1", "skipdata", {"data": "d1", "teacher": "t1", "chunk": "c1", "base": "tr-cwt-sbc"}),
        stage("tr-stt", "train", {"data": "d1", "teacher": "t1", "chunk": "c1", "base": "tr-cwt-sbc", "skipdata": "sk1"}),
        *(stage(evals[m], "evaluate", {"data": "d1", "train": f"tr-{m}"}) for m in METHODS),
        stage("abc123", "report", {f"evaluate:{m}": evals[m] for m in METHODS}, minute=5, summary={
            "dataset": "coin_flip", "preset": "smoke", "report_path": "/r/abc123/report.md", "evals": evals,
            "methods": {"ft": {"accuracy": 75.0}, "cwt-sbc": {"accuracy": 80.0}, "stt": {"accuracy": 70.5}}}),
        stage("abd999", "report", {}, run_name="r2", minute=7, summary={"dataset": "multiarith", "report_path": "/r/abd999/report.md", "methods": {}}),
        stage("x1", "train", {}, run_name="broken", status="failed", minute=9),
    ]
    db.insert("stage_runs", rows)
    db.insert("examples", [
        {"data_fp": "d1", "dataset": "coin_flip", "split": s, "sample_id": f"{s}-{i}", "question": f"question {s} {i}?", "answer": "yes", "answer_type": "yes_no"}
        for s in ("test", "train") for i in (0, 1, 2, 10)
    ])
    db.insert("predictions", [
        {"evaluate_fp": evals[m], "method": m, "test_set": "test", "sample_id": f"test-{i}", "output": f" {m} says {i} --> yes",
         "predicted": "yes", "gold": "yes", "correct": (m != "stt" or i != 1)}
        for m in METHODS for i in (0, 1, 2, 10)
    ])
    rationale = "First step. Second step. Third step."
    db.insert("rationales", [
        {"teacher_fp": "t1", "dataset": "coin_flip", "sample_id": f"train-{i}", "completion_index": 0, "rationale": rationale, "kept": True}
        for i in (0, 1, 2, 10)
    ])
    db.insert("chunkings", [
        {"train_fp": "tr-cwt-sbc", "epoch": 1, "sample_id": f"train-{i}", "completion_index": 0, "boundaries": "[1, 2]", "kind": "final"} for i in (0, 1, 2, 10)
    ])
    db.insert("skip_samples", [
        {"skipdata_fp": "sk1", "train_fp": "tr-cwt-sbc", "sample_id": f"train-{i}", "completion_index": 0, "split": "train",
         "skip_mask": json.dumps([False, i == 10, False]), "n_skipped": int(i == 10), "checks": 1, "baseline_correct": True} for i in (0, 1, 2, 10)
    ])
    return db


def test_inputs_of_a_stage_run(db):
    assert inputs_of(db, "train", "tr-stt") == {"data": "d1", "teacher": "t1", "chunk": "c1", "base": "tr-cwt-sbc", "skipdata": "sk1"}
    assert inputs_of(db, "train", "nope") == {}


def test_find_report_by_prefix_or_name(db):
    assert find_report(db, "abc").fp == "abc123"
    assert find_report(db, "r2").fp == "abd999"  # a run name
    assert find_report(db).fp == "abd999"  # the most recent
    with pytest.raises(LookupError, match="matches 2 runs"):
        find_report(db, "ab")
    with pytest.raises(LookupError, match="no finished run 'zz'"):
        find_report(db, "zz")


def test_runs_listing_has_accuracies_and_unfinished_runs(db):
    assert [r.run_name for r in unfinished_runs(db)] == ["broken"]
    lines = render_runs(db, limit=10).splitlines()
    assert lines[0].split()[:6] == ["run", "name", "dataset", "preset", "when", "status"]
    assert lines[1].split()[:2] == ["–", "broken"] and "failed at train" in lines[1]
    first = next(line for line in lines if line.startswith("abc123"))  # the preset is recorded by the report stage
    assert first.split() == ["abc123", "r1", "coin_flip", "smoke", "2026-12-01", "10:05", "completed", "–", "75.0", "–", "80.0", "70.5", "–", "/r/abc123/report.md"]


def test_examples_are_the_first_questions_in_natural_order(db):
    evals = {m: f"ev-{m}" for m in METHODS}
    examples, correctness = question_examples(db, evals, "d1")
    assert [e.sample_id for e in examples] == ["test-0", "test-1", "test-2"]
    assert examples[1].question == "question test 1?" and examples[1].gold == "yes"
    assert examples[1].outputs["stt"].output == " stt says 1 --> yes" and not examples[1].outputs["stt"].correct
    assert correctness["stt"] == {"test-0": True, "test-1": False, "test-2": True, "test-10": True}
    assert sorted(["a-10", "a-2", "a-1"], key=natural_key) == ["a-1", "a-2", "a-10"]


def test_skip_examples_put_skipped_items_first_with_their_chunks(db):
    items = skip_examples(db, skips.samples(db, "sk1"), "tr-cwt-sbc", num_chunks=3)
    assert [i.sample_id for i in items] == ["train-10", "train-0", "train-1"]
    assert list(items[0].chunks) == ["First step.", "Second step.", "Third step."]
    assert list(items[0].skip_mask) == [False, True, False] and items[0].question == "question train 10?"
