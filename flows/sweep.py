"""The `sweep` flow: datasets × seeds × settings, each a `distill` run, aggregated over seeds.

In `subflow` mode every combination runs as a `distill` subflow in this process (its stages
cached like any other run). In `deployment` mode every combination is a separate flow run of
the `distill` deployment, so a work pool with several workers runs them in parallel; this flow
waits for them and aggregates from the results they return.
"""

from __future__ import annotations

import itertools
import json
import statistics
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from skipthink.config import METHODS, load_config
from tasks.runtime import home_dir, log


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("sweep", min_length=1, description="Label of this sweep (reports are named after it).")
    preset: Literal["demo", "smoke", "paper"] = Field("demo", description="Base preset of every run.")
    overrides: list[str] = Field(default_factory=list, description="`a.b=value` overrides applied to every run.")
    dataset_overrides: dict[str, list[str]] = Field(
        default_factory=dict, description="Extra overrides per dataset name, e.g. {'tracking_shuffled_objects': ['training.max_length=384']}."
    )
    datasets: list[str] = Field(default_factory=lambda: ["coin_flip"], min_length=1, description="dataset.name of each run.")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="Seeds; each sets dataset, training and student init seeds.")
    settings: dict[str, list[Any]] = Field(default_factory=dict, description="Grid of `a.b` fields to values, e.g. {'chunking.num_chunks': [3, 4]}.")
    mode: Literal["subflow", "deployment"] = Field("subflow", description="subflow: run here; deployment: one flow run of `deployment` per combination.")
    deployment: str = Field("distill/distill", description="deployment mode: the distill deployment to run.")


def combinations(spec: SweepConfig) -> list[tuple[str, list[str]]]:
    """(label, overrides) per run, seed-major (an interrupted sweep has every dataset and setting at
    its first seeds). Validates every config before any run starts."""
    keys = sorted(spec.settings)
    unknown = set(spec.dataset_overrides) - set(spec.datasets)
    if unknown:
        raise ValueError(f"dataset_overrides: {', '.join(sorted(unknown))} not in datasets")
    runs = []
    for seed, dataset, values in itertools.product(spec.seeds, spec.datasets, itertools.product(*(spec.settings[k] for k in keys))):
        setting = ",".join(f"{k}={v}" for k, v in zip(keys, values)) or "default"
        label = f"{spec.name}/{dataset}/{setting}/seed{seed}"
        overrides = [
            *spec.overrides,
            *spec.dataset_overrides.get(dataset, []),
            f"dataset.name={dataset}",
            f"dataset.seed={seed}",
            f"training.seed={seed}",
            f"student.init_seed={seed}",
            *(f"{k}={v}" for k, v in zip(keys, values)),
            f"run_name={label}",
        ]
        load_config(spec.preset, overrides=overrides)  # fail here, naming the field, not mid-sweep
        runs.append((label, overrides))
    return runs


# Per-method figures of a run summary (tasks.report.method_summary) averaged over seeds.
SUMMARY_KEYS = ("accuracy", "real_accuracy", "mean_new_tokens", "tokens_vs_ft", "speedup_vs_ft")


def aggregate(results: list[dict]) -> list[dict]:
    """Mean ± std over seeds per (dataset, setting, method)."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in results:
        _, dataset, setting, _ = r["run_name"].split("/")
        for method, m in r["methods"].items():
            groups.setdefault((dataset, setting, method), []).append(m)
    rows = []
    def order(key: tuple[str, str, str]) -> tuple:
        dataset, setting, method = key
        return (dataset, setting, METHODS.index(method) if method in METHODS else len(METHODS), method)

    for (dataset, setting, method), ms in sorted(groups.items(), key=lambda kv: order(kv[0])):
        row = {"dataset": dataset, "setting": setting, "method": method, "seeds": len(ms)}
        for key in SUMMARY_KEYS:
            vals = [m[key] for m in ms if m.get(key) is not None]
            row[key] = round(statistics.fmean(vals), 3) if vals else None
            row[f"{key}_std"] = round(statistics.stdev(vals), 3) if len(vals) > 1 else 0.0
        rows.append(row)
    return rows


COLUMNS = {
    "accuracy": "accuracy (%)",
    "real_accuracy": "real test split (%)",
    "mean_new_tokens": "mean new tokens",
    "tokens_vs_ft": "tokens vs FT",
    "speedup_vs_ft": "latency speedup vs FT",
}


def render_markdown(spec: SweepConfig, rows: list[dict], done: int, total: int) -> str:
    keys = [k for k in COLUMNS if any(r[k] is not None for r in rows)]
    status = "complete" if done == total else f"partial: {done} of {total} runs finished"
    lines = [
        f"# Sweep `{spec.name}`",
        "",
        f"Preset `{spec.preset}`; seeds {spec.seeds}; mean ± std over seeds ({status}).",
        "",
        "| dataset | setting | method | seeds | " + " | ".join(COLUMNS[k] for k in keys) + " |",
        "|---|---|---|---|" + "---|" * len(keys),
    ]
    for r in rows:
        def fmt(key: str) -> str:
            return "–" if r[key] is None else f"{r[key]:.2f} ± {r[key + '_std']:.2f}"

        lines.append(f"| {r['dataset']} | {r['setting']} | {r['method']} | {r['seeds']} | " + " | ".join(fmt(k) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def write_reports(spec: SweepConfig, results: list[dict], total: int, failures: dict[str, str]) -> tuple[Path, list[dict], str]:
    """Markdown + JSON report of the runs finished so far (rewritten after every run)."""
    rows = aggregate(results)
    markdown = render_markdown(spec, rows, len(results), total)
    if failures:
        markdown += "\n## Failed runs\n\n" + "".join(f"- `{label}`: {error}\n" for label, error in failures.items())
    cfg = load_config(spec.preset, overrides=spec.overrides)
    path = home_dir(cfg, "reports") / f"sweep-{spec.name.replace('/', '_')}.md"
    path.write_text(markdown)
    payload = {"spec": spec.model_dump(), "finished": len(results), "total": total, "failures": failures, "rows": rows, "runs": results}
    path.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    return path, rows, markdown


@flow(name="sweep", log_prints=True)
def sweep(spec: SweepConfig = SweepConfig()) -> dict[str, Any]:  # noqa: B008 (Prefect parameter default)
    """Run `distill` for every dataset × seed × setting and aggregate the results."""
    from flows.distill import distill

    runs = combinations(spec)
    log().info("sweep %s: %d runs", spec.name, len(runs))
    failures: dict[str, str] = {}
    if spec.mode == "subflow":
        results = run_each(
            runs,
            lambda overrides: distill(config=load_config(spec.preset, overrides=overrides)),
            failures,
            on_result=lambda done: write_reports(spec, done, len(runs), failures),
        )
    else:
        results = _run_deployments(spec, runs)
    path, rows, markdown = write_reports(spec, results, len(runs), failures)
    _publish(spec, markdown, rows)
    log().info("sweep report: %s", path)
    if failures:
        raise RuntimeError(f"sweep {spec.name}: {len(failures)} of {len(runs)} runs failed ({', '.join(failures)}); the others are in {path}")
    return {"report": str(path), "rows": rows}


def run_each(runs: list[tuple[str, list[str]]], run_one, failures: dict[str, str], on_result=None) -> list[dict]:
    """Run every combination in order. A failing run is logged and recorded in `failures`
    (label -> error) and the sweep goes on: one bad dataset must not cost the others' results."""
    results: list[dict] = []
    for label, overrides in runs:
        try:
            out = run_one(overrides)
        except Exception as e:  # noqa: BLE001 (reported, and the sweep fails at the end)
            failures[label] = f"{type(e).__name__}: {e}"
            log().error("sweep run %s failed: %s", label, failures[label])
            continue
        results.append(dict(out, run_name=label))
        if on_result is not None:
            on_result(results)
    return results


def _run_deployments(spec: SweepConfig, runs: list[tuple[str, list[str]]]) -> list[dict]:
    """One flow run per combination, submitted together, awaited together."""
    import asyncio

    from prefect.deployments import run_deployment

    async def one(label: str, overrides: list[str]) -> dict:
        cfg = load_config(spec.preset, overrides=overrides)
        flow_run = await run_deployment(spec.deployment, parameters={"config": cfg.model_dump(mode="json")}, timeout=None, as_subflow=True)
        state = flow_run.state
        if state is None or not state.is_completed():
            raise RuntimeError(f"sweep run {label} ended {state.type if state else 'without a state'}")
        return dict(await state.result(fetch=True), run_name=label)

    async def all_runs() -> list[dict]:
        return list(await asyncio.gather(*(one(label, o) for label, o in runs)))

    return asyncio.run(all_runs()) if not _in_event_loop() else _run_in_thread(all_runs)


def _in_event_loop() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _run_in_thread(coro_fn) -> Any:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(coro_fn())).result()


def _publish(spec: SweepConfig, markdown: str, rows: list[dict]) -> None:
    try:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        key = "".join(c if c.isalnum() else "-" for c in f"sweep-{spec.name}".lower())
        create_markdown_artifact(markdown, key=key, description=f"Sweep {spec.name}")
        create_table_artifact(rows, key=f"{key}-table", description=f"Sweep {spec.name}: mean ± std over seeds")
    except Exception as e:  # outside a flow run there is nowhere to publish
        log().debug("artifacts not published: %s", e)

