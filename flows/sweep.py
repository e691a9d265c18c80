"""The `sweep` flow: datasets × seeds × settings, each a `distill` run, aggregated over seeds
as mean ± 95 % t-interval, with each method paired against FT seed by seed.

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

from skipthink.aio import run_coroutine
from skipthink.config import FINETUNE_COT_DATASETS, METHODS, PRESETS, SYNTHETIC_DATASETS, load_config
from skipthink.stats import mean_interval, paired_t_test
from tasks.runtime import home_dir, log


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("sweep", min_length=1, description="Label of this sweep (reports are named after it).")
    preset: Literal[PRESETS] = Field("demo", description="Base preset of every run.")  # type: ignore[valid-type]
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
    # A spec may be run on a subset of its datasets (`--set 'datasets=[coin_flip]'`); a name that
    # is neither in the sweep nor a shipped dataset is a typo.
    unknown = set(spec.dataset_overrides) - set(spec.datasets) - set(SYNTHETIC_DATASETS) - set(FINETUNE_COT_DATASETS)
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
SUMMARY_KEYS = ("accuracy", "real_accuracy", "mean_new_tokens", "tokens_vs_ft", "speedup_vs_ft", "skipping_share", "n_params", "train_minutes")


def aggregate(results: list[dict]) -> list[dict]:
    """Mean, std and 95 % t-interval half-width (`_ci`; None for one seed) over seeds per
    (dataset, setting, method)."""
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
            interval = mean_interval(vals) if vals else None
            row[key] = round(interval.estimate, 3) if interval else None
            row[f"{key}_std"] = round(statistics.stdev(vals), 3) if len(vals) > 1 else 0.0
            row[f"{key}_ci"] = round(interval.half_width, 3) if interval and interval.half_width is not None else None
        rows.append(row)
    return rows


COLUMNS = {
    "accuracy": "accuracy (%)",
    "real_accuracy": "real test split (%)",
    "mean_new_tokens": "mean new tokens",
    "tokens_vs_ft": "tokens vs FT",
    "speedup_vs_ft": "latency speedup vs FT",
    "skipping_share": "outputs that skip (%)",
    "train_minutes": "train minutes",
}


def paired_vs_ft(results: list[dict]) -> list[dict]:
    """Per (dataset, setting, method): accuracy minus FT's, paired by seed (a paired t-test
    over seeds; needs two seeds with both methods)."""
    by_cell: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for r in results:
        _, dataset, setting, seed = r["run_name"].split("/")
        for method, m in r["methods"].items():
            if m.get("accuracy") is not None:
                by_cell.setdefault((dataset, setting), {}).setdefault(method, {})[seed] = m["accuracy"]
    out = []
    for (dataset, setting), methods in sorted(by_cell.items()):
        ft = methods.get("ft", {})
        for method in [m for m in METHODS if m in methods and m != "ft"]:
            seeds = sorted(set(ft) & set(methods[method]))
            if len(seeds) < 2:
                continue
            test = paired_t_test([methods[method][s] for s in seeds], [ft[s] for s in seeds])
            out.append({"dataset": dataset, "setting": setting, "method": method, "seeds": len(seeds), "difference": round(test.mean_difference, 3),
                        "ci": round(test.interval.half_width, 3), "p_value": round(test.p_value, 4)})
    return out


def render_markdown(spec: SweepConfig, rows: list[dict], done: int, total: int, paired: list[dict] = ()) -> str:
    keys = [k for k in COLUMNS if any(r[k] is not None for r in rows)]
    status = "complete" if done == total else f"partial: {done} of {total} runs finished"
    lines = [
        f"# Sweep `{spec.name}`",
        "",
        f"Preset `{spec.preset}`; seeds {spec.seeds}; mean ± half-width of the 95 % t-interval over seeds ({status}).",
        "",
        "| dataset | setting | method | seeds | " + " | ".join(COLUMNS[k] for k in keys) + " |",
        "|---|---|---|---|" + "---|" * len(keys),
    ]
    for r in rows:
        def fmt(key: str) -> str:
            if r[key] is None:
                return "–"
            return f"{r[key]:.2f}" if r.get(key + "_ci") is None else f"{r[key]:.2f} ± {r[key + '_ci']:.2f}"

        lines.append(f"| {r['dataset']} | {r['setting']} | {r['method']} | {r['seeds']} | " + " | ".join(fmt(k) for k in keys) + " |")
    if paired:
        lines += [
            "",
            "## Against FT, paired by seed",
            "",
            "Accuracy minus FT's on the same seed (percentage points), mean ± 95 % interval, and the two-sided p of a paired t-test over seeds.",
            "",
            "| dataset | setting | method | seeds | difference (pp) | p |",
            "|---|---|---|---|---|---|",
        ]
        lines += [f"| {p['dataset']} | {p['setting']} | {p['method']} | {p['seeds']} | {p['difference']:+.2f} ± {p['ci']:.2f} | {p['p_value']:.3g} |" for p in paired]
    return "\n".join(lines) + "\n"


def write_reports(spec: SweepConfig, results: list[dict], total: int, failures: dict[str, str]) -> tuple[Path, list[dict], str]:
    """Markdown + JSON report of the runs finished so far (rewritten after every run)."""
    rows = aggregate(results)
    paired = paired_vs_ft(results)
    markdown = render_markdown(spec, rows, len(results), total, paired)
    if failures:
        markdown += "\n## Failed runs\n\n" + "".join(f"- `{label}`: {error}\n" for label, error in failures.items())
    cfg = load_config(spec.preset, overrides=spec.overrides)
    path = home_dir(cfg, "reports") / f"sweep-{spec.name.replace('/', '_')}.md"
    path.write_text(markdown)
    payload = {"spec": spec.model_dump(), "finished": len(results), "total": total, "failures": failures, "rows": rows, "paired_vs_ft": paired, "runs": results}
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
            lambda overrides: distill(preset=spec.preset, config=load_config(spec.preset, overrides=overrides)),
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
        flow_run = await run_deployment(spec.deployment, parameters={"preset": spec.preset, "config": cfg.model_dump(mode="json")}, timeout=None, as_subflow=True)
        state = flow_run.state
        if state is None or not state.is_completed():
            raise RuntimeError(f"sweep run {label} ended {state.type if state else 'without a state'}")
        return dict(await state.result(fetch=True), run_name=label)

    async def all_runs() -> list[dict]:
        return list(await asyncio.gather(*(one(label, o) for label, o in runs)))

    return run_coroutine(all_runs())


def _publish(spec: SweepConfig, markdown: str, rows: list[dict]) -> None:
    try:
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        key = "".join(c if c.isalnum() else "-" for c in f"sweep-{spec.name}".lower())
        create_markdown_artifact(markdown, key=key, description=f"Sweep {spec.name}")
        create_table_artifact(rows, key=f"{key}-table", description=f"Sweep {spec.name}: mean, std and 95 % interval over seeds")
    except Exception as e:  # outside a flow run there is nowhere to publish
        log().debug("artifacts not published: %s", e)

