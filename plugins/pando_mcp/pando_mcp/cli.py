"""``pando mcp list|tools|call|add|remove`` and ``pando mcp-server``.

The listing commands read the configuration and open the servers themselves (no App, no
database): they work the same in a directory where another pando runs. Expected failures are one
line on stderr and exit 1; a tool that answers with an error exits 1 too.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from pando_core.errors import PandoError

_SOURCE_HELP = "COMMAND and its ARGS after --, e.g. pando mcp add time -- uvx mcp-server-time"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _specs() -> tuple[Any, list[Any]]:
    from pando_core.context import current

    from .config import load_servers

    context = current()
    try:
        return context, load_servers(context.config.section("mcp"), context.workdir, context.env)
    except PandoError as exc:
        raise _fail(str(exc)) from None


def _pool(context: Any, specs: list[Any]) -> Any:
    from .client import McpPool

    return McpPool(specs, context.pando_dir / "mcp")


def build_cli() -> typer.Typer:
    app = typer.Typer(help="List, try and configure MCP servers.", no_args_is_help=True)

    @app.command("list")
    def list_servers(
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
        no_connect: bool = typer.Option(False, "--no-connect", help="do not start the servers to count tools"),
    ) -> None:
        """The configured servers: where each is declared, its transport, whether it answers, its tools."""
        context, specs = _specs()
        found: dict[str, Any] = {}
        pool = None
        if specs and not no_connect:
            pool = _pool(context, specs)
            try:
                found = pool.run_sync(pool.discover())
            finally:
                pool.close()
        rows = []
        for spec in specs:
            result = found.get(spec.name)
            status = "disabled" if not spec.enabled else "not checked"
            tools = None
            error = "; ".join(spec.warnings)
            if isinstance(result, Exception):
                status, error = "failed", str(result)
            elif result is not None:
                status, tools = "ok", len(result)
            rows.append(
                {
                    "name": spec.name,
                    "source": spec.source,
                    "type": spec.transport,
                    "target": spec.describe(),
                    "status": status,
                    "tools": tools,
                    "last_error": error,
                }
            )
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            typer.echo("no MCP servers configured (add one with: pando mcp add NAME -- COMMAND ARGS...)")
            return
        for row in rows:
            count = "" if row["tools"] is None else f"  {row['tools']} tools"
            typer.echo(f"{row['name']}  [{row['type']}]  {row['status']}{count}  ({row['source']})")
            typer.echo(f"    {row['target']}")
            if row["last_error"]:
                typer.echo(f"    {row['last_error']}")

    @app.command("tools")
    def list_tools(
        server: str = typer.Argument(None, help="only this server's tools"),
        as_json: bool = typer.Option(False, "--json", help="print JSON (with input schemas)"),
    ) -> None:
        """The tools of every server (or one), with descriptions and input schemas."""
        context, specs = _specs()
        if server is not None:
            specs = [spec for spec in specs if spec.name == server]
            if not specs:
                raise _fail(f'no MCP server named "{server}" (see pando mcp list)')
        pool = _pool(context, specs)
        try:
            found = pool.run_sync(pool.discover())
        finally:
            pool.close()
        rows, errors = [], []
        for _name, tools in found.items():
            if isinstance(tools, Exception):
                errors.append(str(tools))
                continue
            rows += [
                {
                    "server": t.server,
                    "name": t.name,
                    "description": t.description,
                    "read_only": t.read_only,
                    "input_schema": t.input_schema,
                }
                for t in tools
            ]
        for error in errors:
            typer.echo(f"warning: {error}", err=True)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
        else:
            for row in rows:
                first = next(iter(row["description"].strip().splitlines()), "")
                props = ", ".join((row["input_schema"].get("properties") or {}).keys())
                typer.echo(f"{row['server']}/{row['name']}({props})  {first}")
        if errors and not rows:
            raise typer.Exit(1)

    @app.command("call")
    def call(
        server: str = typer.Argument(..., help="server name"),
        tool: str = typer.Argument(..., help="tool name as the server lists it"),
        args: str = typer.Option("{}", "--args", help="the tool's arguments as a JSON object"),
    ) -> None:
        """Call one tool and print its result (exit 1 when the tool reports an error)."""
        from pando_core.agent.tools.arguments import ArgumentsError, repair_arguments

        from .client import McpError

        try:
            arguments = repair_arguments(args)
        except ArgumentsError as exc:
            raise _fail(f"--args: {exc}", 2) from None
        context, specs = _specs()
        if not any(spec.name == server for spec in specs):
            raise _fail(f'no MCP server named "{server}" (see pando mcp list)')
        pool = _pool(context, specs)
        try:
            outcome = pool.run_sync(pool.call_tool(server, tool, arguments))
        except McpError as exc:
            raise _fail(str(exc)) from None
        finally:
            pool.close()
        typer.echo(outcome.text)
        if outcome.is_error:
            raise typer.Exit(1)

    @app.command("add", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def add(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="the server's name (its tools become NAME_TOOL)"),
        url: str = typer.Option("", "--url", help="a remote server's URL (instead of a command)"),
        transport: str = typer.Option("", "--transport", help="http (default with --url) or sse"),
        env: list[str] = typer.Option([], "--env", help="K=V for the server's environment (repeatable)"),
        header: list[str] = typer.Option([], "--header", help="K=V HTTP header (repeatable)"),
        timeout: str = typer.Option("", "--timeout", help="seconds (or 45s, 2m) per operation"),
    ) -> None:
        """Add a server to the project's .pando.toml (keeping its other content and comments).

        pando mcp add time -- mcp-server-time --local-timezone UTC
        pando mcp add docs --url https://example.com/mcp
        """
        from pando_core.context import current

        from .settings_file import add_server

        command = list(ctx.args)
        try:
            path = add_server(
                current().workdir,
                name,
                command=command,
                url=url,
                transport=transport,
                env=env,
                headers=header,
                timeout=timeout,
            )
        except PandoError as exc:
            raise _fail(str(exc)) from None
        typer.echo(f"added MCP server {name} to {path}")

    @app.command("remove")
    def remove(name: str = typer.Argument(..., help="the server's name")) -> None:
        """Remove a server from the project's .pando.toml."""
        from pando_core.context import current

        from .settings_file import remove_server

        try:
            path = remove_server(current().workdir, name)
        except PandoError as exc:
            raise _fail(str(exc)) from None
        typer.echo(f"removed MCP server {name} from {path}")

    return app


def mcp_server_command(
    http: bool = typer.Option(False, "--http", help="serve streamable HTTP at /mcp instead of stdio"),
    host: str = typer.Option(None, "--host", help="address to bind with --http (default [mcp_server] host)"),
    port: int = typer.Option(None, "--port", help="port with --http (default [mcp_server] port, 9777)"),
) -> None:
    """Serve pando's tools to MCP clients: read-only tools by default; write/edit/patch with
    [mcp_server] allow_write, bash with allow_bash. Off loopback a bearer token is required
    ([mcp_server] token or PANDO_MCP_TOKEN)."""
    from pando_core.context import current

    from .server import serve

    try:
        serve(current(), http=http, host=host, port=port)
    except PandoError as exc:
        raise _fail(str(exc)) from None
