"""``pando tools``: the tools the agent has, and those ``pando mcp-server`` would expose."""

import json

import typer

from ..context import current


def tools_command(
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    mcp_server: bool = typer.Option(False, "--mcp-server", help="list the tools plugins expose over MCP instead"),
) -> None:
    """List agent tools (built-in and from plugins) with their descriptions."""
    from ..app import App, AppOptions

    with App.running(current(), AppOptions(startup_mode="tools")) as app:
        tools = app.plugins.hooks.pando_mcp_server_tools.flat(app=app) if mcp_server else app.coder_agent.tools()
        rows = [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no tools")
    width = max((len(r["name"]) for r in rows), default=0)
    for row in rows:
        first = next(iter((row["description"] or "").strip().splitlines()), "")
        typer.echo(f"{row['name']:<{width}}  {first}")


def register(cli: typer.Typer) -> None:
    cli.command("tools")(tools_command)
