"""The scheduler: a primary-only service that fires each job's scheduled minutes exactly once.

Only the primary runs it (the core starts it at start and after a promotion), and every fire is
claimed in the database before its task is spawned (store.py), so however many pando instances
share the directory, and across a failover, a minute fires once: a new primary that starts in the
minute its predecessor already fired finds the claim and waits for the next one.

Between fires it sleeps until the next scheduled time, waking only to look at the config files'
modification times every few seconds (a changed file reloads the jobs) or when ``reload()`` is
called (by ``pando cron`` commands through the ``cron.reload`` bus method) or the clock jumps
(clock.py). A scheduled time is fired if it is reached within ``GRACE_S`` (a primary promoted
late in a minute still fires it; a job that never fired waits for its next time); older missed times are fired once only for ``catch_up = once``.
An invalid configuration keeps the last valid jobs running and is reported (log, ``health()``,
``cron.config_error`` event).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from pando_core.background import ThreadedService

from . import clock
from .config import CronConfig, CronConfigError, CronJob, config_paths, read_current
from .firing import fire
from .store import SCHEDULED

log = logging.getLogger("pando.cron")

GRACE_S = 60.0  # a scheduled time reached this late still fires (a promotion during the minute)
FIRST_GRACE_S = 5.0  # ... but a job that never fired (just added) only fires from the next time on
CHECK_S = 2.0  # seconds between looks at the config files' modification times
_UNKNOWN = object()


class CronScheduler(ThreadedService):
    name = "cron"

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.config: CronConfig | None = None
        self.error: str | None = None
        self.fires = 0
        self.passes = 0
        self._reload = True
        self._stamps: tuple | None = None
        self._last: dict[str, Any] = {}
        self._app: Any = None
        self.idle = ""  # why this primary schedules nothing (empty: it schedules)

    # -- the public API (bus methods, tests) -------------------------------------------------------

    def reload(self) -> None:
        """Read the jobs again (now, on the scheduler's thread) and reschedule."""
        self._reload = True
        self.wake.set()

    def jobs(self) -> list[CronJob]:
        return list(self.config.jobs) if self.config is not None else []

    def health(self) -> dict[str, Any] | None:
        base = super().health() or {}
        if self.error:
            base["config_error"] = self.error
        config = self.config
        return {
            **base,
            "enabled": bool(config and config.enabled),
            "jobs": len(config.jobs) if config else 0,
            "scheduled": sum(1 for j in config.jobs if j.enabled) if config and config.enabled else 0,
            "fires": self.fires,
            **({"idle": self.idle} if self.idle else {}),
        }

    # -- the service --------------------------------------------------------------------------------

    def stop(self, timeout: float) -> bool:
        self.wake.set()  # the loop sleeps on wake, not on the core's stop event
        return super().stop(timeout)

    def run(self, app: Any, stop: threading.Event) -> None:
        self._app = app
        self._last = {}  # claims are read again from the database: a predecessor may have made some
        self._reload = True
        clock.subscribe(self.wake)
        # a one-shot command (`pando cron list`, `pando mesnada show`) that happens to be the primary
        # for a moment must not fire jobs (`pando cron run` fires through cron.run_now)
        self.idle = "" if app.runs_background_work else "a one-shot pando command"
        if "mesnada" not in app.plugins.loaded():
            self.error = (
                "cron jobs need the mesnada plugin (pip install pando-mesnada, and do not disable it)"
            )
            log.warning("cron: %s; no job will fire", self.error)
        try:
            while not stop.is_set():
                self.wake.clear()
                if self._reload or self._files_changed(app):
                    self._load(app)
                target = self._pass(app, clock.current().now(), stop)
                self.passes += 1
                if stop.is_set():
                    break
                clock.current().sleep_until(target, self.wake, CHECK_S)
        finally:
            clock.unsubscribe(self.wake)

    def _files_changed(self, app: Any) -> bool:
        stamps = []
        for path in config_paths(Path(app.workdir)):
            try:
                info = path.stat()
                stamps.append((str(path), info.st_mtime_ns, info.st_size))
            except OSError:
                stamps.append((str(path), None, None))
        stamps = tuple(stamps)
        changed = self._stamps is not None and stamps != self._stamps
        self._stamps = stamps
        return changed

    def _load(self, app: Any) -> None:
        self._reload = False
        self._files_changed(app)  # remember the stamps of what is read now
        try:
            config = read_current(Path(app.workdir))
        except CronConfigError as exc:
            if self.error != str(exc):
                log.warning(
                    "cron: the configuration is not valid, %s: %s",
                    "keeping the last valid jobs" if self.config else "no job runs",
                    exc,
                )
            self.error = str(exc)
            app.events.publish("cron.config_error", {"error": str(exc)})
            return
        if "mesnada" in app.plugins.loaded():
            self.error = None
        self.config = config
        log.debug("cron: %d job(s) loaded", len(config.jobs))
        app.events.publish(
            "cron.reloaded", {"jobs": [j.name for j in config.jobs], "enabled": config.enabled}
        )

    def _pass(self, app: Any, now: float, stop: threading.Event) -> float | None:
        """Fire what is due at *now*; return the next time anything is scheduled."""
        config = self.config
        if self.idle or config is None or not config.enabled or "mesnada" not in app.plugins.loaded():
            return None
        target: float | None = None
        for job in config.jobs:
            if not job.enabled or job.parsed is None or stop.is_set():
                continue
            self._fire_if_due(app, job, now)
            upcoming = job.parsed.next_after(now)
            target = upcoming if target is None else min(target, upcoming)
        return target

    def _fire_if_due(self, app: Any, job: CronJob, now: float) -> None:
        due = job.parsed.latest_at_or_before(now)
        if due is None:
            return
        due_ms = int(round(due * 1000))
        last = self._last.get(job.name, _UNKNOWN)
        if last is _UNKNOWN:
            last = app.store.cron.last_scheduled(job=job.name)
        if last is not None and last >= due_ms:
            self._last[job.name] = last
            return
        fresh = now - due < (GRACE_S if last is not None else FIRST_GRACE_S)
        if fresh or (job.catch_up == "once" and last is not None):
            try:
                row = fire(app, job, kind=SCHEDULED, scheduled_at=due_ms, catch_up=not fresh)
            except Exception:  # noqa: BLE001 - one job's failure must not stop the others
                log.exception("cron: firing %s failed", job.name)
                return  # not remembered: the next pass tries this minute again (the claim decides)
            if row is not None:
                self.fires += 1
        self._last[job.name] = due_ms


def running_scheduler(app: Any) -> CronScheduler | None:
    service = app.services.get(CronScheduler.name)
    return service if isinstance(service, CronScheduler) else None
