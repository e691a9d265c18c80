"""The `skipthink` command. Each command group lives in its own module."""

from __future__ import annotations

import os
import signal

import typer

from flows import cli_bench, cli_data, cli_db, cli_models, cli_pipeline, cli_results, cli_teacher

app = typer.Typer(help="skipthink: chunk-wise chain-of-thought distillation.", no_args_is_help=True, add_completion=False)
app.add_typer(cli_db.app, name="db", help="Inspect and export the DuckDB database.")
app.add_typer(cli_data.app, name="data", help="Datasets: show them, score recorded teacher completions.")
app.add_typer(cli_teacher.app, name="teacher", help="The built-in OpenAI-compatible teacher server.")
app.add_typer(cli_bench.app, name="bench", help="Speed benchmarks; each prints one JSON line.")
app.add_typer(cli_models.app, name="models", help="Named pretrained students: pull them once, list what is pulled.")
app.add_typer(cli_results.app, name="results", help="Judge the paper's claims from sweep reports; write the results tables.")
cli_pipeline.register(app)


def set_process_defaults() -> None:
    """Environment defaults of a `skipthink` process, set when the command starts (not when this
    module is imported, so importing it has no side effects)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Prefect waits 20 s for its temporary server by default; on a busy 2-core machine (a sweep or
    # training next door) start-up alone took longer and the run died before its first stage.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Prefect's temporary server keeps its SQLite file under PREFECT_HOME but does not create it.
    os.makedirs(os.path.expanduser(os.environ.get("PREFECT_HOME", "~/.prefect")), exist_ok=True)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM unwinds the process (SystemExit 143) instead of killing it outright. Prefect's flow
    engine marks the run crashed and then re-delivers the signal to the handler it found; with
    Python's default that handler ended the process before its exit hooks ran, and the temporary
    Prefect server the run had started was left running, orphaned, after every `kill`."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


def interrupt_on_sigint() -> None:
    """A process started in the background (`cmd &` in a script) inherits SIGINT as ignored, so
    `kill -INT` did nothing: `skipthink server` then outlived its test's Ctrl-C, was killed
    outright, and left its Prefect server (its own process group) running. Restore Python's
    KeyboardInterrupt, which a terminal only delivers to the foreground job anyway."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> None:
    set_process_defaults()
    exit_cleanly_on_sigterm()
    interrupt_on_sigint()
    app()


if __name__ == "__main__":
    main()
