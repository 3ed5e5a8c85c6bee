"""What bare ``pando`` does: the interactive session (or help when there is no terminal)."""

from __future__ import annotations

import typer


def run_default(ctx: typer.Context) -> None:
    typer.echo(ctx.get_help())
    raise typer.Exit(0)
