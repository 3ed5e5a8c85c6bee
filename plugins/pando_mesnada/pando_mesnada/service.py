"""The primary-only service that runs the orchestrator: adoption at start (and after each
promotion, since the core starts the service again there), then a watch loop that records ends,
tails logs and starts queued tasks. Woken early by commits to the tasks table."""

from __future__ import annotations

import logging
import threading
from typing import Any

from pando_core.background import ThreadedService
from pando_core.errors import UnavailableError

from .orchestrator import Orchestrator

log = logging.getLogger("pando.mesnada")


class MesnadaService(ThreadedService):
    name = "mesnada"
    _orchestrator: Orchestrator | None = None
    _made = threading.Lock()

    def orchestrator_for(self, app: Any) -> Orchestrator:
        """The service's orchestrator, made on first use (a bus call may come before the thread runs)."""
        with self._made:
            if self._orchestrator is None:
                self._orchestrator = Orchestrator.for_app(app)
                result = self._orchestrator.adopt()
                if result["adopted"] or result["interrupted"]:
                    log.info("mesnada: re-adopted %s; interrupted %s", result["adopted"], result["interrupted"])
            return self._orchestrator

    def run(self, app: Any, stop: threading.Event) -> None:
        orchestrator = self.orchestrator_for(app)
        interval = float(orchestrator.config["poll_interval"])
        try:
            while not stop.is_set():
                try:
                    orchestrator.tick()
                except Exception:  # noqa: BLE001 - one bad pass is logged; the watch goes on
                    log.exception("mesnada: a pass of the orchestrator failed")
                orchestrator.wake.wait(interval)
                orchestrator.wake.clear()
        finally:
            orchestrator.close()
            with self._made:
                self._orchestrator = None  # started again after a later promotion: a fresh one

    def health(self) -> dict | None:
        orchestrator = self._orchestrator
        if orchestrator is None:
            return {"state": "starting"}
        return {"backend": orchestrator.config["backend"], "max_parallel": orchestrator.config["max_parallel"]}


def running_orchestrator(app: Any) -> Orchestrator:
    service = app.services.get("mesnada")
    if service is None:
        raise UnavailableError("the mesnada orchestrator is not running on the primary (is the plugin enabled there?)")
    return service.orchestrator_for(app)
