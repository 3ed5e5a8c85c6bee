"""``pando plugins``: what is installed, loaded, disabled or broken."""

from __future__ import annotations

import json

import typer

from ..context import current


def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """List installed plugins: name, version, distribution, hooks implemented, status."""
    infos = current().plugins.list()
    if as_json:
        typer.echo(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    if not infos:
        typer.echo("No plugins installed. Install one with: pip install pando-skills")
        return
    width = max(len(info.name) for info in infos)
    for info in infos:
        line = f"{info.name:<{width}}  {info.version or '-':<8} {info.status:<8} {info.distribution}"
        typer.echo(line)
        if info.status == "error":
            typer.echo(f"{'':<{width}}  error: {info.error}")
        elif info.hooks:
            typer.echo(f"{'':<{width}}  hooks: {', '.join(info.hooks)}")


def register(cli: typer.Typer) -> None:
    cli.command("plugins")(plugins_command)
