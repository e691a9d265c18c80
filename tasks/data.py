"""Stage `data`: load or generate the dataset's examples into the `examples` table."""

from __future__ import annotations

from collections import Counter

from skipthink.datasets import load_examples
from storage import examples
from tasks.runtime import StageContext, StageSpec, log


def present(ctx: StageContext) -> bool:
    return examples.has_examples(ctx.db, ctx.fp)


def run(ctx: StageContext) -> None:
    """Generate or load examples; every split's count goes in the summary."""
    loaded = load_examples(ctx.cfg.dataset)
    n = examples.write_examples(ctx.db, ctx.fp, [e.to_row() for e in loaded])
    counts = dict(Counter(e.split for e in loaded))
    ctx.summary.update(examples=n, splits=counts)
    log().info("wrote %d rows to examples (data_fp=%s): %s", n, ctx.fp, counts)


SPEC = StageSpec(
    name="data",
    version="1",
    section=lambda cfg, method: cfg.dataset.model_dump(mode="json"),
    inputs=lambda cfg, method: {},
    present=present,
    run=run,
)
