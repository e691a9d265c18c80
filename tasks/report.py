"""Stage `report`: the six-method table with intervals, examples, figures and Prefect artifacts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from skipthink.config import PRESETS, ConfigError, PipelineConfig, load_config
from skipthink.formats import THOUGHT
from skipthink.report import MethodOutput, QuestionExample, SkipExample, embed_figures, render_table, write_report
from storage import Database, evaluation, runs, skips, stage_runs, training
from tasks.items import final_items
from tasks.runtime import StageContext, StageSpec, log

# Fixed per dataset: the first test questions (and skip-data items) in sample-id order, so
# reports of different runs on the same data show the same questions.
EXAMPLE_QUESTIONS = 3
SKIP_EXAMPLES = 3


def inputs(cfg: PipelineConfig, method=None) -> dict[str, str]:
    out = {"chunk": "chunk"}
    for m in cfg.evaluation.methods:
        out[f"evaluate:{m}"] = f"evaluate:{m}"
        out[f"train:{m}"] = f"train:{m}"
    if "stt" in cfg.evaluation.methods:
        out["skipdata"] = "skipdata"
    return out


def present(ctx: StageContext) -> bool:
    summary = stage_runs.completed_summary(ctx.db, "report", ctx.fp)
    return Path(summary["report_path"]).is_file()


def natural_key(sample_id: str) -> tuple:
    """`test-2` before `test-10`."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", sample_id))


def question_examples(db: Database, evals: dict[str, str], data_fp: Optional[str]) -> tuple[list[QuestionExample], dict[str, dict[str, bool]]]:
    """The first test questions every method answered, with each method's output; and every
    method's per-question correctness (for the paired comparisons)."""
    by_question: dict[str, dict[str, dict]] = {}
    correctness: dict[str, dict[str, bool]] = {}
    for row in evaluation.predictions(db, list(evals.values())):
        by_question.setdefault(row["sample_id"], {})[row["method"]] = row
        correctness.setdefault(row["method"], {})[row["sample_id"]] = bool(row["correct"])
    chosen = sorted((q for q, ms in by_question.items() if set(evals) <= set(ms)), key=natural_key)[:EXAMPLE_QUESTIONS]
    texts = runs.questions(db, data_fp, chosen) if data_fp else {}
    examples = [
        QuestionExample(
            sample_id=q,
            question=texts.get(q, ""),
            gold=next(iter(by_question[q].values()))["gold"] or "",
            outputs={m: MethodOutput(r["output"] or "", r["predicted"], bool(r["correct"])) for m, r in by_question[q].items()},
        )
        for q in chosen
    ]
    return examples, correctness


def skip_examples(db: Database, samples: list[dict], cwt_fp: str, num_chunks: int) -> list[SkipExample]:
    """A few skip samples, those with a skipped chunk first, with their chunks as STT trains on them."""
    sources = runs.inputs_of(db, "train", cwt_fp)
    if not samples or not {"data", "teacher"} <= set(sources):
        return []
    chosen = sorted(samples, key=lambda s: (not any(s["skip_mask"]), natural_key(s["sample_id"]), s["completion_index"]))[:SKIP_EXAMPLES]
    items = {it.key: it for it in final_items(db, sources["data"], sources["teacher"], cwt_fp, num_chunks)["train"]}
    return [
        SkipExample(s["sample_id"], item.question, item.chunks(num_chunks), s["skip_mask"], item.answer)
        for s in chosen
        if (item := items.get((s["sample_id"], s["completion_index"]))) is not None
    ]


def nearest_preset(cfg: PipelineConfig) -> str:
    """The preset this config is closest to, with how many fields differ: `smoke`, `demo+3`.
    (A config does not remember its preset; this is what a reader of `skipthink runs` wants.)"""

    def leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(tree, dict):
            return {k: v for key, sub in tree.items() for k, v in leaves(sub, f"{prefix}{key}.").items()}
        return {prefix.rstrip("."): tree}

    mine = leaves(cfg.model_dump(mode="json", exclude={"run_name", "storage"}))
    best: Optional[tuple[int, str]] = None
    for name in PRESETS:
        try:
            theirs = leaves(load_config(name).model_dump(mode="json", exclude={"run_name", "storage"}))
        except ConfigError:
            continue
        diff = sum(mine.get(k) != theirs.get(k) for k in set(mine) | set(theirs))
        best = min(best or (diff, name), (diff, name))
    if best is None:
        return "custom"
    return best[1] if best[0] == 0 else f"{best[1]}+{best[0]}"


def gather(db: Database, evals: dict[str, str], train_runs: dict[str, str], skipdata_fp: Optional[str], num_chunks: int) -> dict[str, Any]:
    """Everything the report draws, read from the database."""
    from skipthink.skipdata import skip_rates  # imports torch: only when the report is computed

    rows = evaluation.metrics(db, list(evals.values()))
    dataset = rows[0]["dataset"] if rows else "dataset"
    rates: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    skip_items: list[SkipExample] = []
    skip_note: Optional[str] = None
    if skipdata_fp:
        samples = [s for s in skips.samples(db, skipdata_fp) if s["baseline_correct"] and s["split"] == "train"]
        rates[dataset] = skip_rates([s["skip_mask"] for s in samples], num_chunks)
        counts[dataset] = len(samples)
        if "cwt-sbc" in train_runs:
            skip_items = skip_examples(db, samples, train_runs["cwt-sbc"], num_chunks)
        if not samples:
            skip_note = "No training item passed the baseline check (the CWT-SBC student, given every chunk, answered none correctly), so STT had no skip samples to learn from."
    data_fp = next((runs.inputs_of(db, "train", fp).get("data") for fp in train_runs.values()), None)
    examples, correctness = question_examples(db, evals, data_fp)
    curves = {method: training.loss_curve(db, fp) for method, fp in train_runs.items()}
    return {
        "rows": rows, "skip_rates": rates, "skip_samples": counts, "loss_curves": curves,
        "correctness": correctness, "examples": examples, "skip_examples": skip_items, "skip_note": skip_note,
    }


def build(db: Database, out_dir: Path, report_id: str, dataset: str, evals: dict, train_runs: dict, skipdata_fp: Optional[str], num_chunks: int) -> dict[str, Any]:
    from skipthink.evaluation import method_summary  # imports torch: only when the report is computed

    data = gather(db, evals, train_runs, skipdata_fp, num_chunks)
    paths = write_report(
        out_dir, report_id, data["rows"], data["skip_rates"], data["loss_curves"],
        skip_samples=data["skip_samples"], correctness=data["correctness"], examples=data["examples"],
        skip_examples=data["skip_examples"], skip_note=data["skip_note"],
    )
    methods = method_summary(data["rows"])
    # Whether a skipping method skips at all: the share of its outputs with a `[thought]` placeholder.
    skipping = evaluation.share_containing(db, list(evals.values()), THOUGHT)
    for method, fp in evals.items():
        if method in methods and fp in skipping:
            methods[method]["skipping_share"] = round(skipping[fp], 2)
    for method, fp in train_runs.items():  # what each student cost: its size and training time
        run = training.completed_run(db, fp)
        if method in methods and run is not None:
            methods[method].update(n_params=run["n_params"], train_minutes=round((run["train_seconds"] or 0.0) / 60, 2))
    return {
        "run": report_id,
        "dataset": dataset,
        "methods": methods,
        "table": render_table(data["rows"]),
        "report_path": str(paths["markdown"]),
        "files": {k: str(v) for k, v in paths.items()},
        "rows": data["rows"],
    }


def publish(result: dict[str, Any]) -> None:
    """Markdown (figures embedded, so the UI shows them) and table artifacts on the flow run;
    a no-op outside a run."""
    try:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        figures = {k: Path(v) for k, v in result["files"].items() if k != "markdown"}
        markdown = embed_figures(Path(result["report_path"]).read_text(), figures)
        create_markdown_artifact(markdown, key="skipthink-report", description=f"skipthink report {result['run']} ({result['report_path']})")
        create_table_artifact(result["rows"], key="skipthink-metrics", description=f"metrics of run {result['run']}")
    except Exception as e:
        log().debug("artifacts not published: %s", e)


def run(ctx: StageContext) -> None:
    """Write report.md + PNG figures, publish them as artifacts, keep the method summary."""
    methods = ctx.cfg.evaluation.methods
    evals = {m: ctx.inputs[f"evaluate:{m}"] for m in methods}
    train_runs = {m: ctx.inputs[f"train:{m}"] for m in methods}
    out_dir = ctx.home("reports") / f"{_slug(ctx.cfg.run_name)}-{ctx.fp}"
    result = build(ctx.db, out_dir, ctx.fp, ctx.cfg.dataset.name, evals, train_runs, ctx.inputs.get("skipdata"), ctx.num_chunks)
    publish(result)
    ctx.summary.update({k: v for k, v in result.items() if k != "rows"})
    ctx.summary.update(evals=evals, runs=train_runs, skipdata_fp=ctx.inputs.get("skipdata"), num_chunks=ctx.num_chunks, preset=nearest_preset(ctx.cfg))
    log().info("report written to %s", result["report_path"])


def rebuild_report(db: Database, run: Optional[str] = None, out_dir: Optional[Path] = None) -> dict[str, Any]:
    """Re-render a finished run's report from the database (`skipthink report [RUN]`): RUN is a
    report fingerprint prefix or a run name; None = the most recent run."""
    record = runs.find_report(db, run)
    s = record.summary
    target = Path(out_dir) if out_dir else Path(s["report_path"]).parent
    return build(db, target, record.fp, s["dataset"], s["evals"], s["runs"], s.get("skipdata_fp"), s["num_chunks"])


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:80]


SPEC = StageSpec(
    name="report",
    version="4",  # v4: intervals, paired comparisons, examples, embedded figures
    section=lambda cfg, method: {"run_name": cfg.run_name, "methods": list(cfg.evaluation.methods)},
    inputs=inputs,
    present=present,
    run=run,
)
