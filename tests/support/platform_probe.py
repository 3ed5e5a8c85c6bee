"""A plugin for real-process tests of the multi-instance contract (tests/test_platform_instances.py).

It records what its hooks saw in module lists, which a test reads with ``instance.eval``.
"""

from __future__ import annotations

import os
import threading

from pando_core import hookimpl
from pando_core.background import ThreadedService
from pando_core.db import Component, Migration, Repository, read, write

CHANGES: list[dict] = []
ENDED: list[dict] = []
SERVICE_RUNS: list[dict] = []
_lock = threading.Lock()


class ProbeNotes(Repository):
    name = "probe_notes"

    @write
    def add(self, tx, *, body: str) -> dict:
        tx.raw.execute("INSERT INTO probe_notes (body) VALUES (?)", (body,))
        tx.changed("probe_notes", "insert", body)
        return {"body": body}

    @read
    def bodies(self, tx) -> list:
        return [row[0] for row in tx.raw.execute("SELECT body FROM probe_notes ORDER BY rowid")]


class Heartbeat(ThreadedService):
    """Runs on the primary only; says where and when it runs."""

    name = "probe.heartbeat"

    def run(self, app, stop):
        with _lock:
            SERVICE_RUNS.append({"pid": os.getpid(), "role": app.role})
        path = app.data_dir("probe") / "heartbeat"
        while not stop.wait(0.05):
            path.write_text(str(os.getpid()))


@hookimpl
def pando_db_components():
    return Component("probe", [Migration(1, "notes", ["CREATE TABLE probe_notes (body TEXT)"])], [ProbeNotes])


@hookimpl
def pando_bus_methods(app):
    def whoami(params):
        return {"pid": os.getpid(), "echo": params.get("echo"), "notes": app.store.probe_notes.bodies()}

    def fail(params):
        from pando_core.errors import NotFoundError

        raise NotFoundError(f"no such thing: {params.get('what')}")

    return {"probe.whoami": whoami, "probe.fail": fail}


@hookimpl
def pando_services(app):
    return [Heartbeat()]


@hookimpl
def pando_changes_committed(app, changes, resync):
    with _lock:
        for change in changes:
            CHANGES.append({"table": change.table, "kind": change.kind, "ids": list(change.ids), "writer": change.writer, "role": app.role})


@hookimpl
def pando_session_ended(app, session, origin):
    with _lock:
        ENDED.append({"id": session["id"], "origin": origin, "role": app.role, "here": app.instance_id})
