"""The orchestrator: who holds it, and the service that drives it.

It runs where the services run (``app.runs_services``: the primary, or in team mode the holder
of the team lease). The orchestrator of an App is made on first use there -- by the service when the core
starts it, or by a bus call that arrives first (just after a promotion, the methods are served
before the services have started) -- and adopts the running tasks when it is made. The service's
watch loop records ends, tails logs and starts queued tasks, woken early by commits to the tasks
table; when the core stops the service (shutdown, fencing), the orchestrator is dropped and the
next promotion makes a fresh one.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from pando_core.background import ThreadedService
from pando_core.errors import UnavailableError

from .orchestrator import Orchestrator

log = logging.getLogger("pando.mesnada")


class OrchestratorHolder:
    def __init__(self, app: Any) -> None:
        self._app = weakref.ref(app)
        self._lock = threading.Lock()
        self.current: Orchestrator | None = None
        self._desk: Orchestrator | None = None

    def get(self) -> Orchestrator:
        app = self._app()
        if app is None:
            raise UnavailableError("the mesnada orchestrator runs on the primary; this instance is not it")
        if not app.runs_services:
            raise app.services_unavailable("the mesnada orchestrator")
        with self._lock:
            if self.current is None:
                orchestrator = Orchestrator.for_app(app)
                result = orchestrator.adopt()
                if result["adopted"] or result["interrupted"]:
                    log.info("mesnada: re-adopted %s; interrupted %s", result["adopted"], result["interrupted"])
                self.current = orchestrator
            return self.current

    def desk(self) -> Orchestrator:
        """Team mode, on a local primary that does not hold the team lease: an orchestrator that
        only reads and queues (spawn records the task as pending, nothing is started here). The
        lease holder's orchestrator hears the new row by NOTIFY and starts it."""
        app = self._app()
        if app is None or not getattr(app, "team", False):
            return self.get()
        with self._lock:
            if self._desk is None:
                self._desk = Orchestrator.for_app(app, queue_only=True)
            return self._desk

    def reset(self) -> None:
        with self._lock:
            orchestrator, self.current = self.current, None
        if orchestrator is not None:
            orchestrator.close()


_holders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_holders_lock = threading.Lock()


def holder_for(app: Any) -> OrchestratorHolder:
    with _holders_lock:
        holder = _holders.get(app)
        if holder is None:
            holder = _holders[app] = OrchestratorHolder(app)
        return holder


def running_orchestrator(app: Any) -> Orchestrator:
    return holder_for(app).get()


def queueing_orchestrator(app: Any) -> Orchestrator:
    """For the methods that only read or queue (spawn, get, list, wait, output, stats): the
    running orchestrator where the services run; in team mode elsewhere, one that only queues."""
    if app.runs_services:
        return holder_for(app).get()
    return holder_for(app).desk()


class MesnadaService(ThreadedService):
    name = "mesnada"

    def run(self, app: Any, stop: threading.Event) -> None:
        holder = holder_for(app)
        orchestrator = holder.get()
        self._orchestrator = orchestrator
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
            self._orchestrator = None
            holder.reset()

    def health(self) -> dict | None:
        orchestrator = getattr(self, "_orchestrator", None)
        if orchestrator is None:
            return {"state": "starting"}
        return {"backend": orchestrator.config["backend"], "max_parallel": orchestrator.config["max_parallel"]}
