"""Stage `chunk`: rationales -> steps -> M, and the initial (average) chunking of every item.

`chunking.num_chunks: auto` is resolved here, from the kept *training* rationales' step counts,
and recorded in the summary (`num_chunks`); every later stage reads M from there. Rows go to
`chunkings` under this stage's fingerprint at epoch 0.
"""

from __future__ import annotations

from skipthink.config import PipelineConfig, auto_num_chunks
from skipthink.text import split_steps
from storage import chunkings, examples
from tasks.items import build_items
from tasks.runtime import StageContext, StageSpec, log


def section(cfg: PipelineConfig, method=None) -> dict:
    return {"num_chunks": cfg.chunking.num_chunks}


def present(ctx: StageContext) -> bool:
    return chunkings.has_initial(ctx.db, ctx.fp)


def run(ctx: StageContext) -> None:
    """Resolve M, split every kept rationale into steps and average-chunk it into M chunks."""
    rows = examples.kept_rationales(ctx.db, ctx.inputs["teacher"], ctx.inputs["data"])
    setting = ctx.cfg.chunking.num_chunks
    step_counts = [len(split_steps(r["rationale"])) for r in rows if r["split"] == "train"]
    m = auto_num_chunks(step_counts) if setting == "auto" else int(setting)
    items, dropped = build_items(rows, m)
    out = [
        dict(sample_id=it.sample_id, completion_index=it.completion_index, boundaries=list(it.chunk_boundaries(m)), score=None, moves=0)
        for split_items in items.values()
        for it in split_items
    ]
    if not out:
        raise RuntimeError(f"chunk: no rationale could be split into {m} chunks ({len(dropped)} dropped); lower chunking.num_chunks")
    chunkings.write_initial(ctx.db, ctx.fp, out)
    mean_steps = sum(step_counts) / len(step_counts) if step_counts else None
    ctx.summary.update(
        num_chunks=m, num_chunks_setting=setting, mean_train_steps=mean_steps and round(mean_steps, 3),
        train=len(items["train"]), val=len(items["val"]), dropped_too_short=len(dropped),
    )
    log().info("M=%d (%s; mean %.2f steps); wrote %d rows to chunkings (chunk_fp=%s); %d rationales too short", m, setting, mean_steps or 0, len(out), ctx.fp, len(dropped))


SPEC = StageSpec(
    name="chunk",
    version="2",
    section=section,
    inputs=lambda cfg, method: {"data": "data", "teacher": "teacher"},
    present=present,
    run=run,
)
