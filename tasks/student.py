"""Stage `student`: the initial student every method starts from (same weights, same tokenizer).

For a scratch student this trains the tokenizer on the run's own training text and draws the
seeded initial weights once; CWT and STT both load this directory, which is how STT gets "the
same initial weights as CWT, not the CWT checkpoint".
"""

from __future__ import annotations

import shutil
from pathlib import Path

from storage import examples, stage_runs
from tasks.runtime import StageContext, StageSpec, log


def present(ctx: StageContext) -> bool:
    path = Path(stage_runs.completed_summary(ctx.db, "student", ctx.fp)["path"])
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def run(ctx: StageContext) -> None:
    """Build (and save) the initial student and tokenizer."""
    # torch and transformers are imported only by a stage that computes (a cached rerun skips them)
    from skipthink.student import build_initial_student

    rows = examples.kept_rationales(ctx.db, ctx.inputs["teacher"], ctx.inputs["data"])
    texts = [t for r in rows for t in (r["question"], r["rationale"], r["answer"])]
    out = ctx.home("students") / ctx.fp
    shutil.rmtree(out, ignore_errors=True)
    path = build_initial_student(ctx.cfg.student, texts, ctx.num_chunks, out)
    ctx.summary.update(path=str(path), texts=len(texts), num_chunks=ctx.num_chunks)
    log().info("initial student saved to %s", path)


SPEC = StageSpec(
    name="student",
    version="3",
    section=lambda cfg, method: cfg.student.model_dump(mode="json"),
    inputs=lambda cfg, method: {"data": "data", "teacher": "teacher", "chunk": "chunk"},
    present=present,
    run=run,
)
