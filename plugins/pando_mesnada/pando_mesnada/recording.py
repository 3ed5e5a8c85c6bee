"""The end of a task, recorded from a process that is not (necessarily) a running pando.

Used by the task supervisor after its child ended: it bootstraps as a pando instance on the task's
working directory -- a secondary that proxies the write when a pando is running, otherwise the
primary for the moment it takes -- and records the outcome through the plugin's repository. As the
primary it also starts the tasks that were waiting (a dependency just completed, a slot freed);
not in team mode, where the lease holder's orchestrator hears the end by NOTIFY and does it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from .model import read_log_tail

log = logging.getLogger("pando.mesnada")

RECORD_DEADLINE = 120.0  # seconds to keep trying (a failover, a busy primary)


def end_fields(spec: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    fields = {
        "exit_code": outcome.get("exit_code"),
        "error": outcome.get("error"),
        "output_tail": read_log_tail(spec["log_file"]),
        "log_bytes": _size(spec["log_file"]),
    }
    if spec.get("worktree"):
        from .worktrees import finish_worktree

        fields.update(finish_worktree(spec["worktree"], spec["task_id"], spec.get("base_commit")))
    return fields


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def open_runtime(workdir: Path):  # noqa: ANN201
    """A pando runtime on *workdir* with the same components as a pando started there."""
    from pando_core.app import db_components
    from pando_core.context import PandoContext
    from pando_core.runtime import bootstrap

    from .store import component

    context = PandoContext(workdir)
    components = db_components(context)
    if not any(c.name == "mesnada" for c in components):
        components.append(component())
    from pando_core.db import database_settings

    # the database pando uses there: SQLite in .pando/, or in team mode the team's PostgreSQL
    database = database_settings(context.config.section("database"))
    runtime = bootstrap(workdir, components=components, config=context.config.section("runtime"), database=database)
    return runtime, context


def record_end(spec: dict[str, Any], outcome: dict[str, Any]) -> None:
    fields = end_fields(spec, outcome)
    deadline = time.monotonic() + RECORD_DEADLINE
    workdir = Path(spec["workdir"])
    while True:
        runtime = None
        try:
            runtime, context = open_runtime(workdir)
            runtime.store.mesnada.finish(
                id=spec["task_id"], status=outcome["status"], fields=fields, attempt=outcome.get("attempt")
            )
            Path(spec["spec_file"] + ".end.json").unlink(missing_ok=True)
            if runtime.role == "primary" and not runtime.database.team:
                # no orchestrator is running (else it would be the primary): start what waits.
                # Not in team mode: the orchestrator may run on another machine (the lease
                # holder), and it hears this end by NOTIFY and schedules what waits itself
                from .orchestrator import Orchestrator

                Orchestrator.for_runtime(runtime, context).schedule()
            return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then left in the end file
            if time.monotonic() > deadline:
                print(f"mesnada: could not record the end of {spec['task_id']}: {exc}", flush=True)
                return
            time.sleep(0.2)
        finally:
            if runtime is not None:
                runtime.cleanup()


def pending_end(spec_file: Path) -> dict[str, Any] | None:
    """An outcome a supervisor wrote but could not record (read by the orchestrator)."""
    try:
        return json.loads((Path(str(spec_file) + ".end.json")).read_text())
    except (OSError, ValueError):
        return None
