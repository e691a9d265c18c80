"""`skipthink teacher serve`: the built-in OpenAI-compatible teacher server in the foreground."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("serve")
def serve(
    backend: str = typer.Option("scripted", help="scripted (solves the synthetic datasets) or replay (recorded completions)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="replay: a Fine-tune-CoT-layout directory with D_*.json files."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8765, help="Port to bind (0 = any free port)."),
    error_rate: float = typer.Option(0.1, min=0.0, max=1.0, help="scripted: share of rationales with a wrong step."),
    seed: int = typer.Option(0, min=0, help="scripted: phrasing and error seed."),
    latency_ms: float = typer.Option(0.0, min=0.0, help="Latency added to every completion request."),
    rate_limit_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of requests answered 429 with Retry-After."),
    server_error_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of requests answered 500."),
    hang_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of requests that hang for --hang-s."),
    hang_s: float = typer.Option(30.0, min=0.0, help="How long a hung request hangs."),
    empty_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of requests answered with empty text."),
    malformed_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of requests answered with broken JSON."),
    null_content_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of 200 answers with null completion text."),
    bad_choices_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of 200 answers whose choices are not a list."),
    huge_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of 200 answers with 10 MB of text."),
    nul_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of 200 answers with a NUL byte in the text."),
    surrogate_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of 200 answers with a lone surrogate in the text."),
    require_key_env: Optional[str] = typer.Option(None, "--require-key-env", help="Answer 401 unless the client sends the key in this environment variable."),
    batch_delay_s: float = typer.Option(0.0, min=0.0, help="Seconds a submitted batch stays in progress."),
) -> None:
    """Serve /v1/models, /v1/completions, /v1/chat/completions, /v1/files, /v1/batches and /stats."""
    if require_key_env and not os.environ.get(require_key_env):
        raise typer.BadParameter(f"environment variable {require_key_env} is not set", param_hint="--require-key-env")
    from skipthink.config import TeacherServerConfig
    from skipthink.teacher_server import ServerFaults, start_server

    if backend not in ("scripted", "replay"):
        raise typer.BadParameter("choose scripted or replay", param_hint="--backend")
    if backend == "replay" and data_dir is None:
        raise typer.BadParameter("the replay backend needs --data-dir", param_hint="--data-dir")
    cfg = TeacherServerConfig(backend=backend, data_dir=data_dir, error_rate=error_rate, seed=seed)
    faults = ServerFaults(latency_ms=latency_ms, rate_limit_fraction=rate_limit_fraction, server_error_fraction=server_error_fraction,
                          hang_fraction=hang_fraction, hang_s=hang_s, empty_fraction=empty_fraction,
                          malformed_fraction=malformed_fraction, null_content_fraction=null_content_fraction,
                          bad_choices_fraction=bad_choices_fraction, huge_fraction=huge_fraction, nul_fraction=nul_fraction,
                          surrogate_fraction=surrogate_fraction, batch_delay_s=batch_delay_s,
                          api_key=os.environ[require_key_env] if require_key_env else None)
    handle = start_server(cfg, host=host, port=port, faults=faults)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}, not loopback; the server has no authentication", err=True)
    typer.echo(f"teacher server ({backend}) listening on {handle.base_url}", err=False)
    try:
        handle.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
