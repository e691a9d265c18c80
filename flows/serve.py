"""A local Prefect server and the served `distill` / `sweep` deployments (the UI's Run button).

`flow.serve`-style serving needs no work pool: each run the UI starts executes in a child
process of this one. For work pools (process, docker, kubernetes) see deploy/prefect.yaml.
Each deployment's description is what the UI shows a new user: what it runs, how long, how to
rerun one stage, where the report lands.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Optional

from prefect.schedules import Cron

from flows.distill import distill
from flows.sweep import SweepConfig, sweep
from skipthink.config import PRESETS, default_home
from tasks.stages import STAGES

# Example schedules, created inactive: switch them on in the UI (Deployments → sweep → Schedules).
NIGHTLY_SWEEP = SweepConfig(
    name="nightly",
    preset="demo",
    datasets=["coin_flip", "last_letter_concatenation", "tracking_shuffled_objects", "multiarith"],
    seeds=[0, 1, 2],
)


def preset_summary(name: str) -> str:
    """A preset's own one-line description: the first sentence of the comment opening its YAML."""
    text = resources.files("skipthink.presets").joinpath(f"{name}.yaml").read_text()
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("# ").strip())
    first, dot, _ = " ".join(comment).partition(". ")
    return first + ("." if dot else "")


# The UI's markdown renderer turns every newline into a break: one line per paragraph or item.
def distill_description(preset: str) -> str:
    home = default_home()
    presets = "\n".join(f"    - `{name}`: {preset_summary(name) or 'see skipthink/presets/'}" for name in PRESETS)
    stages = ", ".join(f"`{s}`" for s in STAGES)
    return "\n".join([
        "One dataset through every stage: data → teacher rationales → chunking → student → training (answer-only, FT, CWT-AC, CWT-SBC) → skip data → training (STT, SkipALL) → evaluation → report.",
        "",
        f"- **Run → Quick run** runs the `{preset}` preset as it is.",
        "- **Run → Custom run**: choose a `preset`, then fill in only the `config` fields to change (every field has its description; an empty field keeps the preset's value). The presets:",
        presets,
        f"- Every stage is cached: rerunning the same config takes seconds and shows each task run as `Cached`. To recompute one stage and everything after it, pick it under `refresh` ({stages}); e.g. `chunk` redoes chunking, the trainings, skip data, evaluation and the report, never the teacher's requests.",
        f"- Results: the flow run's **Artifacts** tab holds `skipthink-report` (accuracy with 95 % intervals, each method's outputs side by side, the figures) and `skipthink-metrics`; the files are in `{home}/reports/<run name>-<fingerprint>/`, every row in `{home}/skipthink.duckdb` (`skipthink runs` lists past runs).",
    ])


def sweep_description() -> str:
    home = default_home()
    return "\n".join([
        "Datasets × seeds × settings: one `distill` run per combination (cached like any run, so an interrupted sweep resumes), aggregated as mean ± 95 % t-interval over seeds, each method paired against FT seed by seed.",
        "",
        "- Takes the sum of its runs: a `demo` run is about 8½ minutes on 2 CPU cores, a `smoke` run about a minute. The default spec is the nightly one (4 datasets × 3 seeds on `demo`, about 1¾ hours); its schedule is created inactive (switch it on under Schedules).",
        "- **Run → Custom run**: edit `spec` (datasets, seeds, a `settings` grid such as `chunking.num_chunks: [3, 4]`).",
        f"- Results: artifacts `sweep-<name>` (markdown) and `sweep-<name>-table`; files `{home}/reports/sweep-<name>.md` and `.json`.",
    ])


def deployments(preset: str = "demo", distill_cron: Optional[str] = None, sweep_spec: SweepConfig = NIGHTLY_SWEEP) -> list:
    if preset not in PRESETS:
        raise ValueError(f"preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    distill_schedules = [Cron(distill_cron)] if distill_cron else None
    return [
        distill.to_deployment(
            name="distill",
            parameters={"preset": preset},
            schedules=distill_schedules,
            description=distill_description(preset),
            tags=["skipthink"],
        ),
        sweep.to_deployment(
            name="sweep",
            parameters={"spec": sweep_spec.model_dump(mode="json")},
            schedules=[Cron("0 2 * * *", active=False)],
            description=sweep_description(),
            tags=["skipthink"],
        ),
    ]


def serve_deployments(preset: str = "demo", limit: int = 2, distill_cron: Optional[str] = None) -> None:
    from prefect import serve

    # Up to `limit` flow runs at once, each a child process: each takes its share of the cores
    # (runtime.torch_threads), instead of every run spreading over all of them and thrashing.
    os.environ.setdefault("SKIPTHINK_CONCURRENT_RUNS", str(limit))
    serve(*deployments(preset, distill_cron), limit=limit)
