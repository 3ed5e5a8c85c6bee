"""The pluggy wiring of pando-cron: config, the fires table, the scheduler (where the services run)
and bus methods, cron events on the other instances, and the ``pando cron`` commands. Only light imports at
module level: ``pando --version`` and ``pando plugins`` import this module."""

from __future__ import annotations

from pando_core import hookimpl
from pando_core.config import ConfigSection, Field

SECTION = ConfigSection(
    "cron",
    {
        "enabled": Field(
            "bool",
            True,
            "schedule the jobs (false: none fires on its own; `pando cron run` still works)",
            aliases=("Enabled",),
        ),
        "jobs": Field(
            "any",
            [],
            "[[cron.jobs]] tables: name, schedule, prompt, enabled, engine, model, work_dir, tags, timeout, timezone, catch_up",
            aliases=("Jobs",),
        ),
    },
    "Cron: scheduled prompts run as Mesnada tasks",
)

FIRES_TABLE = "cron_fires"  # store.TABLE, repeated so that change events do not import the store
_OUTCOMES = ("fired", "skipped", "failed")


@hookimpl
def pando_config_sections():
    return SECTION


@hookimpl
def pando_db_components():
    from .store import component

    return component()


@hookimpl
def pando_services(app):
    from .scheduler import CronScheduler

    return [CronScheduler()]


@hookimpl
def pando_bus_methods(app):
    from .methods import bus_methods

    return bus_methods(app)


@hookimpl
def pando_changes_committed(app, changes, resync):
    for change in changes:
        if change.table != FIRES_TABLE or change.kind not in _OUTCOMES:
            continue
        if change.writer == app.instance_id:
            continue  # fired here (the scheduler, or cron.run_now): published when it was recorded
        for fire_id in change.ids:
            row = app.store.cron.get(id=fire_id)
            payload = {"job": row["job"], "task_id": row["task_id"], "fire": row}
            if change.kind != "fired":
                payload["reason"] = row["reason"]
            app.events.publish(f"cron.{change.kind}", payload)


@hookimpl
def pando_web_routes(app):
    from .web import web_routes

    return web_routes(app)


@hookimpl
def pando_register_commands(cli):
    from .cli import build_cli

    cli.add_typer(
        build_cli(),
        name="cron",
        help="Scheduled prompts run as Mesnada tasks: list, next, run, history, install",
    )
    # the Go original's name, so crontab lines it installed (`... cronjob run NAME`) run here too
    cli.add_typer(build_cli(), name="cronjob", hidden=True)
