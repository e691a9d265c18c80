"""`skipthink run | runs | report | server | sweep`: the pipeline commands.

`run` and `sweep` pick their Prefect API (and start a temporary server) before importing
Prefect and the stages, so the server boots while torch and transformers import.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from skipthink.config import PRESETS, ConfigError, PipelineConfig, load_config

PresetOption = typer.Option("demo", "--preset", "-p", help=f"Config preset, one of {', '.join(PRESETS)} (demo: the main job; smoke: tests, about a minute).")
ConfigOption = typer.Option(None, "--config", "-c", help="YAML file merged over the preset.")
SetOption = typer.Option([], "--set", "-s", help="Override a field: --set chunking.num_chunks=6 (repeatable).")


def resolve_config(preset: str, config: Optional[Path], overrides: list[str]) -> PipelineConfig:
    try:
        return load_config(preset, config, overrides)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def run(
    preset: str = PresetOption,
    config: Optional[Path] = ConfigOption,
    overrides: list[str] = SetOption,
    refresh: list[str] = typer.Option([], "--refresh", "-r", help="Recompute this stage and everything downstream (repeatable): data, teacher, chunk, student, train, skipdata, evaluate, report."),
    dask_workers: int = typer.Option(0, "--dask-workers", min=0, help="Run independent stages (trainings, evaluations) in parallel on a local Dask cluster of this many worker processes (0 = sequential)."),
    until: Optional[str] = typer.Option(None, "--until", help="Run only this stage's nodes and what they need (e.g. chunk: see the M that num_chunks auto picks, without training); prints each node's summary."),
) -> None:
    """Run the whole pipeline (the `distill` flow) and print the six-method table.

    The last line printed is one JSON object with every method's accuracy, mean generated
    tokens and speedup against FT (with --until: every node's summary, keyed by node).
    """
    cfg = resolve_config(preset, config, overrides)
    server = prefect_api()
    from flows.distill import check_stages, distill

    try:
        check_stages(refresh)
        if until:
            check_stages([until], "until")
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if server is not None:
        server.wait()
    if dask_workers:
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1, "processes": True})
        result = distill.with_options(task_runner=runner)(preset=preset, config=cfg, refresh=list(refresh), parallel=True, until=until)
    else:
        result = distill(preset=preset, config=cfg, refresh=list(refresh), until=until)
    typer.echo("")
    if until:
        for key, summary in result["stages"].items():
            typer.echo(f"{key:16} {summary.get('fp')}  {summary.get('seconds', 0):.1f} s")
        typer.echo(json.dumps({"until": until, "stages": result["stages"]}, default=str))
        return
    typer.echo(result["table"])
    typer.echo(f"report: {result['report_path']}")
    from skipthink.student import student_summary
    from tasks.runtime import home_dir
    from tasks.stages import plan

    student = student_summary(cfg.student, home_dir(cfg, "students") / plan(cfg).fp("student"))
    typer.echo(json.dumps({"run": result["run"], "dataset": result["dataset"], "student": student, "methods": result["methods"]}, sort_keys=False))


def prefect_api():
    """Settle the Prefect API before Prefect is imported (see the module docstring); returns the
    temporary server to wait for, or None when a configured server answers."""
    from flows.prefect_api import api_for_run

    try:
        _, server = api_for_run()
    except RuntimeError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    return server


DbOption = typer.Option(None, "--db", help="DuckDB file, or a directory of per-run files (default: every database under $SKIPTHINK_HOME).")


def report(
    run_id: Optional[str] = typer.Argument(None, help="Run: a report fingerprint or its prefix, or a run name (default: the most recent run)."),
    db: Optional[Path] = DbOption,
    out: Optional[Path] = typer.Option(None, "--out", help="Directory to write the report to (default: where the run wrote it)."),
) -> None:
    """Rebuild and print the report of a finished run from the database."""
    from flows.cli_db import open_db
    from tasks.report import rebuild_report

    try:
        result = rebuild_report(open_db(db), run_id, out)
    except LookupError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(result["table"])
    typer.echo(f"report: {result['report_path']}")


def server(
    host: str = typer.Option("127.0.0.1", help="Prefect server host (loopback by default)."),
    port: int = typer.Option(4200, help="Prefect server port."),
    preset: str = PresetOption,
    limit: int = typer.Option(2, help="Flow runs the served deployments may run at once."),
) -> None:
    """Start a local Prefect server (unless one answers) and serve the distill and sweep deployments."""
    from flows.prefect_api import ensure_server

    api_url = ensure_server(host, port)
    from flows.serve import serve_deployments

    typer.echo(f"Prefect UI: {api_url.removesuffix('/api')}  (deployments: distill/distill, sweep/sweep)")
    serve_deployments(preset=preset, limit=limit)


def sweep(
    spec_file: Optional[Path] = typer.Argument(None, help="YAML file of a SweepConfig (name, preset, datasets, seeds, settings, mode)."),
    overrides: list[str] = SetOption,
) -> None:
    """Run a sweep (datasets × seeds × settings) and print where its report is."""
    import yaml

    server = prefect_api()

    from flows.sweep import SweepConfig, sweep as sweep_flow

    data = yaml.safe_load(spec_file.read_text()) if spec_file else {}
    for text in overrides:
        key, _, value = text.partition("=")
        data[key] = yaml.safe_load(value)
    spec = SweepConfig.model_validate(data)
    if server is not None:
        server.wait()
    result = sweep_flow(spec=spec)
    typer.echo(Path(result["report"]).read_text())
    typer.echo(f"report: {result['report']}")


def runs(db: Optional[Path] = DbOption, limit: int = typer.Option(20, min=1, help="Most recent runs to list.")) -> None:
    """List past runs: id, name, dataset, preset, when, status, accuracy per method, report."""
    from flows.cli_db import open_db  # a read view of every database file, whichever the layout

    typer.echo(render_runs(open_db(db), limit))


def render_runs(db, limit: int) -> str:
    """Finished runs (one per report) and runs that stopped before their report, newest first."""
    from skipthink.config import METHODS
    from storage.runs import report_records, unfinished_runs

    def when(record) -> str:
        return record.when.strftime("%Y-%m-%d %H:%M") if record.when else "–"

    rows = []
    for r in report_records(db):
        accuracy = {m: v.get("accuracy") for m, v in r.summary.get("methods", {}).items()}
        rows.append((r.when, [
            r.fp, r.run_name or "–", r.summary.get("dataset", "–"), r.summary.get("preset", "–"), when(r), r.status,
            *("–" if accuracy.get(m) is None else f"{accuracy[m]:.1f}" for m in METHODS), r.summary.get("report_path", "–"),
        ]))
    for r in unfinished_runs(db):
        rows.append((r.when, ["–", r.run_name or "–", "–", "–", when(r), f"{r.status} at {r.stage}", *("–" for _ in METHODS), "–"]))
    if not rows:
        return f"no runs in {db.path}"
    rows.sort(key=lambda item: item[0] or datetime.min, reverse=True)
    header = ["run", "name", "dataset", "preset", "when", "status", *METHODS, "report"]
    body = [cells for _, cells in rows[:limit]]
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [header, *body])


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("runs")(runs)
    app.command("report")(report)
    app.command("server")(server)
    app.command("sweep")(sweep)
