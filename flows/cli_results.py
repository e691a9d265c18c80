"""`skipthink results claims | table | transfer | pretrained | ablation | mechanism | steps`: the paper's claims judged from sweep reports
(skipthink/claims.py), and the machine-readable tables docs/results/*.json hold."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)

CommandOption = typer.Option([], "--command", help="The command(s) that produced the sweeps, recorded with the results (repeatable).")
SweepFiles = typer.Argument(..., help="Sweep report JSON files (<home>/reports/sweep-NAME.json), one or more.", exists=True, dir_okay=False)


def _load(files: list[Path]) -> list[dict]:
    sweeps = []
    for f in files:
        data = json.loads(f.read_text())
        if not isinstance(data, dict) or "runs" not in data or "spec" not in data:
            typer.echo(f"error: {f}: not a sweep report (needs 'spec' and 'runs')", err=True)
            raise typer.Exit(1)
        sweeps.append(data)
    return sweeps


def _load_latency(files: list[Path]) -> list[dict]:
    """Every `bench latency` line in the files (other lines, e.g. logs, are skipped)."""
    out = []
    for f in files:
        for line in f.read_text().splitlines():
            if line.startswith("{") and '"benchmark": "latency"' in line:
                out.append(json.loads(line))
    if files and not out:
        typer.echo(f"error: no `bench latency` result in {', '.join(map(str, files))}", err=True)
        raise typer.Exit(1)
    return out


def _write(payload: dict, out: Path | None) -> None:
    text = json.dumps(payload, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        typer.echo(str(out), err=True)


def _sources(files: list[Path], sweeps: list[dict]) -> list[dict]:
    return [{"file": f.name, "sweep": s["spec"]["name"], "preset": s["spec"]["preset"], "finished": s["finished"], "total": s["total"], "spec": s["spec"]} for f, s in zip(files, sweeps)]


OutOption = typer.Option(None, "--out", "-o", help="Write the JSON here (default: print it).")


def _from_sweeps(files: list[Path], out: Path | None, command: list[str], key: str, build) -> dict:
    """Load the sweep reports, build one result from their cells, write it with its sources."""
    from skipthink.claims import cells, fixed_test_split, student_label

    sweeps = _load(files)
    try:
        result = build(cells(sweeps, student_label, fixed_test_split))
    except ValueError as e:  # two sweeps claim one seed of a cell; a latency bench of no given run
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    _write({key: result, "commands": command, "sources": _sources(files, sweeps)}, out)
    return result


@app.command("claims")
def claims(
    files: list[Path] = SweepFiles,
    out: Path = OutOption,
    command: list[str] = CommandOption,
    markdown: Path = typer.Option(None, "--markdown", help="Also write the verdicts as a markdown table (for docs/RESULTS.md)."),
    latency: list[Path] = typer.Option([], "--latency", help="`skipthink bench latency` output (JSON lines) of the sweeps' runs: STT's latency part uses these side-by-side ratios (repeatable).", exists=True, dir_okay=False),
) -> None:
    """Judge each of the paper's claims from the sweeps' per-seed results (paired by seed)."""
    from skipthink.claims import claims_markdown, judge

    benches = _load_latency(latency)

    def judge_with_latency(cs):
        from skipthink.claims import attach_latency, student_label

        return judge(attach_latency(cs, sweeps, benches, student_label))

    sweeps = _load(files)
    verdicts = _from_sweeps(files, out, command, "claims", judge_with_latency)
    if markdown is not None:
        markdown.write_text(claims_markdown(verdicts))
    for name, claim in verdicts.items():
        typer.echo(f"{name}: {claim['verdict']}", err=True)


# Commands that build one table from sweep reports: (name, JSON key, builder in skipthink.claims, help).
TABLES = [
    ("table", "results", "results_table", "Mean and 95 % interval over seeds per student, dataset, setting and method."),
    ("transfer", "transfer", "transfer_table", "Students trained on generated data, on the real test split: FT and STT against Fine-tune-CoT's best GPT-2."),
    ("pretrained", "pretrained", "pretrained_table", "Pretrained students on real data: accuracy per method beside Fine-tune-CoT's GPT-2 124M."),
    ("ablation", "ablation", "ablation_table", "Each non-default setting beside the default, paired by seed (an ablation: reported, never used to choose a preset)."),
]


def _register_table(name: str, key: str, builder: str, help_text: str) -> None:
    def command(files: list[Path] = SweepFiles, out: Path = OutOption, command: list[str] = CommandOption) -> None:
        from skipthink import claims as tables

        _from_sweeps(files, out, command, key, getattr(tables, builder))

    app.command(name, help=help_text)(command)


for _table in TABLES:
    _register_table(*_table)


@app.command("mechanism")
def mechanism(
    homes: list[Path] = typer.Argument(..., help="Project homes (or database files) of runs made with training.core_token_stats=true.", exists=True),
    out: Path = OutOption,
    figure_path: Path = typer.Option(None, "--figure", help="Also draw the core/rest loss curves to this PNG."),
    command: list[str] = CommandOption,
) -> None:
    """Core-token vs rest loss and confidence over training per method, and CWT paired with FT."""
    from flows.cli_db import open_db
    from skipthink.mechanism import against_ft, figure, over_training
    from storage.stage_runs import completed_summaries

    summaries = [row["summary"] for home in homes for row in completed_summaries(open_db(home), "train")]
    curves = over_training(summaries)
    if not curves:
        typer.echo("error: no train stage with core-token statistics in these homes (run with --set training.core_token_stats=true)", err=True)
        raise typer.Exit(1)
    if figure_path is not None:
        figure(curves, figure_path)
    _write({"over_training": curves, "against_ft": against_ft(summaries), "commands": command}, out)


@app.command("steps")
def steps(
    homes: list[Path] = typer.Argument(..., help="Project homes (or database files) whose runs' written outputs to read.", exists=True),
    dataset: str = typer.Option(None, "--dataset", help="Only this dataset."),
    teacher: bool = typer.Option(True, "--teacher/--no-teacher", help="Also read the teacher's kept and rejected rationales."),
    out: Path = OutOption,
    command: list[str] = CommandOption,
) -> None:
    """Where chains go wrong: per run and method, steps right, chains joining to gold, chunks skipped."""
    from flows.cli_db import open_db
    from skipthink.steps import step_table
    from storage.evaluation import written_outputs
    from storage.examples import teacher_outputs

    rows = []
    for home in homes:
        db = open_db(home)
        rows += written_outputs(db, dataset) + (teacher_outputs(db, dataset) if teacher else [])
    if not rows:
        typer.echo(f"error: no evaluated outputs{' of ' + dataset if dataset else ''} in {', '.join(map(str, homes))}", err=True)
        raise typer.Exit(1)
    _write({"steps": step_table(rows), "commands": command}, out)
