"""One fire of a job, on the primary: claim it, skip it if its last task still runs, spawn it.

The order is what makes a fire happen at most once: the claim is committed before the task is
spawned (see store.py). A job whose previous task is still pending or running is not fired again
on top of it; that fire is recorded as skipped. A fired job is a Mesnada task in the background,
tagged ``cronjob`` and ``cronjob:<name>`` plus the job's tags. Events on ``app.events``:
``cron.fired {job, task_id, fire}``, ``cron.skipped {job, reason, task_id, fire}`` and
``cron.failed {job, reason, fire}``.
"""

from __future__ import annotations

import logging
from typing import Any

from pando_core.errors import PandoError, one_line

from .config import CronJob
from .store import FAILED, FIRED, SKIPPED

log = logging.getLogger("pando.cron")

BUSY = ("pending", "running")  # a task in these states has not finished: the next fire waits for it


def fire(
    app: Any, job: CronJob, *, kind: str, scheduled_at: int | None = None, catch_up: bool = False
) -> dict:
    """Fire *job* now; returns the fire's row (``status`` fired/skipped/failed), or None when that
    scheduled minute had already been claimed (by this primary or an earlier one)."""
    claimed = app.store.cron.claim(
        job=job.name, kind=kind, instance=app.instance_id, scheduled_at=scheduled_at, catch_up=catch_up
    )
    if claimed is None:
        return None
    try:
        busy = app.call_primary(
            "mesnada.list", {"status": list(BUSY), "tags": [f"cronjob:{job.name}"], "limit": 1}
        )
        if busy:
            reason = f"its previous task {busy[0]['id']} is still {busy[0]['status']}"
            row = app.store.cron.record(
                id=claimed["id"], status=SKIPPED, task_id=busy[0]["id"], reason=reason
            )
            log.info("cron: %s skipped: %s", job.name, reason)
            app.events.publish(
                "cron.skipped", {"job": job.name, "reason": reason, "task_id": busy[0]["id"], "fire": row}
            )
            return row
        task = app.call_primary("mesnada.spawn", spawn_params(job))
    except PandoError as exc:
        reason = one_line(exc, 300)
        row = app.store.cron.record(id=claimed["id"], status=FAILED, reason=reason)
        log.warning("cron: %s could not fire: %s", job.name, reason)
        app.events.publish("cron.failed", {"job": job.name, "reason": reason, "fire": row})
        return row
    row = app.store.cron.record(id=claimed["id"], status=FIRED, task_id=task["id"])
    log.info("cron: %s fired task %s", job.name, task["id"])
    app.events.publish("cron.fired", {"job": job.name, "task_id": task["id"], "fire": row})
    return row


def spawn_params(job: CronJob) -> dict[str, Any]:
    params: dict[str, Any] = {
        "prompt": job.prompt,
        "work_dir": job.resolved_work_dir,
        "tags": job.spawn_tags(),
        "background": True,
    }
    for key in ("engine", "model"):
        if getattr(job, key):
            params[key] = getattr(job, key)
    if job.timeout not in ("", None, 0):
        params["timeout"] = job.timeout
    return params
