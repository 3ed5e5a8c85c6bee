"""``pando plugins``: what is installed, loaded, disabled or broken."""

from __future__ import annotations

import json

import typer

from ..context import current
from ..plugins import read_hook_errors


def plugins_command(
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """List installed plugins: name, version, distribution, hooks implemented, status."""
    context = current()
    infos = context.plugins.list()
    kept = read_hook_errors(context.plugins.error_file)
    for info in infos:  # errors this process saw, then those other pando processes here kept
        for hook, entry in kept.get(info.name, {}).items():
            info.hook_errors.setdefault(hook, entry)
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
        for hook, entry in sorted(info.hook_errors.items()):
            typer.echo(f"{'':<{width}}  {hook} failed {entry.get('count', 1)}x, last: {entry.get('last_error', '')}")


def register(cli: typer.Typer) -> None:
    cli.command("plugins")(plugins_command)
