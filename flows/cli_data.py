"""`skipthink data …`: look at a dataset, and score Fine-tune-CoT's recorded teacher completions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from skipthink.datasets import load_examples
from skipthink.datasets.base import SPLITS, DatasetError
from skipthink.datasets.finetune_cot import teacher_accuracy
from skipthink.config import DatasetConfig

app = typer.Typer(no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def show(
    name: str = typer.Argument(..., help="Dataset key, e.g. coin_flip, multiarith, svamp."),
    data_dir: Optional[Path] = typer.Option(None, help="Fine-tune-CoT-layout data directory (implies --source finetune_cot)."),
    source: Optional[str] = typer.Option(None, help="synthetic | finetune_cot | file (default: from the other options)."),
    path: Optional[Path] = typer.Option(None, help="Dataset file for --source file."),
    answer_type: Optional[str] = typer.Option(None, help="--source file: number | float | letter | yes_no | string."),
    seed: int = typer.Option(0, help="Seed for generation and splits."),
) -> None:
    """Counts per split and the first training example."""
    source = source or ("file" if path else "finetune_cot" if data_dir else "synthetic")
    try:
        cfg = DatasetConfig(name=name, source=source, data_dir=data_dir, path=path, answer_type=answer_type, seed=seed)
        examples = load_examples(cfg)
    except ValidationError as e:
        _fail("; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors()))
    except DatasetError as e:
        _fail(str(e))
    counts = {s: sum(e.split == s for e in examples) for s in SPLITS}
    typer.echo(f"dataset {name} ({source}): " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    first = examples[0]
    typer.echo(f"sample_id: {first.sample_id}\nquestion: {first.question}\nanswer: {first.answer} ({first.answer_type})")


@app.command("score-teacher")
def score_teacher(
    name: str = typer.Argument(..., help="A Fine-tune-CoT dataset with recorded completions, e.g. multiarith."),
    data_dir: Path = typer.Option(..., help="Fine-tune-CoT-layout data directory."),
    all_completions: bool = typer.Option(False, "--all-completions", help="Score every recorded completion, not only completion 0."),
) -> None:
    """Accuracy of the recorded second-step answers; prints one JSON line."""
    try:
        n, accuracy = teacher_accuracy(data_dir, name, all_completions)
    except DatasetError as e:
        _fail(str(e))
    typer.echo(json.dumps({"dataset": name, "n": n, "accuracy": round(accuracy, 2)}))
