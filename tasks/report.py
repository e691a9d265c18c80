"""Stage `report`: the six-method table, figures and Prefect artifacts of one pipeline run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from skipthink.config import METHODS, PipelineConfig
from skipthink.evaluation import ratio
from skipthink.report import render_table, write_report
from skipthink.skipdata import skip_rates
from storage import Database
from tasks.runtime import completed_summary, home_dir, log, open_db, stage_run, stage_task

METRIC_COLUMNS = ("method", "dataset", "test_set", "n", "accuracy", "mean_new_tokens", "latency_median_s", "throughput_qps")


def present(db: Database, fp: str) -> bool:
    summary = completed_summary(db, "report", fp)
    return summary is not None and Path(summary["report_path"]).is_file()


def gather(db: Database, evals: dict[str, str], runs: dict[str, str], skip_fp: Optional[str], num_chunks: int) -> dict[str, Any]:
    """Everything the report draws, read from the database."""
    rows = db.query(f"SELECT {', '.join(METRIC_COLUMNS)} FROM metrics WHERE eval_fp IN ({', '.join('?' for _ in evals)})", list(evals.values()))
    rates: dict[str, list[float]] = {}
    if skip_fp:
        masks = [json.loads(r["skip_mask"]) for r in db.select("skip_samples", {"skip_fp": skip_fp})]
        dataset = rows[0]["dataset"] if rows else "dataset"
        rates[dataset] = skip_rates(masks, num_chunks)
    curves = {}
    for method, run_id in runs.items():
        log_rows = db.query("SELECT step, loss FROM train_log WHERE run_id = ? AND kind = 'train' AND loss IS NOT NULL ORDER BY step", [run_id])
        curves[method] = [(r["step"], r["loss"]) for r in log_rows]
    return {"rows": rows, "skip_rates": rates, "loss_curves": curves}


def method_summary(rows: list[dict]) -> dict[str, dict[str, Optional[float]]]:
    """Per method on the run's own test split: accuracy, mean new tokens, speedup vs FT (batch-1
    wall clock) and the generated-token ratio vs FT; plus accuracy on the real benchmark's test
    split when the run evaluated on one."""
    own = {r["method"]: r for r in sorted(rows, key=lambda r: METHODS.index(r["method"])) if r["test_set"] in (None, "test")}
    real = {r["method"]: r for r in rows if r["test_set"] == "real"}
    ft = own.get("ft", {})
    out = {}
    for method, r in own.items():
        speed = ratio(ft.get("latency_median_s"), r["latency_median_s"])
        tokens = ratio(ft.get("mean_new_tokens"), r["mean_new_tokens"])
        out[method] = {
            "accuracy": round(r["accuracy"], 2),
            "mean_new_tokens": round(r["mean_new_tokens"], 2),
            "speedup_vs_ft": None if speed is None else round(speed, 3),
            "tokens_vs_ft": None if tokens is None else round(tokens, 3),
            "real_accuracy": round(real[method]["accuracy"], 2) if method in real else None,
        }
    return out


def build(db: Database, out_dir: Path, report_id: str, dataset: str, evals: dict, runs: dict, skip_fp: Optional[str], num_chunks: int) -> dict[str, Any]:
    data = gather(db, evals, runs, skip_fp, num_chunks)
    paths = write_report(out_dir, report_id, data["rows"], data["skip_rates"], data["loss_curves"])
    return {
        "run": report_id,
        "dataset": dataset,
        "methods": method_summary(data["rows"]),
        "table": render_table(data["rows"]),
        "report_path": str(paths["markdown"]),
        "files": {k: str(v) for k, v in paths.items()},
        "rows": data["rows"],
    }


def publish(result: dict[str, Any]) -> None:
    """Markdown and table artifacts on the flow run (no-op outside a run)."""
    try:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        create_markdown_artifact(Path(result["report_path"]).read_text(), key="skipthink-report", description=f"skipthink report {result['run']}")
        create_table_artifact(result["rows"], key="skipthink-metrics", description=f"metrics of run {result['run']}")
    except Exception as e:
        log().debug("artifacts not published: %s", e)


@stage_task("report")
def report_stage(cfg: PipelineConfig, fp: str, upstream: dict[str, str], evals: dict[str, str], runs: dict[str, str], skip_fp: Optional[str]) -> dict:
    """Write report.md + PNG figures, publish them as artifacts, return the method summary."""
    db = open_db(cfg)
    section = {"run_name": cfg.run_name, "methods": list(evals)}
    with stage_run(db, cfg, "report", fp, section, upstream) as run:
        out_dir = home_dir(cfg, "reports") / f"{_slug(cfg.run_name)}-{fp}"
        result = build(db, out_dir, fp, cfg.dataset.name, evals, runs, skip_fp, cfg.chunking.num_chunks)
        publish(result)
        run.summary.update({k: v for k, v in result.items() if k != "rows"})
        run.summary.update(evals=evals, runs=runs, skip_fp=skip_fp, num_chunks=cfg.chunking.num_chunks)
        log().info("report written to %s", result["report_path"])
    return dict(run.summary)


def rebuild_report(db: Database, report_id: Optional[str] = None, out_dir: Optional[Path] = None) -> dict[str, Any]:
    """Re-render a finished run's report from the database (`skipthink report`)."""
    sql = "SELECT fingerprint, summary FROM stage_runs WHERE stage = 'report' AND status = 'completed'"
    params: list[Any] = []
    if report_id:
        sql += " AND fingerprint = ?"
        params.append(report_id)
    rows = db.query(sql + " ORDER BY finished_at DESC LIMIT 1", params)
    if not rows:
        raise LookupError(f"no finished run {report_id!r} in {db.path}" if report_id else f"no finished run in {db.path}")
    s = json.loads(rows[0]["summary"])
    target = Path(out_dir) if out_dir else Path(s["report_path"]).parent
    return build(db, target, rows[0]["fingerprint"], s["dataset"], s["evals"], s["runs"], s.get("skip_fp"), s["num_chunks"])


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:80]
