"""``pando mcp-server``: pando's tools served to MCP clients with the SDK's low-level server.

What is exposed: the read-only built-ins (view, ls, glob, grep) and the read-only tools plugins
give through ``pando_mcp_server_tools``; write/edit/patch (and plugin tools that change things)
only with ``[mcp_server] allow_write``, bash only with ``allow_bash`` -- and then every call is
still decided by ``[permissions]`` (there is nobody to ask: what is not allowed there is refused).

Security: over HTTP a client must send ``Authorization: Bearer TOKEN`` when a token is set
(``[mcp_server] token`` or ``PANDO_MCP_TOKEN``); binding to anything but loopback without a token
is refused at start. Each client connection gets a pando session ("MCP client NAME") in which
every call is stored like an agent's tool call.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import secrets
from typing import Any

from pando_core.agent.tools.base import PermissionDenied, ToolError, ToolResult, permission_requests
from pando_core.errors import UsageError

log = logging.getLogger("pando.mcp.server")

READ_ONLY_BUILTINS = ("view", "ls", "glob", "grep")
WRITE_BUILTINS = ("write", "edit", "patch")


def needs_no_token(host: str) -> bool:
    """Only the usual loopback addresses go without a token: any other address (127.0.0.2 too, which
    containers and port forwards may publish) counts as reachable from elsewhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host) in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    except ValueError:
        return False


def exposed_tools(app: Any, settings: dict[str, Any]) -> list[Any]:
    """The tools this server offers, by name (the first of a name wins)."""
    from pando_core.agent.tools.builtin import builtin_tools

    tool_config = dict(app.config.section("tools"), pager=app.pager)
    builtins = {tool.name: tool for tool in builtin_tools(tool_config)}
    wanted = list(READ_ONLY_BUILTINS)
    if settings.get("allow_write"):
        wanted += WRITE_BUILTINS
    if settings.get("allow_bash"):
        wanted.append("bash")
    tools = [builtins[name] for name in wanted if name in builtins]
    for tool in app.plugins.hooks.pando_mcp_server_tools.flat(app=app):
        if getattr(tool, "read_only", False) or settings.get("allow_write"):
            tools.append(tool)
    unique: dict[str, Any] = {}
    for tool in tools:
        unique.setdefault(tool.name, tool)
    return list(unique.values())


def _is_read_only(tool: Any) -> bool:
    return bool(getattr(tool, "read_only", False)) or tool.name in READ_ONLY_BUILTINS


class ToolHost:
    """Runs exposed tools for MCP clients and records each call in the client's pando session."""

    def __init__(self, app: Any, tools: list[Any]) -> None:
        self.app = app
        self.tools = {tool.name: tool for tool in tools}
        self._sessions: dict[str, str] = {}  # connection key -> pando session id

    def _session_for(self, key: str, client_name: str) -> str:
        session_id = self._sessions.get(key)
        if session_id is None:
            session = self.app.sessions.create(title=f"MCP client {client_name}")
            session_id = self._sessions[key] = session["id"]
        return session_id

    async def call(self, name: str, args: dict[str, Any], connection: str, client_name: str) -> ToolResult:
        tool = self.tools.get(name)
        if tool is None:
            return ToolResult(f"Tool not found: {name}", is_error=True)
        app = self.app
        session_id = await asyncio.to_thread(self._session_for, connection, client_name)
        call_id = "mcp_" + secrets.token_hex(6)
        call_part = {"id": call_id, "name": name, "input": json.dumps(args), "type": "function", "finished": True}
        message = await asyncio.to_thread(app.messages.create, session_id, "assistant", [{"type": "tool_call", "data": call_part}])
        ctx = app.tool_context(session_id, message["id"], call_id, None)
        try:
            args = await app.plugins.hooks.pando_before_tool_call.acall(
                arguments=args, app=app, session_id=session_id, tool_name=name
            )
            for request in await permission_requests(tool, args, ctx):
                await ctx.ask(request)  # the core's check, as in the agent loop (nobody to ask here)
            result = await tool.run(args, ctx)
        except (PermissionDenied, ToolError) as exc:
            result = ToolResult(str(exc), is_error=True)
        except Exception as exc:  # noqa: BLE001 - a broken tool answers with an error, the server goes on
            log.exception("tool %s failed", name)
            result = ToolResult(f"{name} failed: {type(exc).__name__}: {exc}", is_error=True)
        after = await app.plugins.hooks.pando_after_tool_call.acall(
            result=result, app=app, session_id=session_id, tool_name=name, arguments=args
        )
        if isinstance(after, str):
            after = ToolResult(after, result.is_error, result.metadata)
        part = {
            "tool_call_id": call_id,
            "name": name,
            "content": after.content,
            "metadata": json.dumps(after.metadata, default=str),
            "is_error": after.is_error,
        }
        await asyncio.to_thread(app.messages.create, session_id, "tool", [{"type": "tool_result", "data": part}])
        return after


def build_server(host: ToolHost) -> Any:
    """The SDK's low-level server, listing and calling ``host``'s tools."""
    from mcp import types
    from mcp.server.lowlevel import Server

    from pando_core import __version__

    def listed(tool: Any) -> Any:
        annotations = types.ToolAnnotations(read_only_hint=_is_read_only(tool))
        return types.Tool(name=tool.name, description=tool.description, input_schema=tool.parameters, annotations=annotations)

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=[listed(tool) for tool in host.tools.values()])

    async def call_tool(ctx: Any, params: Any) -> Any:
        request = getattr(ctx, "request", None)
        headers = getattr(request, "headers", None)
        connection = (headers.get("mcp-session-id") if headers is not None else None) or f"conn-{id(ctx.session)}"
        client = getattr(getattr(ctx.session, "client_params", None), "client_info", None)
        result = await host.call(params.name, dict(params.arguments or {}), connection, getattr(client, "name", "") or "?")
        return types.CallToolResult(content=[types.TextContent(text=result.content)], is_error=result.is_error)

    return Server("pando", version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


def require_token(asgi_app: Any, token: str) -> Any:
    """``asgi_app`` answering 401 to HTTP requests without ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="pando"'),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await asgi_app(scope, receive, send)

    return guarded


def serve(context: Any, *, http: bool = False, host: str | None = None, port: int | None = None) -> None:
    from pando_core.app import App, AppOptions

    settings = context.config.section("mcp_server")
    host = host or settings["host"]
    port = port if port is not None else settings["port"]
    token = settings.get("token") or context.env.get("PANDO_MCP_TOKEN", "") or os.environ.get("PANDO_MCP_TOKEN", "")
    if http and not needs_no_token(host) and not token:
        raise UsageError(
            f"binding to {host} exposes pando's tools to the network: set [mcp_server] token or PANDO_MCP_TOKEN"
        )
    with App.running(context, AppOptions(startup_mode="mcp-server")) as app:
        tool_host = ToolHost(app, exposed_tools(app, settings))
        server = build_server(tool_host)
        if http:
            asyncio.run(_serve_http(server, host, port, token))
        else:
            asyncio.run(_serve_stdio(server))


async def _serve_stdio(server: Any) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def _serve_http(server: Any, host: str, port: int, token: str) -> None:
    import uvicorn

    asgi = server.streamable_http_app(streamable_http_path="/mcp", host=host)
    if token:
        asgi = require_token(asgi, token)
    config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()
