"""One long-lived MCP session per server per process, on an event loop thread the pool owns.

The SDK's client is an async context manager whose transports hold anyio task groups, so each
session lives inside one task (``_Session._serve``) for its whole life; calls from any thread or
event loop are handed to that loop. A session is opened on first use (or by ``discover``), kept
open, dropped when it fails (transport error, server exit, timeout) and opened again on the next
call; a tool that answers with an error result keeps its session. A server that cannot start costs
only its own timeout: servers are opened concurrently, and each failure is recorded in
``status(name)`` (``pando mcp list`` shows it). The ``mcp`` SDK is imported only here, when a
session is first opened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .config import ServerSpec

log = logging.getLogger("pando.mcp")
T = TypeVar("T")
CLOSE_TIMEOUT = 5.0


class McpError(Exception):
    """A server could not be reached or did not answer; the message is one line for the model."""


@dataclass
class ServerTool:
    """A tool as a server lists it."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool = False


@dataclass
class CallOutcome:
    text: str
    is_error: bool = False
    duration_ms: float = 0.0


@dataclass
class ServerStatus:
    state: str = "not connected"  # not connected | connected | failed | disabled
    tools: int | None = None
    last_error: str = ""
    connected_at: float | None = None


def convert_result(result: Any) -> str:
    """An MCP ``CallToolResult`` as text: every text item joined, other items summarised."""
    parts: list[str] = []
    for item in result.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        elif kind in ("image", "audio"):
            size = len(item.data) * 3 // 4  # base64
            parts.append(f"[{kind}: {item.mime_type}, {size} bytes]")
        elif kind == "resource":
            resource = item.resource
            body = getattr(resource, "text", None)
            size = len(body) if body is not None else len(getattr(resource, "blob", "")) * 3 // 4
            mime = getattr(resource, "mime_type", None) or "unknown type"
            parts.append(f"[resource: {resource.uri}, {mime}, {size} {'chars' if body is not None else 'bytes'}]")
        elif kind == "resource_link":
            parts.append(f"[resource link: {item.name} {item.uri}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _tool_from_sdk(server: str, tool: Any) -> ServerTool:
    annotations = tool.annotations
    schema = dict(tool.input_schema or {})
    if schema.get("type") != "object":  # the providers need an object schema
        schema = {"type": "object", "properties": {}}
    schema.setdefault("properties", {})  # a tool without parameters may send none
    return ServerTool(
        server=server,
        name=tool.name,
        description=tool.description or "",
        input_schema=schema,
        read_only=bool(annotations is not None and annotations.read_only_hint),
    )


def _one_line(exc: BaseException) -> str:
    """The innermost useful message of an exception (anyio wraps transport failures in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Session:
    """One open (or opening) session, served by one task on the pool's loop."""

    def __init__(self, spec: ServerSpec, errlog: Any, client_info: Any) -> None:
        self.spec = spec
        self._errlog = errlog
        self._client_info = client_info
        self.client: Any = None
        self.ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self.task = asyncio.ensure_future(self._serve())

    def _target(self) -> Any:
        spec = self.spec
        if spec.transport == "stdio":
            from mcp import StdioServerParameters

            return StdioServerParameters(command=spec.command, args=spec.args, env={**os.environ, **spec.env})
        if spec.transport == "sse":
            from mcp.client.sse import sse_client

            return sse_client(spec.url, headers=spec.headers or None, timeout=spec.connect_timeout)
        if spec.headers:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            return streamable_http_client(spec.url, http_client=create_mcp_http_client(headers=spec.headers))
        return spec.url

    async def _serve(self) -> None:
        from mcp import Client

        try:
            target = self._target()
            if self.spec.transport == "stdio":
                from mcp.client.stdio import stdio_client

                target = stdio_client(target, errlog=self._errlog)
            async with Client(target, mode="legacy", cache=None, client_info=self._client_info) as client:
                self.client = client
                self.ready.set_result(client)
                await self._closing.wait()
        except BaseException as exc:  # noqa: BLE001 - recorded; the session is dead either way
            if not self.ready.done():
                self.ready.set_exception(McpError(_one_line(exc)))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            if not self.ready.done():
                self.ready.set_exception(McpError("the connection closed"))
            self.client = None

    @property
    def alive(self) -> bool:
        return not self.task.done()

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        self._closing.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001
            self.task.cancel()


class McpPool:
    """The MCP sessions of this process, keyed by server name."""

    def __init__(self, specs: list[ServerSpec], log_dir: Path | None = None, version: str = "") -> None:
        self.specs = {spec.name: spec for spec in specs}
        self._log_dir = log_dir
        self._version = version
        self._statuses = {
            spec.name: ServerStatus(state="not connected" if spec.enabled else "disabled") for spec in specs
        }
        self._tools: dict[str, list[ServerTool]] = {}
        self._sessions: dict[str, _Session] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._errlogs: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    # -- the loop thread -------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._closed:
                raise McpError("the MCP client pool is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name="pando-mcp-pool", daemon=True)
                self._thread.start()
                started.wait(5.0)
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        """Schedule ``coro`` on the pool's loop; a ``concurrent.futures.Future``."""
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the pool's loop from a thread that is not running that loop."""
        return self.submit(coro).result(timeout)

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the pool's loop from another event loop."""
        return await asyncio.wrap_future(self.submit(coro))

    # -- sessions ----------------------------------------------------------------------------------

    def status(self, name: str) -> ServerStatus:
        return self._statuses.setdefault(name, ServerStatus())

    def _errlog(self, name: str) -> Any:
        """Where a stdio server's stderr goes: ``.pando/mcp/NAME.stderr.log`` (or /dev/null)."""
        handle = self._errlogs.get(name)
        if handle is None:
            if self._log_dir is not None:
                self._log_dir.mkdir(parents=True, exist_ok=True)
                handle = open(self._log_dir / f"{name}.stderr.log", "a", encoding="utf-8")  # noqa: SIM115
            else:
                handle = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
            self._errlogs[name] = handle
        return handle

    def _stderr_tail(self, name: str) -> str:
        if self._log_dir is None:
            return ""
        try:
            lines = (self._log_dir / f"{name}.stderr.log").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return lines[-1].strip()[:200] if lines else ""

    async def _session(self, name: str) -> Any:
        """The open client of ``name``, opening it when needed (on the pool's loop)."""
        spec = self.specs.get(name)
        if spec is None:
            raise McpError(f'no MCP server named "{name}"')
        if not spec.enabled:
            raise McpError(f'MCP server "{name}" is disabled')
        session = self._sessions.get(name)
        if session is not None and session.alive and session.client is not None:
            return session.client
        lock = self._opening.setdefault(name, asyncio.Lock())
        async with lock:
            session = self._sessions.get(name)
            if session is not None and session.alive and session.ready.done() and session.client is not None:
                return session.client
            if session is not None:
                await self._drop(name)
            from mcp import Implementation

            info = Implementation(name="pando", version=self._version or "0")
            session = self._sessions[name] = _Session(spec, self._errlog(name), info)
            status = self.status(name)
            try:
                client = await asyncio.wait_for(asyncio.shield(session.ready), spec.connect_timeout)
            except TimeoutError:
                await self._drop(name)
                message = f'MCP server "{name}" timed out during initialize after {spec.connect_timeout:g}s'
                status.state, status.last_error = "failed", message
                raise McpError(message) from None
            except McpError as exc:
                await self._drop(name)
                tail = self._stderr_tail(name)
                message = f'MCP server "{name}" failed to start: {exc}' + (f" (stderr: {tail})" if tail else "")
                status.state, status.last_error = "failed", message
                raise McpError(message) from None
            status.state, status.connected_at = "connected", time.time()
            return client

    async def _drop(self, name: str) -> None:
        session = self._sessions.pop(name, None)
        if session is not None:
            await session.close()
        status = self._statuses.get(name)
        if status is not None and status.state == "connected":
            status.state = "not connected"

    async def list_tools(self, name: str, refresh: bool = False) -> list[ServerTool]:
        """The tools of ``name`` (cached per process; ``disabled_tools`` left out)."""
        if not refresh and name in self._tools:
            return self._tools[name]
        spec = self.specs[name] if name in self.specs else None
        client = await self._session(name)
        try:
            listed = await asyncio.wait_for(client.list_tools(), spec.connect_timeout)
        except TimeoutError:
            await self._drop(name)
            raise McpError(f'MCP server "{name}" timed out during tools/list after {spec.connect_timeout:g}s') from None
        except Exception as exc:  # noqa: BLE001 - a broken session: drop it
            await self._drop(name)
            raise McpError(f'MCP server "{name}" tools/list failed: {_one_line(exc)}') from None
        hidden = set(spec.disabled_tools)
        tools = [_tool_from_sdk(name, tool) for tool in listed.tools if tool.name not in hidden]
        self._tools[name] = tools
        self.status(name).tools = len(tools)
        return tools

    async def discover(self, names: list[str] | None = None) -> dict[str, list[ServerTool] | McpError]:
        """Open every enabled server concurrently and list its tools; failures are values."""
        chosen = [n for n in (names or list(self.specs)) if self.specs[n].enabled]

        async def one(name: str) -> list[ServerTool] | McpError:
            try:
                return await self.list_tools(name)
            except McpError as exc:
                log.info("%s", exc)
                return exc

        results = await asyncio.gather(*(one(name) for name in chosen))
        return dict(zip(chosen, results, strict=True))

    async def call_tool(self, name: str, tool: str, arguments: dict[str, Any]) -> CallOutcome:
        """Call ``tool`` of server ``name``; a failed session is dropped (reopened next time)."""
        spec = self.specs.get(name)
        started = time.perf_counter()
        client = await self._session(name)
        try:
            result = await asyncio.wait_for(client.call_tool(tool, arguments), spec.call_timeout)
        except TimeoutError:
            await self._drop(name)
            message = f'MCP server "{name}" timed out during tool call "{tool}" after {spec.call_timeout:g}s'
            self.status(name).last_error = message
            raise McpError(message) from None
        except Exception as exc:  # noqa: BLE001 - transport failure, server exit, protocol error
            await self._drop(name)
            tail = self._stderr_tail(name)
            message = f'MCP server "{name}" tool call "{tool}" failed: {_one_line(exc)}' + (
                f" (stderr: {tail})" if tail else ""
            )
            self.status(name).last_error = message
            raise McpError(message) from None
        return CallOutcome(convert_result(result), bool(result.is_error), (time.perf_counter() - started) * 1000)

    # -- shutdown ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every session (stdio servers are stopped) and the loop thread."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            loop = self._loop
        if loop is not None:

            async def close_all() -> None:
                await asyncio.gather(*(self._drop(name) for name in list(self._sessions)), return_exceptions=True)

            try:
                asyncio.run_coroutine_threadsafe(close_all(), loop).result(CLOSE_TIMEOUT + 1)
            except Exception:  # noqa: BLE001 - closing goes on
                log.debug("closing MCP sessions failed", exc_info=True)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(CLOSE_TIMEOUT)
        for handle in self._errlogs.values():
            handle.close()
