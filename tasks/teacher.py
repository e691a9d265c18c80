"""Stage `teacher`: rationales for the train and validation examples.

Every API response is saved to `teacher_requests` as it arrives, keyed by content, so a rerun
(after a crash, a kill, or with a changed downstream config) never pays for a request twice.
The stage fails, writing no rationales, when it stopped early, when more than
`teacher.max_failed_fraction` of the requests failed, or when too few rationales survive; the
saved responses stay, so a rerun sends only what is missing.
"""

from __future__ import annotations

from skipthink.config import PipelineConfig
from skipthink.teacher.stage import run_teacher_stage
from storage import examples
from storage.layout import other_run_databases
from storage.teacher_store import DuckDBRequestStore
from tasks.items import read_examples
from tasks.runtime import Progress, StageContext, StageSpec, log

# Teacher fields that change how requests are sent, not what comes back.
OPERATIONAL_FIELDS = {
    "max_concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "max_retries",
    "timeout_s",
    "backoff_base_s",
    "backoff_max_s",
    "batch_poll_s",
    "prices",
    "batch_discount",
    "max_cost_usd",
    "api_key_env",
    "batch_timeout_s",
    "check_endpoint",
    "max_identical_failures",
    "max_failed_fraction",
    "min_kept_fraction",
}


class TeacherIncomplete(RuntimeError):
    """The stage did not finish (stopped early, too many failures, too few kept): what was saved stays saved."""


def section(cfg: PipelineConfig, method=None) -> dict:
    out = cfg.teacher.model_dump(mode="json")
    for k in OPERATIONAL_FIELDS:
        out.pop(k, None)
    if cfg.teacher.base_url is not None:
        out.pop("server")  # the built-in server is not used
    return out


def present(ctx: StageContext) -> bool:
    return examples.has_rationales(ctx.db, ctx.fp)


def run(ctx: StageContext) -> None:
    """Ask the teacher (or take the dataset's own rationales), filter, store rationales."""
    pool = read_examples(ctx.db, ctx.inputs["data"], ("train", "val"))
    storage = ctx.cfg.storage
    others = other_run_databases(storage.home, ctx.db.path) if storage.layout == "per_run" else []
    outcome = run_teacher_stage(pool, ctx.cfg.teacher, DuckDBRequestStore(ctx.db, others), ctx.fp, progress=Progress(f"teacher-{ctx.fp}", "teacher requests"))
    summary = outcome.summary
    if outcome.failure:
        raise TeacherIncomplete(outcome.failure)
    examples.write_rationales(ctx.db, ctx.fp, outcome.rationales)
    ctx.summary.update(summary)
    f = summary["filter"]
    log().info(
        "wrote %d rows to rationales (teacher_fp=%s): requested %s, failed %s, truncated %s, incorrect %s, kept %s",
        len(outcome.rationales), ctx.fp, f["requested"], f["failed"], f["truncated"], f["incorrect"], f["kept"],
    )


SPEC = StageSpec(
    name="teacher",
    version="2",
    section=section,
    inputs=lambda cfg, method: {"data": "data"},
    present=present,
    run=run,
)
