"""The gateway's discovery, a primary-only service: it fills the catalog at start and after a
promotion (the core starts the service on whichever instance is primary), then waits."""

from __future__ import annotations

import logging

from pando_core.background import ThreadedService

from .gateway import discover_into_catalog

log = logging.getLogger("pando.mcp")


class DiscoveryService(ThreadedService):
    name = "mcp.discovery"

    def __init__(self) -> None:
        super().__init__()
        self.report: dict[str, str] = {}
        self.runs = 0

    def run(self, app, stop) -> None:  # noqa: ANN001 - the core's signature
        if stop.is_set():
            return
        try:
            self.report = discover_into_catalog(app, app.mcp.pool)
        except Exception as exc:  # noqa: BLE001 - reported by health(); the agent keeps its catalog
            log.warning("MCP discovery failed: %s", exc)
            self.report = {"error": str(exc)}
        self.runs += 1
        stop.wait()

    def health(self) -> dict:
        return {**(super().health() or {}), "runs": self.runs, "servers": self.report}
