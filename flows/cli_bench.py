"""`skipthink bench NAME`: speed benchmarks, each printing one JSON line at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from flows.cli_db import DbOption

app = typer.Typer(no_args_is_help=True)


def emit(result: dict) -> None:
    typer.echo(json.dumps(result, sort_keys=True))


@app.command("teacher")
def teacher(
    n_requests: int = typer.Option(1000, help="Requests per concurrency level."),
    latency_ms: float = typer.Option(50.0, help="Latency the local server adds to every request."),
    concurrency: list[int] = typer.Option([1, 32], help="Concurrency levels to compare (first vs last gives the ratio)."),
) -> None:
    """Teacher client throughput against the local server, at concurrency 1 and 32."""
    from skipthink.perf import teacher as bench

    emit(bench.run(n_requests=n_requests, latency_ms=latency_ms, concurrency=list(concurrency)))


@app.command("train")
def train(
    preset: str = typer.Option("demo", help="Config preset whose student and data are timed."),
    steps: Optional[int] = typer.Option(None, help="Timed optimisation steps per trainer and precision, after warm-up (default: 30; 4 with --student)."),
    student: Optional[str] = typer.Option(None, help="A pulled pretrained student to time instead of the preset's (e.g. smollm2-135m)."),
    precision: list[str] = typer.Option(["fp32", "bf16"], help="Precisions to compare (repeatable): fp32, bf16."),
    items: Optional[int] = typer.Option(None, help="Toy training items (default: 256; 32 with --student, which bounds the SBC timing)."),
) -> None:
    """Training tokens/s for FT and CWT per precision, against a Hugging Face Trainer; SBC's share of an epoch."""
    from skipthink.perf import train as bench

    bad = sorted(set(precision) - {"fp32", "bf16"})
    if bad:
        raise typer.BadParameter(f"unknown precision {', '.join(bad)}; choose fp32 or bf16", param_hint="--precision")
    steps = steps or (4 if student else 30)
    warmup = 1 if student else 5
    emit(bench.run(preset=preset, steps=steps, warmup=warmup, n_items=items or (32 if student else 256), student=student, precisions=precision))


@app.command("generate")
def generate(
    preset: str = typer.Option("demo", help="Config preset whose student size is used."),
    student: Optional[str] = typer.Option(None, help="A pulled pretrained student to time instead of the preset's (e.g. smollm2-135m)."),
    precision: str = typer.Option("auto", help="Weights for decoding: auto, fp32 or bf16 (as training.precision)."),
    batch_size: int = typer.Option(32, help="Batch size of the batched run."),
    one_by_one: Optional[int] = typer.Option(None, help="Prompts timed one by one (default: all of the batch; 8 with --student); rates are compared."),
    repeats: Optional[int] = typer.Option(None, help="Timed repeats, fastest counts (default: 3; 1 with --student)."),
    ft_new_tokens: Optional[int] = typer.Option(None, help="FT output length for the latency comparison (e.g. a run's FT mean_new_tokens)."),
    stt_new_tokens: Optional[int] = typer.Option(None, help="STT output length for the latency comparison (e.g. a run's STT mean_new_tokens)."),
) -> None:
    """Batched greedy generation against one-by-one generate() calls; STT against FT latency."""
    from skipthink.perf import generate as bench

    emit(bench.run(preset=preset, student=student, precision=precision, batch_size=batch_size, repeats=repeats or (1 if student else 3),
                   one_by_one_prompts=one_by_one or (8 if student else None), ft_new_tokens=ft_new_tokens, stt_new_tokens=stt_new_tokens))


@app.command("latency")
def latency(
    run: Optional[str] = typer.Argument(None, help="Finished run: a report fingerprint prefix or a run name (default: the most recent)."),
    db: Optional[Path] = DbOption,
    method: list[str] = typer.Option(["ft", "stt"], help="Methods to time (repeatable); the first is the baseline of the ratios."),
    questions: int = typer.Option(20, min=1, help="Test questions timed (the run's first, by sample id)."),
    repeats: int = typer.Option(3, min=1, help="Times each question is decoded per method; the fastest counts."),
    threads: int = typer.Option(1, min=1, help="torch intra-op threads (1: steadiest on a shared machine)."),
    precision: str = typer.Option("fp32", help="Weights for decoding: auto, fp32 or bf16 (as training.precision)."),
) -> None:
    """Batch-1 latency of a finished run's trained students, decoded side by side on the same questions."""
    from flows.cli_db import open_db
    from flows.latency_bench import bench_latency

    if len(method) < 2:
        raise typer.BadParameter("time at least two methods: the baseline, then the methods compared with it", param_hint="--method")
    try:
        result = bench_latency(open_db(db), run, method, questions=questions, repeats=repeats, threads=threads, precision=precision)
    except LookupError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    emit(result)


@app.command("pipeline")
def pipeline(
    preset: list[str] = typer.Option(["smoke", "demo"], help="Presets to time (repeatable)."),
    home: Optional[str] = typer.Option(None, help="Scratch home for the runs (default: a temporary directory, removed after)."),
) -> None:
    """Wall time and peak memory of whole pipeline runs: cold (fresh home), then fully cached."""
    import tempfile

    from flows.pipeline_bench import time_pipeline

    with tempfile.TemporaryDirectory(prefix="skipthink-bench-") as scratch:
        result = {"presets": {p: time_pipeline(p, f"{home or scratch}/{p}") for p in preset}}
    emit(result)
