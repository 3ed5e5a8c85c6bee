"""The bus methods ``mesnada.<op>``: every operation, served by the primary's orchestrator.

CLI commands, agent tools and other plugins (pando-cron) call them with
``app.call_primary("mesnada.<op>", params)`` from any instance. Parameters and results are JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pando_core.errors import ValidationError

from .model import read_log_tail
from .orchestrator import Orchestrator

Handler = Callable[[dict[str, Any]], Any]


def _id(params: dict[str, Any]) -> str:
    task_id = params.get("id", params.get("task_id"))
    if not isinstance(task_id, str) or not task_id:
        raise ValidationError("give the task's id")
    return task_id


def output(orchestrator: Orchestrator, task_id: str, lines: int | None = None) -> dict[str, Any]:
    """The last *lines* lines of the task's log (the whole tail kept in the database by default)."""
    task = orchestrator.get(task_id)
    if lines is None:
        return {"id": task_id, "status": task["status"], "output": task["output_tail"] or read_log_tail(task["log_file"])}
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 1:
        raise ValidationError("lines must be a positive integer")
    return {"id": task_id, "status": task["status"], "output": read_log_tail(task["log_file"], lines, limit=lines * 1000)}


def bus_methods(orchestrator: Callable[[], Orchestrator],
                queueing: Callable[[], Orchestrator] | None = None) -> dict[str, Handler]:
    """The handlers, each finding the running orchestrator when called. The methods that only
    read the shared tasks table or queue a task (spawn, get, list, wait, output, stats) find
    theirs with *queueing* when given: in team mode, away from the lease holder, an orchestrator
    that records a spawned task as pending for the holder's orchestrator to start."""
    queued = queueing or orchestrator

    def params_of(params: Any) -> dict[str, Any]:
        if params is None:
            return {}
        if not isinstance(params, dict):
            raise ValidationError("mesnada methods take an object of parameters")
        return params

    def op(fn: Callable[[Orchestrator, dict[str, Any]], Any], getter: Callable[[], Orchestrator] = orchestrator) -> Handler:
        return lambda params: fn(getter(), params_of(params))

    def wait_multiple(o: Orchestrator, p: dict[str, Any]) -> Any:
        ids = p.get("ids")
        if not isinstance(ids, list) or not ids:
            raise ValidationError("ids must be a non-empty list of task ids")
        return o.wait_multiple(ids, bool(p.get("all", True)), p.get("timeout"))

    return {
        "mesnada.spawn": op(lambda o, p: o.spawn(p), queued),
        "mesnada.get": op(lambda o, p: o.get(_id(p)), queued),
        "mesnada.list": op(lambda o, p: o.list(p), queued),
        "mesnada.wait": op(lambda o, p: o.wait(_id(p), p.get("timeout")), queued),
        "mesnada.wait_multiple": op(wait_multiple, queued),
        "mesnada.cancel": op(lambda o, p: o.cancel(_id(p))),
        "mesnada.pause": op(lambda o, p: o.pause(_id(p))),
        "mesnada.resume": op(lambda o, p: o.resume(_id(p), p.get("prompt"))),
        "mesnada.retry": op(lambda o, p: o.retry(_id(p))),
        "mesnada.relaunch": op(lambda o, p: o.relaunch(_id(p), p.get("overrides") or {})),
        "mesnada.delete": op(lambda o, p: o.delete(_id(p))),
        "mesnada.purge": op(lambda o, p: o.purge(_id(p))),
        "mesnada.set_progress": op(lambda o, p: o.set_progress(_id(p), p.get("percentage"), p.get("description"))),
        "mesnada.stats": op(lambda o, p: o.stats(), queued),
        "mesnada.output": op(lambda o, p: output(o, _id(p), p.get("lines")), queued),
    }
