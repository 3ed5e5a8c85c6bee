"""The pluggy wiring of pando-mcp: config sections, the catalog component, tools, commands, services.

Imported by every ``pando`` start with this plugin installed, so it imports only the core's light
modules; the SDK (``mcp``) is imported by ``client.py`` and ``server.py`` when a server is used.
"""

from __future__ import annotations

from pando_core import hookimpl
from pando_core.config import ConfigSection, Field

MCP_SECTION = ConfigSection(
    "mcp",
    {
        "servers": Field("dict", {}, "[mcp.servers.NAME]: type, command, args, env, url, headers, timeout, enabled, disabled_tools"),
        "read_mcp_json": Field("bool", True, "also read the project's .mcp.json (Claude Code's format)"),
        "gateway": Field("bool", False, "offer a searchable catalog and favorites instead of every tool"),
        "favorite_threshold": Field("int", 5, "gateway: calls within the window that make a tool a favorite"),
        "max_favorites": Field("int", 15, "gateway: favorites exposed as direct tools"),
        "favorite_window_days": Field("float", 30.0, "gateway: days of calls counted"),
        "decay_days": Field("float", 14.0, "gateway: a favorite not called for this long is dropped"),
    },
    "MCP servers whose tools the agent uses",
)

SERVER_SECTION = ConfigSection(
    "mcp_server",
    {
        "host": Field("str", "127.0.0.1", "pando mcp-server --http: address to bind"),
        "port": Field("int", 9777, "pando mcp-server --http: port"),
        "token": Field("str", "", "bearer token clients must send (required off loopback; or PANDO_MCP_TOKEN)", secret=True),
        "allow_write": Field("bool", False, "also expose write, edit and patch (still under [permissions])"),
        "allow_bash": Field("bool", False, "also expose bash (still under [permissions])"),
    },
    "pando as an MCP server",
)

# the agent expects a session in these modes: direct-mode servers are opened in the background
_AGENT_MODES = {"interactive", "run", "goal"}


@hookimpl
def pando_config_sections():
    return [MCP_SECTION, SERVER_SECTION]


@hookimpl
def pando_db_components():
    from .catalog import component

    return component()


@hookimpl
def pando_app_subsystems(app):
    from .subsystem import McpSubsystem

    return {"mcp": McpSubsystem.from_app(app)}


@hookimpl
def pando_started(app, role):
    if getattr(app.options, "startup_mode", "") in _AGENT_MODES:
        app.mcp.warm_up()


@hookimpl
def pando_register_tools(app):
    subsystem = getattr(app, "mcp", None)
    return subsystem.agent_tools(set()) if subsystem is not None else []


@hookimpl(optionalhook=True)
def pando_services(app):
    subsystem = getattr(app, "mcp", None)
    if subsystem is None or not subsystem.gateway:
        return []
    from .discovery import DiscoveryService

    return [DiscoveryService()]


@hookimpl
def pando_shutdown(app):
    subsystem = getattr(app, "mcp", None)
    if subsystem is not None:
        subsystem.close()


@hookimpl
def pando_register_commands(cli):
    from .cli import build_cli, mcp_server_command

    cli.add_typer(build_cli(), name="mcp", help="List, try and configure MCP servers.")
    cli.command("mcp-server", help="Serve pando's tools over MCP (stdio, or --http).")(mcp_server_command)
