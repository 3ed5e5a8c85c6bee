"""A plugin for real-process tests of team mode (tests/test_team_instances.py): one table written
with portable SQL, a record of what ``pando_changes_committed`` and a runtime event listener saw,
a role-scoped service that stamps its pid into ``$TEAM_PROBE_STAMP`` while it runs, and a bus
method ``team_probe.where`` answered only where the services run."""

from __future__ import annotations

import os
import threading

from pando_core import hookimpl
from pando_core.background import ThreadedService
from pando_core.db import Component, Migration, Repository, write

CHANGES: list[dict] = []  # pando_changes_committed
EVENTS: list[dict] = []  # runtime.on_event("db.")
RESYNCS: list[str] = []
SERVICE_RUNS: list[int] = []
_lock = threading.Lock()


class TeamNotes(Repository):
    name = "team_notes"

    @write
    def add(self, tx, *, body: str) -> dict:
        tx.raw.execute("INSERT INTO team_notes (body) VALUES (?)", (body,))
        tx.changed("team_notes", "insert", body)
        return {"body": body}


class Stamp(ThreadedService):
    name = "team_probe.stamp"

    def run(self, app, stop):
        with _lock:
            SERVICE_RUNS.append(os.getpid())
        path = os.environ["TEAM_PROBE_STAMP"]
        while not stop.wait(0.02):
            with open(path, "w") as out:
                out.write(str(os.getpid()))


@hookimpl
def pando_db_components():
    return Component("team_probe", [Migration(1, "notes", ["CREATE TABLE team_notes (body TEXT)"])], [TeamNotes])


@hookimpl
def pando_services(app):
    return [Stamp()] if os.environ.get("TEAM_PROBE_STAMP") else []


@hookimpl
def pando_bus_methods(app):
    def where(params):
        """Needs the role-scoped service: answered only where the services run."""
        if not app.runs_services:
            raise app.services_unavailable("the team probe's service")
        return {"pid": os.getpid(), "instance_id": app.instance_id}

    return {"team_probe.where": where}


@hookimpl
def pando_started(app, role):
    def on_event(event):
        with _lock:
            if event.topic == "state.resync":
                RESYNCS.append(event.topic)
            else:
                EVENTS.append({"topic": event.topic, "ids": event.payload.get("ids"), "writer": event.payload.get("writer")})

    if app.runtime is not None:
        app.runtime.on_event(on_event, "db.team_notes.")


@hookimpl
def pando_changes_committed(app, changes, resync):
    with _lock:
        for change in changes:
            if change.table == "team_notes":
                CHANGES.append({"kind": change.kind, "ids": list(change.ids), "writer": change.writer})
