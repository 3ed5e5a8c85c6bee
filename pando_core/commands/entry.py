"""What bare ``pando`` does: the interactive session (or one piped prompt / help without a terminal)."""

from __future__ import annotations

import typer


def _show_help(ctx: typer.Context) -> None:
    text = ctx.get_help()  # typer's rich help prints itself and returns ""
    if text:
        typer.echo(text)


def run_default(ctx: typer.Context) -> None:
    from ..context import current
    from ..frontends.interactive import main

    params = ctx.params or {}
    code = main(
        current(),
        show_help=lambda: _show_help(ctx),
        yolo=bool(params.get("yolo")),
        model=params.get("model") or None,
    )
    raise typer.Exit(code)
