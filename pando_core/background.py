"""Role-scoped background services: plugin work that runs only on the primary.

A plugin declares services with ``pando_services``; the core starts them when this instance is the
primary (after its bus is set up, at start and after a promotion) and stops them on shutdown, when
the primary fences itself, or if it stops being primary. In team mode the team lease decides
instead (``pando_core.runtime.team``); ``app.runs_services`` is where they run either way. Secondaries never run them: they reach a
service through its plugin's bus methods (``app.call_primary``). A service that fails to start or
to stop is reported like any plugin error; the others go on.

Most services are a loop on a thread: subclass :class:`ThreadedService` and write ``run(app,
stop)`` (or ``async def run``); the core owns the thread, the stop event and the join with a
deadline. :class:`BackgroundService` is the general shape for a service that manages itself.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("pando.services")

STOP_TIMEOUT_S = 5.0


class BackgroundService:
    """A primary-only service: ``name``, ``start(app)``, ``stop(timeout)``, ``health()``."""

    name: str = ""

    def start(self, app: Any) -> None:
        """Begin the work; return promptly (start threads or tasks, do not block)."""

    def stop(self, timeout: float) -> bool:
        """Stop within *timeout* seconds; True when it did."""
        return True

    def health(self) -> dict[str, Any] | None:
        """What ``pando status`` shows for it (None: nothing more than running)."""
        return None


class ThreadedService(BackgroundService):
    """A service whose work is ``run(app, stop)`` on a thread the core owns.

    ``run`` returns when ``stop`` is set (wait on it: ``while not stop.wait(interval): ...``). An
    ``async def run`` runs on an event loop of its own; ``stop`` is still a ``threading.Event``
    (poll it, or ``await asyncio.to_thread(stop.wait)``). An exception ending ``run`` is reported
    as the plugin's error and the service is marked failed.
    """

    def run(self, app: Any, stop: threading.Event) -> Any:  # pragma: no cover - to be overridden
        raise NotImplementedError

    def start(self, app: Any) -> None:
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, args=(app,), name=f"pando-service-{self.name}", daemon=True)
        self._thread.start()

    def _main(self, app: Any) -> None:
        import inspect

        try:
            outcome = self.run(app, self._stop)
            if inspect.isawaitable(outcome):
                import asyncio

                async def wait() -> Any:
                    return await outcome

                asyncio.run(wait())
        except BaseException as exc:  # noqa: BLE001 - reported, never fatal to pando
            self._error = exc
            plugins = getattr(app, "plugins", None)
            if plugins is not None and isinstance(exc, Exception):
                plugins.record_hook_error(getattr(self, "plugin", "") or self.name, f"service {self.name}", exc)
            else:
                log.exception("service %s failed", self.name)

    @property
    def running(self) -> bool:
        thread = getattr(self, "_thread", None)
        return thread is not None and thread.is_alive()

    def stop(self, timeout: float) -> bool:
        stop = getattr(self, "_stop", None)
        if stop is None:
            return True
        stop.set()
        thread = self._thread
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def health(self) -> dict[str, Any] | None:
        error = getattr(self, "_error", None)
        return {"error": f"{type(error).__name__}: {error}"} if error is not None else None


class ServiceManager:
    """``app.services``: the declared services, started while this instance is the primary."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.declared: list[BackgroundService] = []
        self.running: dict[str, BackgroundService] = {}
        self.problems: dict[str, str] = {}  # service name -> why it is not running
        self._lock = threading.RLock()
        self._collected = False

    def _collect(self) -> None:
        if self._collected:
            return
        self._collected = True
        self.declared.extend(self._core_services())
        for plugin, declared in self.app.plugins.hooks.pando_services.per_plugin(app=self.app):
            for service in declared if isinstance(declared, list | tuple) else [declared]:
                if not isinstance(getattr(service, "name", None), str) or not service.name:
                    log.warning("plugin %r declared a service without a name; ignored", plugin)
                    continue
                service.plugin = plugin
                self.declared.append(service)

    def _core_services(self) -> list[BackgroundService]:
        """The core's own primary-only services (only when something listens to what they do)."""
        services: list[BackgroundService] = []
        idle = float(self.app.config.section("agent").get("idle_minutes") or 0)
        if idle > 0 and self.app.plugins.hooks.pando_session_ended.implemented:
            from .services.sessions import IdleSessionSweeper

            services.append(IdleSessionSweeper(idle))
        return services

    def get(self, name: str) -> BackgroundService | None:
        """The running service called *name* on this instance (None on a secondary)."""
        return self.running.get(name)

    def start_all(self) -> None:
        """This instance is the primary now: start every declared service not running yet."""
        with self._lock:
            self._collect()
            for service in self.declared:
                if service.name in self.running:
                    continue
                try:
                    service.start(self.app)
                except Exception as exc:  # noqa: BLE001 - one service must not stop the others
                    self.problems[service.name] = f"{type(exc).__name__}: {exc}"
                    self.app.plugins.record_hook_error(service.plugin, f"service {service.name}", exc)
                    continue
                self.problems.pop(service.name, None)
                self.running[service.name] = service

    def stop_all(self, reason: str = "shutdown", timeout: float = STOP_TIMEOUT_S) -> list[str]:
        """Stop the running services (in reverse start order); returns those that overran."""
        with self._lock:
            services = list(self.running.values())[::-1]
            self.running.clear()
        overran = []
        for service in services:
            started = time.monotonic()
            try:
                stopped = service.stop(timeout)
            except Exception as exc:  # noqa: BLE001
                self.app.plugins.record_hook_error(service.plugin, f"service {service.name}", exc)
                continue
            if stopped is False:
                overran.append(service.name)
                self.problems[service.name] = f"did not stop within {timeout:.0f}s ({reason})"
                log.warning("service %s did not stop within %.0fs (%s)", service.name, timeout, reason)
            log.debug("service %s stopped in %.0f ms (%s)", service.name, (time.monotonic() - started) * 1000, reason)
        return overran

    def status(self) -> list[dict[str, Any]]:
        """Each declared service: name, plugin, state (running/stopped/failed) and health."""
        rows = []
        for service in self.declared:
            running = service.name in self.running
            health = None
            try:
                health = service.health() if running else None
            except Exception as exc:  # noqa: BLE001
                health = {"error": f"{type(exc).__name__}: {exc}"}
            state = "running" if running else ("failed" if service.name in self.problems else "stopped")
            if running and isinstance(service, ThreadedService) and not service.running:
                state = "failed"
            rows.append(
                {"name": service.name, "plugin": service.plugin, "state": state, "health": health, "problem": self.problems.get(service.name)}
            )
        return rows
