"""The MCP servers an editor names in ``session/new`` / ``session/load``, run for that session.

Each stdio entry (name, command, args, env) becomes a pando-mcp server of its own pool (one per
ACP session: the servers and their processes belong to the session, not to the project's
``[mcp.servers]``). They are started in the background when the session is created or loaded; a
prompt waits for them at most the connect timeout, and their tools, named ``<server>_<tool>`` as
pando-mcp names them, join that session's turns only (the plugin's ``pando_register_tools`` finds
them through the running turn). The pool is closed (its servers stopped) when the session is loaded
again with other servers and when ``pando acp`` exits. Without the pando-mcp plugin loaded the
entries are ignored with a logged notice; HTTP and SSE entries are not taken (``initialize`` does
not offer them).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("pando.acp")


def mcp_available(app: Any) -> bool:
    """pando-mcp installed and loaded (``--plugins`` / ``PANDO_PLUGINS`` may leave it out)."""
    if "mcp" not in app.plugins.loaded():
        return False
    try:
        import pando_mcp.client  # noqa: F401
    except ImportError:
        return False
    return True


def stdio_specs(entries: list[Any], source: str) -> list[Any]:
    """pando-mcp's ``ServerSpec`` of every stdio entry; the others are logged and left out."""
    from pando_mcp.config import ServerSpec

    specs = []
    for entry in entries:
        command = getattr(entry, "command", None)
        if not command or getattr(entry, "type", None) in ("http", "sse"):
            log.info("MCP server %r from the editor ignored: pando acp takes stdio servers only", getattr(entry, "name", "?"))
            continue
        env = {variable.name: variable.value for variable in (entry.env or [])}
        specs.append(ServerSpec(name=entry.name, transport="stdio", source=source, command=command, args=list(entry.args or []), env=env))
    return specs


class SessionServers:
    """One session's MCP servers: their pool, the discovery under way, then their agent tools."""

    def __init__(self, app: Any, specs: list[Any]) -> None:
        from pando_mcp.client import McpPool

        from pando_core import __version__

        self.names = [spec.name for spec in specs]
        self.pool = McpPool(specs, app.data_dir("acp") / "mcp", version=__version__)
        self.connect_timeout = max(spec.connect_timeout for spec in specs)
        self._discovery = self.pool.submit(self.pool.discover())
        self.tools: list[Any] = []
        self._ready = False

    @classmethod
    def start(cls, app: Any, entries: list[Any] | None, source: str) -> SessionServers | None:
        if not entries:
            return None
        if not mcp_available(app):
            names = ", ".join(getattr(e, "name", "?") for e in entries)
            log.warning("the editor's MCP servers (%s) are ignored: the pando-mcp plugin is not installed or not enabled", names)
            return None
        specs = stdio_specs(entries, source)
        return cls(app, specs) if specs else None

    async def ready(self) -> list[Any]:
        """The servers' tools, once they answered (waits at most twice the connect timeout, once)."""
        if self._ready:
            return self.tools
        from pando_mcp.tools import direct_tools

        self._ready = True
        try:
            found = await asyncio.wait_for(asyncio.wrap_future(self._discovery), self.connect_timeout * 2 + 1)
        except Exception as exc:  # noqa: BLE001 - the turn goes on without these tools
            log.warning("the editor's MCP servers did not start: %s", exc)
            return self.tools
        for name, tools in found.items():
            if isinstance(tools, Exception):
                log.warning("%s", tools)
            else:
                log.info("MCP server %r from the editor: %d tools", name, len(tools))
        self.tools = direct_tools(self.pool, found)
        return self.tools

    def close(self) -> None:
        """Stop the servers (blocks at most a few seconds)."""
        self.pool.close()
