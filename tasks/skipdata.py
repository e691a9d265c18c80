"""Stage `skipdata`: which chunks the converged CWT-SBC student can do without, per item.

Train and validation items both get skip samples (STT selects its epoch on validation, in
its own format). Items the student gets wrong with nothing removed fail the baseline check
and yield no skip sample.
"""

from __future__ import annotations

from storage import examples, skips
from tasks.items import final_items
from tasks.runtime import Progress, StageContext, StageSpec, log


def present(ctx: StageContext) -> bool:
    return skips.has_samples(ctx.db, ctx.fp)


def run(ctx: StageContext) -> None:
    """One skip sample per train/val item, checked with the CWT-SBC student and its final chunking."""
    # torch and transformers are imported only by a stage that computes (a cached rerun skips them)
    from skipthink.skipdata import generate_skip_data, student_decoder
    from skipthink.student import load_student

    m, cfg = ctx.num_chunks, ctx.cfg.skip
    items = final_items(ctx.db, ctx.inputs["data"], ctx.inputs["teacher"], ctx.inputs["base"], m)
    answer_type, meta = examples.answer_format(ctx.db, ctx.inputs["data"])
    model, tokenizer = load_student(ctx.checkpoint("base"), device=ctx.cfg.student.device, precision=ctx.cfg.training.precision)
    rows, summary = [], {}
    for split in ("train", "val"):
        progress = Progress(f"skipdata-{split}-{ctx.fp}", f"skip data ({split}): chunk positions checked")
        result = generate_skip_data(
            items[split], student_decoder(model, tokenizer, cfg), num_chunks=m, answer_type=answer_type, cfg=cfg,
            letters=meta.get("choice_letters"), progress=lambda done, total: progress(done, total),
        )
        rows += [dict(s.to_row(), split=split) for s in result.samples]
        summary[split] = result.summary()
    skips.write_samples(ctx.db, ctx.fp, ctx.inputs["base"], rows)
    ctx.summary.update(items=len(rows), check=cfg.check, **summary)
    log().info("wrote %d rows to skip_samples (skipdata_fp=%s): %s", len(rows), ctx.fp, summary)


def _fingerprinted(skip) -> dict:
    """The skip settings that decide the samples. `mix` is STT's, not this stage's; the position
    gate is left out at its default (off), so homes from before it keep their cached skip data."""
    drop = {"mix"} | ({"min_position_rate"} if skip.min_position_rate == 0 else set())
    return skip.model_dump(mode="json", exclude=drop)


SPEC = StageSpec(
    name="skipdata",
    version="3",
    section=lambda cfg, method: _fingerprinted(cfg.skip),
    inputs=lambda cfg, method: {"data": "data", "teacher": "teacher", "chunk": "chunk", "base": "train:cwt-sbc"},
    present=present,
    run=run,
    instances=lambda cfg: [None] if "stt" in cfg.evaluation.methods else [],
)
