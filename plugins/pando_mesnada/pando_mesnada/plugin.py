"""The pluggy wiring of pando-mesnada: config, tables, the primary's service and bus methods,
change events, tools and the ``pando mesnada`` commands. Only light imports at module level:
``pando --version`` and ``pando plugins`` import this module."""

from __future__ import annotations

from pando_core import hookimpl
from pando_core.config import ConfigSection, Field

SECTION = ConfigSection(
    "mesnada",
    {
        "max_parallel": Field("int", 5, "tasks running at once (the rest wait in the queue)"),
        "default_engine": Field("str", "pando", "engine of a task that names none"),
        "default_model": Field("str", "", "model of a task that names none (empty: the engine's own)"),
        "default_timeout": Field("any", "", "timeout of a task that sets none (10m, 1h, seconds; empty: none)"),
        "isolation": Field("str", "none", "none, or worktree: a git worktree and branch per task", choices=("none", "worktree")),
        "backend": Field("str", "local", "local (processes on this machine) or dask (a Dask cluster)", choices=("local", "dask")),
        "scheduler": Field("str", "", "with backend = dask: the scheduler address, tcp://HOST:PORT"),
        "dask_worker_retries": Field("int", 0, "with backend = dask: times a task is run again when its worker dies"),
        "dependency_log_lines": Field("int", 100, "log lines of each dependency appended with include_dependency_logs"),
        "stop_grace": Field("float", 5.0, "seconds between SIGTERM and SIGKILL when a task is stopped"),
        "poll_interval": Field("float", 0.25, "seconds between the orchestrator's passes over running tasks"),
        "command": Field("str", "", "engine command: a template with {prompt}, {work_dir}, {model}, {task_id}"),
        "pando_command": Field("str", "", "engine pando: the command to run (default: this pando)"),
        "claude_command": Field("str", "", "engine claude: the program (default: claude on PATH)"),
        "gemini_command": Field("str", "", "engine gemini: the program"),
        "opencode_command": Field("str", "", "engine opencode: the program"),
        "codex_command": Field("str", "", "engine codex: the program"),
        "copilot_command": Field("str", "", "engine copilot: the program"),
    },
    "Mesnada: sub-agent tasks",
)

TASKS_TABLE = "mesnada_tasks"  # store.TABLE, repeated here so that changes do not import the store
_CHANGE_TOPICS = {"insert": "mesnada.task.created", "ended": "mesnada.task.finished", "update": "mesnada.task.progress"}


@hookimpl
def pando_config_sections():
    return SECTION


@hookimpl
def pando_db_components():
    from .store import component

    return component()


@hookimpl
def pando_services(app):
    from .service import MesnadaService

    return [MesnadaService()]


@hookimpl
def pando_bus_methods(app):
    from .ops import bus_methods
    from .service import queueing_orchestrator, running_orchestrator

    return bus_methods(lambda: running_orchestrator(app), lambda: queueing_orchestrator(app))


@hookimpl
def pando_changes_committed(app, changes, resync):
    mine = [c for c in changes if c.table == TASKS_TABLE]
    if not mine and not resync:
        return
    if app.runs_services:
        # a supervisor recorded an end (or a secondary, or in team mode another machine, spawned):
        # let the orchestrator act now
        from .service import holder_for

        orchestrator = holder_for(app).current
        if orchestrator is not None:
            orchestrator.wake.set()
        return
    # elsewhere the same task events are heard from the change events (the bus's, or NOTIFY's)
    for change in mine:
        topic = _CHANGE_TOPICS.get(change.kind)
        if topic is None:
            continue
        for task_id in change.ids:
            task = app.store.mesnada.find(id=task_id)
            if task is not None:
                app.events.publish(topic, {"task": task})


@hookimpl
def pando_register_tools(app):
    from .tools import make_tools

    return make_tools(app)


@hookimpl
def pando_mcp_server_tools(app):
    from .tools import make_tools

    return make_tools(app)


@hookimpl
def pando_web_routes(app):
    from .web import web_routes

    return web_routes(app)


@hookimpl
def pando_register_commands(cli):
    from .cli import build_cli

    cli.add_typer(build_cli(), name="mesnada", help="Sub-agent tasks: spawn, list, show, logs, wait, cancel, ...")
