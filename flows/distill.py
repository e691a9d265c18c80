"""The `distill` flow: one dataset through every stage of the plan, each a cached Prefect task.

The flow walks the plan (tasks/stages.py) in waves of independent nodes. Whether a node
recomputes follows one rule (tasks/runtime.py): it is forced by a `refresh` of its stage or of
anything upstream; otherwise it runs when the database lacks its completed artifacts, or holds
a run of it that started before an upstream node recomputed in this run had finished. Prefect's cache (key `stage-fingerprint`) only
saves the presence check of a present node.
"""

from __future__ import annotations

import uuid
from typing import Any, Optional

from prefect import flow, task
from prefect.context import TaskRunContext

from flows.parameters import ConfigOverrides, PresetName, StageName, distill_run_name, resolve_config
from skipthink.config import PipelineConfig
from tasks.runtime import StageContext, execute, home_dir, is_present, log, open_db
from tasks.stages import REGISTRY, STAGES, StageNode, context, plan


def check_stages(names: list[str], field: str = "refresh") -> set[str]:
    """`names` as a set, or a ValueError naming `field` and the stages that do not exist."""
    unknown = sorted(set(names) - set(STAGES))
    if unknown:
        raise ValueError(f"{field}: unknown stage(s) {', '.join(unknown)}; stages are {', '.join(STAGES)}")
    return set(names)


def _cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    node = parameters["node"]
    return f"{node.stage}-{node.fp}"


@task(cache_key_fn=_cache_key, persist_result=True)
def run_stage(cfg: PipelineConfig, node: StageNode, input_fps: dict[str, str], force: bool, run_token: str, fresh_after: str = "") -> dict:
    """Run one plan node (any stage) unless the database already holds it."""
    ctx = StageContext(cfg, node.stage, node.key, node.fp, node.method, input_fps, open_db(cfg), force=force, run_token=run_token, fresh_after=fresh_after)
    return execute(REGISTRY[node.stage], ctx)


@flow(name="distill", log_prints=True, flow_run_name=distill_run_name)
def distill(
    preset: PresetName = "demo",
    config: ConfigOverrides = ConfigOverrides(),  # noqa: B008 (Prefect parameter default)
    refresh: list[StageName] = [],  # noqa: B006 (Prefect parameter default)
    parallel: bool = False,
    until: Optional[StageName] = None,
) -> dict[str, Any]:
    """Teacher rationales -> chunk-wise students -> skip-thinking -> evaluation -> report.

    Args:
        preset: The config to start from (demo: the main job; smoke: every stage in about a minute).
        config: Fields to change from the preset; every empty field keeps the preset's value.
        refresh: Stages to recompute, with everything downstream of them (cached otherwise).
        parallel: Submit the nodes of a wave (the base trainings, STT and SkipALL, the
            evaluations) together to the task runner; with a Dask runner
            (`skipthink run --dask-workers N`) they run in separate worker processes.
        until: Run only the nodes of this stage and what they need (e.g. `chunk`, to see the M
            that `num_chunks: auto` chooses, without training); the flow then returns every
            node's summary instead of the report.
    """
    cfg = resolve_config(preset, config)
    if cfg.storage.layout == "per_run" and not cfg.storage.run_id:
        # One database file per flow run, shared by its task workers (Dask processes included).
        from prefect.runtime import flow_run

        cfg = cfg.model_copy(update={"storage": cfg.storage.model_copy(update={"run_id": f"flow-{flow_run.id}"})})
    p = plan(cfg)
    if until is not None:
        p = p.only(p.upstream_of(p.of_stages(check_stages([until], "until"))))
    forced = p.downstream_of(p.of_stages(check_stages(refresh)))
    absent = {k for k in p.nodes if k not in forced and not is_present(REGISTRY[p.nodes[k].stage], context(cfg, p, k))}
    results_dir = home_dir(cfg, "prefect-results")  # a Path: Prefect reads a string as a block name
    log().info("run %s: database %s; refreshing %s; absent %s", cfg.run_name, cfg.storage.db_path, sorted(forced) or "nothing", sorted(absent) or "nothing")
    run_token = uuid.uuid4().hex
    results: dict[str, dict] = {}
    fresh_after: dict[str, str] = {}  # node -> when an upstream stage recomputed in this run finished
    for wave in p.waves():
        calls = []
        for key in wave:
            node = p.nodes[key]
            force = key in forced
            # Prefect may only return its cached result for a node the database holds (and the
            # execute() check decides whether a stored run is current).
            refresh_cache = force or key in absent or key in fresh_after
            task_fn = run_stage.with_options(name=node.stage, task_run_name=key, refresh_cache=refresh_cache, result_storage=results_dir)
            kwargs = dict(cfg=cfg, node=node, input_fps=p.input_fps(key), force=force, run_token=run_token, fresh_after=fresh_after.get(key, ""))
            calls.append((key, task_fn, kwargs))
        if parallel:
            futures = [(key, fn.submit(**kw)) for key, fn, kw in calls]
            done = [(key, f.result()) for key, f in futures]
        else:
            done = [(key, fn(**kw)) for key, fn, kw in calls]
        for key, result in done:
            results[key] = result
            if result.get("computed_by") == run_token:
                # Recomputed now: whatever was built from its previous outputs is stale, but a
                # downstream run another flow started after this one finished is current.
                for down in p.downstream_of({key}) - {key}:
                    fresh_after[down] = max(fresh_after.get(down, ""), result["finished_at"])
    return results["report"] if until is None else {"until": until, "stages": results}
