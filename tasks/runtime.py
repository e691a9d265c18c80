"""What every stage shares: its context, the one Prefect task that runs any stage, the rule for
when a stage reruns, the per-stage lock, `stage_runs` bookkeeping, logging and progress.

When does a stage rerun? **When it is asked to (a `refresh` of it or of a stage upstream), when
the database holds no completed run of its fingerprint with its artifacts present, or when the
completed run it holds started before an upstream stage recomputed in this flow run finished (it
was built from outputs that no longer exist).** Nothing else decides: Prefect's result cache only
saves the presence check on a rerun, and a stage whose Prefect result file is gone but whose
rows are complete returns its stored summary without recomputing (docs/DESIGN.md §3).

Two runs of the same stage at once (two CLI runs, a double click in the UI, overlapping sweeps)
serialise on a file lock per (stage, fingerprint); the second re-checks presence after taking
it and returns what the first stored.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from filelock import FileLock

from skipthink.config import PipelineConfig, with_num_chunks
from storage import Database, stage_runs, training

_fallback_log = logging.getLogger("skipthink")


def open_db(cfg: PipelineConfig) -> Database:
    return Database(cfg.storage.db_path)


def home_dir(cfg: PipelineConfig, *parts: str) -> Path:
    path = Path(cfg.storage.home).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def log() -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run logger inside a run (so lines show in the UI), else a plain logger."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:
        return _fallback_log


@dataclass
class StageContext:
    """Everything a stage body gets: config, its own fingerprint, its inputs by name, storage."""

    cfg: PipelineConfig
    stage: str
    key: str  # plan node key, e.g. "train:cwt-sbc"
    fp: str
    method: Optional[str]
    inputs: dict[str, str]  # input name -> that stage's fingerprint
    db: Database
    force: bool = False  # recompute even if present (a refresh of it or of a stage upstream)
    # When an upstream stage was recomputed in this flow run: when that finished (ISO, UTC). A
    # stored run that started earlier was built from the upstream's previous outputs and is
    # stale; one that started later (another flow run computed it meanwhile) is current.
    fresh_after: str = ""
    # Identifies the flow run that computes the stage, so a result Prefect returns from its
    # cache (which carries an older token) is never mistaken for one computed now.
    run_token: str = ""
    summary: dict[str, Any] = field(default_factory=dict)  # the stage's summary, filled by its body

    def home(self, *parts: str) -> Path:
        return home_dir(self.cfg, *parts)

    def input_summary(self, name: str) -> dict:
        """The stored summary of the completed input stage `name`."""
        stage = "train" if name == "base" else name.split(":")[0]  # input names are stage[:method], or `base`
        summary = stage_runs.completed_summary(self.db, stage, self.inputs[name])
        if summary is None:
            raise RuntimeError(f"{self.key}: input {name} ({self.inputs[name]}) has no completed run")
        return summary

    def checkpoint(self, name: str) -> str:
        """The final checkpoint directory of the training run that is input `name`."""
        row = training.completed_run(self.db, self.inputs[name])
        if row is None:
            raise RuntimeError(f"{self.key}: no completed training run {self.inputs[name]} ({name})")
        return row["checkpoint_path"]

    @property
    def num_chunks(self) -> int:
        """M as the chunk stage resolved it (`chunking.num_chunks: auto` is decided there)."""
        return int(self.input_summary("chunk")["num_chunks"])

    def resolved_cfg(self) -> PipelineConfig:
        """The config with M resolved, for the method code (which needs a number)."""
        return with_num_chunks(self.cfg, self.num_chunks)


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage: everything the plan and the flow need to know about it."""

    name: str
    version: str  # bump when the code changes what the stage writes
    section: Callable[[PipelineConfig, Optional[str]], Any]  # its config section (given its method)
    inputs: Callable[[PipelineConfig, Optional[str]], dict[str, str]]  # input name -> plan node key
    present: Callable[[StageContext], bool]  # are its artifacts complete for ctx.fp?
    run: Callable[[StageContext], None]  # compute and persist; put the summary in ctx.summary
    instances: Callable[[PipelineConfig], list[Optional[str]]] = lambda cfg: [None]  # methods, or [None]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@contextmanager
def stage_lock(cfg: PipelineConfig, stage: str, fp: str) -> Iterator[None]:
    with FileLock(str(home_dir(cfg, "locks") / f"{stage}-{fp}.lock"), timeout=-1, thread_local=False, is_singleton=False):
        yield


def torch_threads(cfg: PipelineConfig) -> int:
    """`runtime.torch_threads`, or the cores shared out among the runs that run at once, capped by
    OMP_NUM_THREADS when the environment sets it."""
    if cfg.runtime.torch_threads:
        return cfg.runtime.torch_threads
    concurrent = max(1, int(os.environ.get("SKIPTHINK_CONCURRENT_RUNS", "1") or 1))
    share = max(1, (os.cpu_count() or 1) // concurrent)
    # torch.set_num_threads overrides OpenMP's own variable, so without this cap a job started
    # as `OMP_NUM_THREADS=1 skipthink sweep ...` to hold one core ran on all of them.
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(share, int(omp)) if omp.isdigit() and int(omp) >= 1 else share


def apply_torch_threads(cfg: PipelineConfig) -> None:
    import torch  # only stages that compute pay for importing torch

    torch.set_num_threads(torch_threads(cfg))


def is_present(spec: StageSpec, ctx: StageContext) -> bool:
    """A completed `stage_runs` row for the fingerprint and the stage's artifacts on hand."""
    return stage_runs.completed_summary(ctx.db, spec.name, ctx.fp) is not None and spec.present(ctx)


def execute(spec: StageSpec, ctx: StageContext) -> dict[str, Any]:
    """Run one stage under its lock, unless present (and not forced); returns its summary plus
    `fp` and `computed_by` (the run token of the flow run that computed it)."""
    with stage_lock(ctx.cfg, spec.name, ctx.fp):
        stored = None if ctx.force or not is_present(spec, ctx) else stage_runs.completed_summary(ctx.db, spec.name, ctx.fp)
        # Current only if it started after the upstream recomputation finished (so it read the new outputs).
        if stored is not None and stored.get("started_at", "") >= ctx.fresh_after:
            log().info("stage %s present (fingerprint %s): nothing to do", ctx.key, ctx.fp)
            return {**stored, "fp": ctx.fp, "computed_by": stored.get("computed_by")}
        if stored is not None:
            log().info("stage %s: its stored run predates an upstream stage recomputed at %s; recomputing", ctx.key, ctx.fresh_after)
        base = dict(
            run_name=ctx.cfg.run_name,
            code_version=spec.version,
            config=spec.section(ctx.cfg, ctx.method),
            upstream=ctx.inputs,
            started_at=_now(),
        )
        stage_runs.record(ctx.db, spec.name, ctx.fp, "running", **base)
        log().info("stage %s started (fingerprint %s)", ctx.key, ctx.fp)
        t0 = time.perf_counter()
        try:
            apply_torch_threads(ctx.cfg)
            spec.run(ctx)
        except BaseException as e:
            error = {"error": f"{type(e).__name__}: {e}"}
            stage_runs.record(ctx.db, spec.name, ctx.fp, "failed", summary=error, finished_at=_now(), duration_s=time.perf_counter() - t0, **base)
            raise
        duration = time.perf_counter() - t0
        finished = _now()
        stamps = {k: t.isoformat(timespec="microseconds") for k, t in (("started_at", base["started_at"]), ("finished_at", finished))}
        summary = dict(ctx.summary, seconds=round(duration, 3), computed_by=ctx.run_token, **stamps)
        stage_runs.record(ctx.db, spec.name, ctx.fp, "completed", summary=summary, finished_at=finished, duration_s=duration, **base)
        log().info("stage %s completed in %.1fs (fingerprint %s)", ctx.key, duration, ctx.fp)
        return {**summary, "fp": ctx.fp}


class Progress:
    """A Prefect progress artifact (when inside a run) plus log lines, throttled."""

    def __init__(self, key: str, description: str, every_s: float = 2.0):
        self.description = description
        self.every_s = every_s
        self._last = 0.0
        self._artifact_id: Optional[Any] = None
        try:
            from prefect.artifacts import create_progress_artifact
            from prefect.context import TaskRunContext

            if TaskRunContext.get() is None:
                return  # outside a run an artifact would start a temporary Prefect server; log lines only

            self._artifact_id = create_progress_artifact(progress=0.0, key=_artifact_key(key), description=description)
        except Exception:
            self._artifact_id = None

    def __call__(self, done: int, total: int, info: Optional[dict] = None) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.every_s:
            return
        self._last = now
        pct = 100.0 * done / total if total else 100.0
        if self._artifact_id is not None:
            try:
                from prefect.artifacts import update_progress_artifact

                update_progress_artifact(self._artifact_id, progress=pct)
            except Exception:
                self._artifact_id = None
        extra = "" if not info else " " + " ".join(f"{k}={_short(v)}" for k, v in info.items())
        log().info("%s: %d/%d (%.0f%%)%s", self.description, done, total, pct, extra)


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _artifact_key(key: str) -> str:
    # Artifact keys allow lowercase letters, numbers and dashes only.
    return "".join(c if c.isalnum() else "-" for c in key.lower()).strip("-")[:100]
