"""``pando context``: the instruction files (AGENTS.md family, global file, extras) the agent reads."""

import json

import typer

from ..context import current


def context_command(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the context files added to the system prompt: path, size and the rule that picked each."""
    from ..agent.context_files import find_context_files

    ctx = current()
    agent = ctx.config.section("agent")
    found = find_context_files(
        ctx.workdir, list(agent.get("context_files") or []), env=ctx.env, global_file=agent.get("global_context_file")
    )
    if as_json:
        typer.echo(json.dumps([f.as_json() for f in found], indent=2))
        return
    if not found:
        typer.echo("no context files (looked for: " + ", ".join(agent.get("context_files") or []) + ")")
        return
    width = max(len(f.shown) for f in found)
    for f in found:
        note = " (truncated)" if f.as_json()["truncated"] else ""
        typer.echo(f"{f.shown:<{width}}  {f.bytes:>7} bytes  {f.rule}{note}")


def register(cli: typer.Typer) -> None:
    cli.command("context")(context_command)
