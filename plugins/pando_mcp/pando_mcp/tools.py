"""Direct mode: every tool of every server as an agent tool named ``<server>_<tool>``.

A tool is read-only (never asked about) only when its server marks it ``readOnlyHint``; any other
is asked about by the core before it runs, like a built-in tool that changes things. The core's
loop runs the ``before/after_tool_call`` hooks (Lua filters included) and pages large results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from pando_core.agent.tools.base import PermissionRequest, ToolContext, ToolResult

# OpenAI, Anthropic and Gemini all accept ^[a-zA-Z0-9_-]{1,64}$
MAX_NAME = 64
_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9_-]")


def agent_tool_name(server: str, tool: str, taken: set[str]) -> str:
    """``<server>_<tool>`` in the providers' alphabet, at most 64 characters, not in ``taken``."""
    base = _NOT_ALLOWED.sub("_", f"{server}_{tool}")[:MAX_NAME] or "mcp_tool"
    name, n = base, 2
    while name in taken:
        suffix = f"_{n}"
        name, n = base[: MAX_NAME - len(suffix)] + suffix, n + 1
    taken.add(name)
    return name


def describe_arguments(args: dict[str, Any], limit: int = 300) -> str:
    text = json.dumps(args, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class McpTool:
    """One server tool, called through the process's pooled session."""

    def __init__(
        self,
        pool: Any,
        server_tool: Any,
        name: str,
        on_called: Callable[[Any, ToolContext, Any], None] | None = None,
    ) -> None:
        self.pool = pool
        self.server = server_tool.server
        self.tool = server_tool.name
        self.name = name
        self.description = server_tool.description or f'Tool "{self.tool}" of MCP server "{self.server}".'
        self.parameters = server_tool.input_schema
        self.read_only = server_tool.read_only
        self._on_called = on_called  # the gateway records usage of its favorites here

    async def permission(self, args: dict[str, Any], ctx: ToolContext) -> PermissionRequest:
        return PermissionRequest(
            tool_name=self.name,
            action="execute",
            description=f'MCP server "{self.server}" tool "{self.tool}" {describe_arguments(args)}',
            params={"server": self.server, "tool": self.tool, "arguments": args},
        )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await call_as_result(self.pool, self.server, self.tool, args, ctx, self._on_called)


async def call_as_result(
    pool: Any,
    server: str,
    tool: str,
    args: dict[str, Any],
    ctx: ToolContext,
    on_called: Callable[[Any, ToolContext, Any], None] | None = None,
) -> ToolResult:
    """Call a server tool; an unreachable or failing server is an error result, never an exception."""
    from .client import CallOutcome, McpError

    try:
        outcome = await pool.run_async(pool.call_tool(server, tool, args))
    except McpError as exc:
        outcome = CallOutcome(str(exc), is_error=True)
        result = ToolResult(str(exc), is_error=True, metadata={"mcp_server": server, "mcp_tool": tool})
    else:
        result = ToolResult(
            outcome.text,
            outcome.is_error,
            {"mcp_server": server, "mcp_tool": tool, "duration_ms": round(outcome.duration_ms, 3)},
        )
    if on_called is not None:
        on_called((server, tool), ctx, outcome)
    return result


def direct_tools(pool: Any, discovered: dict[str, Any], taken: Iterable[str] = ()) -> list[McpTool]:
    """Agent tools for every tool discovered (servers that failed give none)."""
    names = set(taken)
    tools: list[McpTool] = []
    for server_tools in discovered.values():
        if isinstance(server_tools, Exception):
            continue
        for server_tool in server_tools:
            tools.append(McpTool(pool, server_tool, agent_tool_name(server_tool.server, server_tool.name, names)))
    return tools
