"""`skipthink bench latency`: find a finished run's trained students and test questions in its
home's database, then time them side by side (skipthink.perf.latency)."""

from __future__ import annotations

from typing import Sequence

from storage import evaluation, runs, training
from storage.readview import ReadView


def _students(db: ReadView, record: runs.StageRecord, methods: Sequence[str]) -> dict[str, dict]:
    """method -> {evaluate_fp, checkpoint, data_fp, max_new_tokens, stage_latency_s} for a finished run."""
    evals, trains = record.summary.get("evals", {}), record.summary.get("runs", {})
    missing = [m for m in methods if m not in evals or m not in trains]
    if missing:
        raise LookupError(f"run {record.fp} ({record.run_name}) did not train and evaluate {', '.join(missing)}; it has {', '.join(evals) or 'none'}")
    out = {}
    for m in methods:
        done = training.completed_run(db, trains[m])
        if done is None:
            raise LookupError(f"run {record.fp}: no completed training {trains[m]} for {m}")
        cfg = runs.config_of(db, "evaluate", evals[m]).get("evaluation", {})
        stage = [r for r in evaluation.metrics(db, [evals[m]]) if r["test_set"] == "test"]
        out[m] = {"evaluate_fp": evals[m], "checkpoint": done["checkpoint_path"], "data_fp": runs.inputs_of(db, "evaluate", evals[m]).get("data"),
                  "max_new_tokens": cfg.get("max_new_tokens"), "stage_latency_s": stage[0]["latency_median_s"] if stage else None}
    return out


def _questions(db: ReadView, evaluate_fp: str, data_fp: str, n: int) -> list[str]:
    """The first `n` test questions the run evaluated (by sample id, as the evaluate stage's order)."""
    ids = sorted({r["sample_id"] for r in evaluation.predictions(db, [evaluate_fp])}, key=lambda s: (len(s), s))[:n]
    text = runs.questions(db, data_fp, ids)
    return [text[i] for i in ids if i in text]


def bench_latency(db: ReadView, run: str | None, methods: Sequence[str], questions: int, repeats: int, threads: int, precision: str) -> dict:
    import torch

    from skipthink.inference import method_prompt
    from skipthink.perf.latency import summarise, time_side_by_side
    from skipthink.student import load_student

    record = runs.find_report(db, run)
    found = _students(db, record, methods)
    baseline = methods[0]
    qs = _questions(db, found[baseline]["evaluate_fp"], found[baseline]["data_fp"], questions)
    if not qs:
        raise LookupError(f"run {record.fp}: no test questions found for {baseline}")
    torch.set_num_threads(threads)
    students = {m: load_student(f["checkpoint"], device="cpu", precision=precision) for m, f in found.items()}
    max_new = max(f["max_new_tokens"] or 0 for f in found.values()) or 256
    timings = time_side_by_side(students, {m: [method_prompt(m, q) for q in qs] for m in methods}, max_new_tokens=max_new, repeats=repeats)
    result = summarise(timings, baseline=baseline)
    # The evaluate stage's own figure, for comparison: each method timed alone, in its own stage.
    stage = {m: f["stage_latency_s"] for m, f in found.items()}
    for m, v in result[f"vs_{baseline}"].items():
        v["evaluate_stage_latency_ratio"] = round(stage[baseline] / stage[m], 3) if stage[baseline] and stage[m] else None
    return {"benchmark": "latency", "run": record.fp, "run_name": record.run_name, "dataset": record.summary.get("dataset"),
            "questions": len(qs), "repeats": repeats, "torch_threads": torch.get_num_threads(), "max_new_tokens": max_new,
            "dtype": str(next(iter(students.values()))[0].dtype).removeprefix("torch."), **result}
