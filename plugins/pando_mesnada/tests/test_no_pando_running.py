"""No pando needs to stay open: the pando that spawned the tasks exits at once; the supervisor of
the first task records its end by bootstrapping as the primary itself (nobody else is), and, being
the primary, starts the task that waited for it, whose supervisor records its end in turn. The test
only reads the SQLite file (read-only), so it never becomes a pando instance itself."""

from __future__ import annotations

import json
import sqlite3
import time

from mesnada_testing import pid_alive
from pando_mesnada.orchestrator import Orchestrator


def read_tasks(workdir) -> dict[str, dict]:
    uri = f"file:{workdir / '.pando' / 'pando.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=5) as conn:
        conn.row_factory = sqlite3.Row
        return {row["id"]: dict(row) for row in conn.execute("SELECT * FROM mesnada_tasks")}


def test_tasks_finish_and_are_recorded_with_no_pando_running(pando_workdir, fake_engines, pando_env):
    from pando_mesnada.store import component

    from pando_core.db import core_component
    from pando_core.runtime import bootstrap

    runtime = bootstrap(pando_workdir, components=[core_component(), component()])
    orchestrator = Orchestrator(runtime.store, pando_workdir, {})
    first = orchestrator.spawn({"prompt": "say:first result\nsleep:1", "engine": "claude"})
    second = orchestrator.spawn({"prompt": "say:second ran", "engine": "claude", "dependencies": [first["id"]],
                                 "include_dependency_logs": True})  # fmt: skip
    assert (first["status"], second["status"]) == ("running", "pending")
    orchestrator.close()
    runtime.cleanup()  # the spawning pando is gone; nothing else runs in this directory

    deadline = time.monotonic() + 60
    tasks = {}
    while time.monotonic() < deadline:
        tasks = read_tasks(pando_workdir)
        if all(tasks[t]["completed_at"] for t in (first["id"], second["id"])):
            break
        time.sleep(0.1)
    one, two = tasks[first["id"]], tasks[second["id"]]
    assert (one["status"], two["status"]) == ("completed", "completed"), json.dumps(tasks, indent=1)
    assert one["output_tail"] == "first result" and two["output_tail"] == "second ran"
    assert two["started_at"] >= one["completed_at"]
    assert "first result" in fake_engines.for_prompt("say:second ran")["prompt"]
    # and the lock is free again once the supervisors exited: they did not stay on as primaries
    while any(pid_alive(t["pid"]) for t in (one, two)) and time.monotonic() < deadline:
        time.sleep(0.05)
    again = bootstrap(pando_workdir, components=[core_component(), component()])
    try:
        assert again.role == "primary"
    finally:
        again.cleanup()
