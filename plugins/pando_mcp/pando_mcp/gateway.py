"""Gateway mode: two proxy tools over the catalog, plus the user's favorite tools exposed directly.

Instead of every server tool in every request (thousands of prompt tokens with a few servers),
the agent gets ``mcp_query_catalog`` to find tools and ``mcp_call_tool`` to call one, plus the
tools it calls most (favorites, see ``catalog.py``) as ordinary ``<server>_<tool>`` tools. Every
call routed here, favorites included, records a usage row with the calling session's id; on a
secondary the core sends the row to the primary. Discovery fills the catalog on the primary
(``discover_into_catalog``, run by the ``mcp.discovery`` service); secondaries only read it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from pando_core.agent.tools.arguments import ArgumentsError, repair_arguments
from pando_core.agent.tools.base import PermissionRequest, ToolContext, ToolResult

from .tools import McpTool, agent_tool_name, call_as_result, describe_arguments

log = logging.getLogger("pando.mcp")


def now_ms() -> int:
    return int(time.time() * 1000)


def discover_into_catalog(app: Any, pool: Any) -> dict[str, str]:
    """List every enabled server's tools and store them; per server "N tools" or the error."""
    found = pool.run_sync(pool.discover())
    report: dict[str, str] = {}
    for server, tools in found.items():
        if isinstance(tools, Exception):
            report[server] = str(tools)  # its old rows stay: the catalog still names them
            continue
        rows = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema, "read_only": t.read_only}
            for t in tools
        ]
        app.store.mcp_catalog.replace_server(server=server, tools=rows, discovered_at=now_ms())
        report[server] = f"{len(rows)} tools"
    app.events.publish("mcp.tools.discovered", {"servers": report})
    return report


class UsageRecorder:
    """Writes a usage row per gateway-routed call (a failure to record never fails the call)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, target: tuple[str, str], ctx: ToolContext, outcome: Any) -> None:
        server, tool = target
        try:
            self.app.store.mcp_catalog.record_usage(
                tool_id=f"{server}/{tool}",
                called_at=now_ms(),
                duration_ms=round(outcome.duration_ms, 3),
                success=not outcome.is_error,
                session_id=ctx.session_id,
                instance_id=self.app.instance_id,
            )
        except Exception as exc:  # noqa: BLE001 - statistics are best effort
            log.warning("recording MCP usage of %s/%s failed: %s", server, tool, exc)


class QueryCatalogTool:
    name = "mcp_query_catalog"
    description = (
        "Search the catalog of tools offered by the configured MCP servers. Give words from what you "
        "want to do (matched against tool names, server names and descriptions); you get each matching "
        "tool's name, server, description and input schema. Then call it with mcp_call_tool."
    )
    parameters = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "words to look for; empty lists every tool"},
            "max_results": {"type": "integer", "description": "at most this many tools (default 10)"},
        },
        "required": ["query"],
    }
    read_only = True

    def __init__(self, app: Any) -> None:
        self.app = app

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        import asyncio

        query = str(args.get("query") or "")
        try:
            limit = max(1, min(int(args.get("max_results") or 10), 100))
        except (TypeError, ValueError):
            return ToolResult("max_results must be an integer", is_error=True)
        rows = await asyncio.to_thread(self.app.store.mcp_catalog.search, query=query, limit=limit)
        if not rows:
            return ToolResult(f'No tools found matching "{query}". Try other or fewer words.')
        listed = [
            {"tool_name": r["tool"], "server_name": r["server"], "description": r["description"], "input_schema": r["input_schema"]}
            for r in rows
        ]
        return ToolResult(json.dumps(listed, ensure_ascii=False, indent=1))


class CallToolTool:
    name = "mcp_call_tool"
    description = (
        "Call a tool of an MCP server found with mcp_query_catalog. tool_name is the tool's name (or "
        "server/tool), server_name the server's (needed when two servers have a tool of that name), "
        "parameters the tool's arguments as an object matching its input schema."
    )
    parameters = {
        "type": "object",
        "properties": {
            "tool_name": {"type": "string"},
            "parameters": {"type": "object", "description": "the tool's arguments"},
            "server_name": {"type": "string"},
        },
        "required": ["tool_name"],
    }
    read_only = False  # which tool runs depends on the arguments: permission() decides per call

    def __init__(self, app: Any, pool: Any, record: UsageRecorder) -> None:
        self.app = app
        self.pool = pool
        self.record = record

    def _resolve(self, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(catalog row, arguments) for a call; raises ToolError-worthy ValueErrors."""
        from pando_core.errors import NotFoundError

        tool_name = str(args.get("tool_name") or "").strip()
        if not tool_name:
            raise ValueError("tool_name is required")
        server = str(args.get("server_name") or "").strip() or None
        try:
            row = self.app.store.mcp_catalog.get(tool=tool_name, server=server)
        except NotFoundError as exc:
            raise ValueError(f"{exc}; search for it with mcp_query_catalog") from None
        try:
            arguments = repair_arguments(args.get("parameters"), row["input_schema"])
        except ArgumentsError as exc:
            raise ValueError(f"parameters: {exc}") from None
        return row, arguments

    async def permission(self, args: dict[str, Any], ctx: ToolContext) -> PermissionRequest | None:
        try:
            row, arguments = self._resolve(args)
        except ValueError:
            return None  # run() answers with the error; there is nothing to allow
        if row["read_only"]:
            return None
        return PermissionRequest(
            tool_name=self.name,
            action="execute",
            description=f'MCP server "{row["server"]}" tool "{row["tool"]}" {describe_arguments(arguments)}',
            params={"server": row["server"], "tool": row["tool"], "arguments": arguments},
        )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        import asyncio

        try:
            row, arguments = await asyncio.to_thread(self._resolve, args)
        except ValueError as exc:
            return ToolResult(str(exc), is_error=True)
        if row["server"] not in self.pool.specs:
            return ToolResult(f'MCP server "{row["server"]}" is no longer configured', is_error=True)

        def record(target: tuple[str, str], call_ctx: ToolContext, outcome: Any) -> None:
            # off the event loop: on a secondary this is a round trip to the primary
            pending.append(asyncio.to_thread(self.record, target, call_ctx, outcome))

        pending: list[Any] = []
        result = await call_as_result(self.pool, row["server"], row["tool"], arguments, ctx, record)
        await asyncio.gather(*pending)
        return result


class FavoriteTool(McpTool):
    """A favorite: a direct tool whose calls are recorded like the gateway's (the Go bug fixed)."""

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        import asyncio

        pending: list[Any] = []
        recorder = self._on_called

        def record(target: tuple[str, str], call_ctx: ToolContext, outcome: Any) -> None:
            pending.append(asyncio.to_thread(recorder, target, call_ctx, outcome))

        result = await call_as_result(self.pool, self.server, self.tool, args, ctx, record)
        await asyncio.gather(*pending)
        return result


def gateway_tools(app: Any, pool: Any, settings: dict[str, Any], taken: set[str]) -> list[Any]:
    """The two proxies and the current favorites (computed now, when the tool list is built)."""
    from .client import ServerTool

    record = UsageRecorder(app)
    tools: list[Any] = [QueryCatalogTool(app), CallToolTool(app, pool, record)]
    names = set(taken) | {tool.name for tool in tools}
    rows = app.store.mcp_catalog.favorites(
        now=now_ms(),
        threshold=int(settings["favorite_threshold"]),
        limit=int(settings["max_favorites"]),
        window_days=float(settings["favorite_window_days"]),
        decay_days=float(settings["decay_days"]),
    )
    for row in rows:
        if row["server"] not in pool.specs:
            continue
        server_tool = ServerTool(row["server"], row["tool"], row["description"], row["input_schema"], row["read_only"])
        tools.append(FavoriteTool(pool, server_tool, agent_tool_name(row["server"], row["tool"], names), record))
    return tools
