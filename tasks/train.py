"""Stage `train`: one student per method, all from the shared initial student.

Checkpoints live under <home>/runs/<train_fp>. A run that was interrupted (its `stage_runs`
row is `running` or `failed` — we hold the stage lock, so nobody else is running it) resumes
from its last epoch checkpoint; a forced run (refresh) or one whose upstream was recomputed in this flow run starts
over; a checkpoint of a different run or one that cannot be read is discarded by the training
loop, which then starts over too.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from skipthink.config import PipelineConfig
from skipthink.inputs import file_sha256
from skipthink.methods import method as method_spec
from storage import chunkings, skips, stage_runs, training
from tasks.items import Splits, final_items, initial_items, with_skip_alternatives
from tasks.runtime import Progress, StageContext, StageSpec, log


def section(cfg: PipelineConfig, method: Optional[str]) -> dict:
    out = {"method": method, "training": cfg.training.model_dump(mode="json")}
    if method_spec(method).needs_sbc:
        out["chunking"] = cfg.chunking.model_dump(mode="json")
    if method_spec(method).skip_prompted:
        out["mix"] = cfg.skip.mix
    return out


def inputs(cfg: PipelineConfig, method: Optional[str]) -> dict[str, str]:
    out = {"data": "data", "teacher": "teacher", "chunk": "chunk", "student": "student"}
    spec = method_spec(method)
    if spec.builds_on:
        out["base"] = f"train:{spec.builds_on}"
    if spec.skip_samples == "searched":
        out["skipdata"] = "skipdata"
    return out


def present(ctx: StageContext) -> bool:
    row = training.completed_run(ctx.db, ctx.fp)
    if row is None:
        return False
    path = Path(row["checkpoint_path"]) / "model.safetensors"
    # skipthink.inputs, not skipthink.training: a presence check must not import torch.
    return path.is_file() and file_sha256(path) == row["checkpoint_sha256"]


def training_items(ctx: StageContext) -> Splits:
    """Train and val items for the method. STT and SkipALL use CWT-SBC's final chunkings and
    carry each item's skip sample (skip-data masks, or every chunk skipped)."""
    spec, m = method_spec(ctx.method), ctx.num_chunks
    data_fp, teacher_fp = ctx.inputs["data"], ctx.inputs["teacher"]
    if not spec.builds_on:
        return initial_items(ctx.db, data_fp, teacher_fp, ctx.inputs["chunk"], m)
    items = final_items(ctx.db, data_fp, teacher_fp, ctx.inputs["base"], m)
    masks = skips.usable_masks(ctx.db, ctx.inputs["skipdata"]) if spec.skip_samples == "searched" else None
    return with_skip_alternatives(items, masks, m)


def run(ctx: StageContext) -> None:
    """Train one method's student from the shared initial student."""
    # torch and transformers are imported only by a stage that computes (a cached rerun skips them)
    from skipthink.training import TrainHooks, train_student

    fp, cfg = ctx.fp, ctx.resolved_cfg()
    out_dir = ctx.home("runs") / fp
    # A run interrupted before an upstream stage was recomputed trained on outputs that are gone.
    resumable = not ctx.force and not ctx.fresh_after and stage_runs.status(ctx.db, "train", fp) in ("running", "failed")
    if not resumable:
        shutil.rmtree(out_dir, ignore_errors=True)
        chunkings.delete_search(ctx.db, fp)
    training.delete_run(ctx.db, fp, keep_log=resumable)
    items = training_items(ctx)
    init_dir = Path(ctx.input_summary("student")["path"])
    hooks = TrainHooks(
        on_log=lambda rows: training.append_log(ctx.db, fp, rows),
        on_chunkings=lambda epoch, rows: chunkings.write_search(ctx.db, fp, [dict(r, epoch=epoch) for r in rows]),
        on_progress=Progress(f"train-{ctx.method}-{fp}", f"training {ctx.method}"),
    )
    core_tokens: list[dict] = []
    if cfg.training.core_token_stats:
        from skipthink.core_tokens import token_group_stats

        # Per epoch of this process's training (a resumed run has the epochs it trained).
        hooks.on_epoch = lambda epoch, model, tokenizer, batches: core_tokens.append(dict(epoch=epoch, **token_group_stats(model, tokenizer, batches).as_row()))
    log().info("training %s on %d items (%d val) -> %s", ctx.method, len(items["train"]), len(items["val"]), out_dir)
    result = train_student(ctx.method, items["train"], items["val"], init_dir, out_dir, cfg, hooks)
    if result.final_boundaries:
        # The chunking the selected (best) epoch was trained on: skip data and STT use it.
        rows = [dict(epoch=result.best_epoch, sample_id=s, completion_index=c, boundaries=list(b)) for (s, c), b in result.final_boundaries.items()]
        chunkings.write_search(ctx.db, fp, rows, kind="final")
    training.write_run(
        ctx.db,
        fp,
        dict(
            method=ctx.method,
            dataset=cfg.dataset.name,
            status="completed",
            checkpoint_path=str(result.final_dir),
            checkpoint_sha256=result.safetensors_sha256,
            n_params=result.n_params,
            steps=result.steps,
            epochs=result.epochs_run,
            best_epoch=result.best_epoch,
            best_val_loss=result.best_val_loss,
            train_seconds=result.train_seconds,
            target_tokens=result.target_tokens,
            budget=result.budget,
            config=section(cfg, ctx.method),
        ),
    )
    if core_tokens:
        ctx.summary.update(core_tokens=core_tokens, dataset=cfg.dataset.name, seed=cfg.training.seed)
    ctx.summary.update(
        method=ctx.method, steps=result.steps, target_tokens=result.target_tokens, best_epoch=result.best_epoch,
        best_val_loss=result.best_val_loss, tokens_per_s=result.tokens_per_s, sbc_seconds=result.sbc_seconds, checkpoint=str(result.final_dir),
    )
    log().info("wrote train_runs train_fp=%s (%s, %d steps, %d target tokens); checkpoint %s", fp, ctx.method, result.steps, result.target_tokens, result.final_dir)


SPEC = StageSpec(
    name="train",
    version="3",
    section=section,
    inputs=inputs,
    present=present,
    run=run,
    instances=lambda cfg: list(cfg.evaluation.methods),
)
