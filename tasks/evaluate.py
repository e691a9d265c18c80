"""Stage `evaluate`: one trained method on the test split (and, for synthetic data with a
real data directory, on the matching real benchmark's test split)."""

from __future__ import annotations

from skipthink.datasets import load_examples
from skipthink.datasets.base import Example
from skipthink.config import FINETUNE_COT_DATASETS, DatasetConfig, PipelineConfig
from storage import Database, evaluation
from tasks.items import read_examples
from tasks.runtime import Progress, StageContext, StageSpec, log

CORE_METRICS = ("n", "accuracy", "mean_new_tokens", "latency_median_s", "throughput_qps")


def present(ctx: StageContext) -> bool:
    return evaluation.has_metrics(ctx.db, ctx.fp)


def test_sets(cfg: PipelineConfig, db: Database, data_fp: str) -> dict[str, list[Example]]:
    """The run's own split (`evaluation.split`: test, or val for tuning) and, when configured,
    `real` (Fine-tune-CoT's test split)."""
    split = cfg.evaluation.split
    sets = {split: read_examples(db, data_fp, (split,))}
    real_dir = cfg.evaluation.real_data_dir
    if real_dir is not None and cfg.dataset.source == "synthetic" and cfg.dataset.name in FINETUNE_COT_DATASETS:
        real = load_examples(DatasetConfig(name=cfg.dataset.name, source="finetune_cot", data_dir=real_dir, val_fraction=0.0))
        sets["real"] = [e for e in real if e.split == "test"]
    return sets


def run(ctx: StageContext) -> None:
    """Predict every test question; store predictions and accuracy / tokens / speed metrics."""
    # torch and transformers are imported only by a stage that computes (a cached rerun skips them)
    from skipthink.evaluation import evaluate
    from skipthink.student import load_student

    method, train_fp = ctx.method, ctx.inputs["train"]
    model, tokenizer = load_student(ctx.checkpoint("train"), device=ctx.cfg.student.device, precision=ctx.cfg.training.precision)
    predictions, metrics = [], []
    for test_set, examples in test_sets(ctx.cfg, ctx.db, ctx.inputs["data"]).items():
        if not examples:
            continue
        progress = Progress(f"evaluate-{method}-{test_set}-{ctx.fp}", f"evaluating {method} on {test_set}")
        result = evaluate(model, tokenizer, method, examples, ctx.cfg.evaluation, progress=progress)
        common = dict(train_fp=train_fp, method=method, dataset=ctx.cfg.dataset.name, test_set=test_set)
        predictions += [dict(p.to_row(), **common) for p in result.predictions]
        m = result.metrics
        core = {k: m[k] for k in CORE_METRICS}
        metrics.append(dict(common, **core, extra={k: v for k, v in m.items() if k not in core}))
        ctx.summary[test_set] = {k: round(v, 4) if isinstance(v, float) else v for k, v in core.items()}
    evaluation.write_results(ctx.db, ctx.fp, predictions, metrics)
    ctx.summary["method"] = method
    log().info("wrote %d rows to predictions and %d to metrics (evaluate_fp=%s, %s): %s", len(predictions), len(metrics), ctx.fp, method, ctx.summary)


SPEC = StageSpec(
    name="evaluate",
    version="2",
    section=lambda cfg, method: {"method": method, "evaluation": cfg.evaluation.model_dump(mode="json", exclude={"methods"})},
    inputs=lambda cfg, method: {"data": "data", "train": f"train:{method}"},
    present=present,
    run=run,
    instances=lambda cfg: list(cfg.evaluation.methods),
)
