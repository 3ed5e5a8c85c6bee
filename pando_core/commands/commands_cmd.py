"""``pando commands``: the custom slash commands of this working directory and the user."""

import json

import typer

from ..context import current


def commands_command(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List custom slash commands (.pando/commands, .claude/commands, ~/.config/pando/commands) with their source."""
    from ..slash_commands.catalog import find_commands

    context = current()
    rows = [command.as_dict() for command in find_commands(context.workdir, context.env).values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no custom commands (add markdown files to .pando/commands/ or .claude/commands/)")
        return
    usages = [f"{row['name']} {row['argument_hint']}".strip() for row in rows]
    width = max(len(usage) for usage in usages)
    for usage, row in zip(usages, rows, strict=True):
        typer.echo(f"{usage:<{width}}  {row['description']}  [{row['source']}: {row['path']}]")


def register(cli: typer.Typer) -> None:
    cli.command("commands")(commands_command)
