"""The bus methods of pando-cron, served by the primary (``app.call_primary("cron.<op>")``):

- ``cron.run_now {name}`` -> the fire (``status`` fired/skipped/failed, ``task_id``, ``reason``):
  fire the job now, with the jobs as the config files say now;
- ``cron.reload {}`` -> ``{reloaded: bool}``: the scheduler reads the jobs again;
- ``cron.status {}`` -> the scheduler's health, or ``{running: false}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pando_core.errors import UnavailableError, ValidationError

from .config import read_current
from .firing import fire
from .scheduler import running_scheduler
from .store import MANUAL

MESNADA_NEEDED = "cron jobs need the mesnada plugin (pip install pando-mesnada, and do not disable it)"


def bus_methods(app: Any) -> dict[str, Any]:
    def run_now(params: dict) -> dict:
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(name, str) or not name:
            raise ValidationError("cron.run_now needs {name}")
        if "mesnada" not in app.plugins.loaded():
            raise UnavailableError(f"the primary (pid {_pid()}) does not run mesnada: {MESNADA_NEEDED}")
        job = read_current(Path(app.workdir)).job(name)
        row = fire(app, job, kind=MANUAL)
        scheduler = running_scheduler(app)
        if scheduler is not None:
            scheduler.reload()  # it may be behind the files this fire has just read
        return row

    def reload(params: dict) -> dict:
        scheduler = running_scheduler(app)
        if scheduler is None and getattr(app, "team", False) and not app.runs_services:
            raise app.services_unavailable("the cron scheduler")
        if scheduler is None:
            return {"reloaded": False}
        scheduler.reload()
        return {"reloaded": True}

    def status(params: dict) -> dict:
        scheduler = running_scheduler(app)
        if scheduler is None and not app.runs_services:  # team mode: the lease holder schedules
            return {"running": False, "elsewhere": str(app.services_unavailable("the cron scheduler"))}
        if scheduler is None:
            return {"running": False}
        return {"running": True, **(scheduler.health() or {})}

    return {"cron.run_now": run_now, "cron.reload": reload, "cron.status": status}


def _pid() -> int:
    import os

    return os.getpid()
