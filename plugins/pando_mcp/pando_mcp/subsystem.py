"""``app.mcp``: the configured servers, this process's session pool, and the agent's MCP tools.

Built for every App (cheap: the configuration is read, nothing is started). The pool and its
loop thread exist from the first use; in direct mode the servers are opened in the background
when an agent session is expected (``warm_up``), and the tool list waits for that discovery at
most the longest connect timeout, so a server that does not start delays nothing after it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .config import ServerSpec, load_servers

log = logging.getLogger("pando.mcp")


class McpSubsystem:
    def __init__(self, app: Any, specs: list[ServerSpec], settings: dict[str, Any]) -> None:
        self.app = app
        self.specs = specs
        self.settings = settings
        self._pool: Any = None
        self._lock = threading.Lock()
        self._discovery: Any = None  # concurrent.futures.Future of pool.discover()
        self._reported = False

    @classmethod
    def from_app(cls, app: Any) -> McpSubsystem:
        settings = app.config.section("mcp")
        return cls(app, load_servers(settings, app.workdir), settings)

    @property
    def gateway(self) -> bool:
        return bool(self.settings.get("gateway"))

    @property
    def pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                from pando_core import __version__

                from .client import McpPool

                self._pool = McpPool(self.specs, self.app.data_dir("mcp") if hasattr(self.app, "data_dir") else
                                     self.app.workdir / ".pando" / "mcp", version=__version__)
            return self._pool

    def warm_up(self) -> None:
        """Start opening every enabled server in the background (direct mode)."""
        if self.gateway or not any(spec.enabled for spec in self.specs):
            return
        with self._lock:
            if self._discovery is not None:
                return
        pool = self.pool
        with self._lock:
            if self._discovery is None:
                self._discovery = pool.submit(pool.discover())

    def discovered(self) -> dict[str, Any]:
        """``{server: [ServerTool] | McpError}`` once discovery ended (waits for it, bounded)."""
        self.warm_up()
        if self._discovery is None:
            return {}
        deadline = max((spec.connect_timeout for spec in self.specs if spec.enabled), default=0) * 2 + 1
        first = not self._discovery.done()
        try:
            found = self._discovery.result(deadline)
        except Exception as exc:  # noqa: BLE001 - a broken discovery leaves the agent without MCP tools
            log.warning("MCP discovery did not finish: %s", exc)
            return {}
        if first or not self._reported:
            self._reported = True
            for server, tools in found.items():
                if isinstance(tools, Exception):
                    log.warning("%s", tools)  # once per process: the server's tools are missing
                    self.app.events.publish("mcp.server.failed", {"server": server, "error": str(tools)})
                else:
                    self.app.events.publish("mcp.server.connected", {"server": server, "tools": len(tools)})
        return found

    def agent_tools(self, taken: set[str]) -> list[Any]:
        if not any(spec.enabled for spec in self.specs):
            return []
        if self.gateway:
            from .gateway import gateway_tools

            return gateway_tools(self.app, self.pool, self.settings, taken)
        from .tools import direct_tools

        found = self.discovered()
        return direct_tools(self.pool, found, taken)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
