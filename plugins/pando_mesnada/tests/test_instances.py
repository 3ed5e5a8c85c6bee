"""Two real pando processes on one working directory (pando_core.testing's pando_pair): tasks
spawned from a secondary, and a SIGKILL of the primary while three tasks run -- the children
survive in their own sessions and the promoted secondary re-adopts them and records their ends."""

from __future__ import annotations

import json
import time

from mesnada_testing import pid_alive

FAST = {"PANDO_MESNADA__POLL_INTERVAL": "0.05"}


def call(instance, method, params=None, timeout=30.0):
    return instance.eval(f"result = app.call_primary({method!r}, {json.dumps(params or {})})", timeout=timeout)


def wait_status(instance, ids, statuses, timeout=60.0):
    deadline = time.monotonic() + timeout
    tasks = []
    while time.monotonic() < deadline:
        tasks = [call(instance, "mesnada.get", {"id": i}) for i in ids]
        if all(t["status"] in statuses for t in tasks):
            return tasks
        time.sleep(0.1)
    raise AssertionError(f"tasks did not reach {statuses}: {[(t['id'], t['status']) for t in tasks]}")


def test_a_secondary_spawns_lists_and_cancels_through_the_primary(pando_pair, fake_engines):
    primary, secondary = pando_pair(plugins=["mesnada"], env=FAST)
    assert primary.eval("result = app.config.section('mesnada')['poll_interval']") == 0.05  # the env override
    secondary.eval(
        "app.heard = []\n"
        "app.events.subscribe('mesnada.task.', lambda e: app.heard.append((e.topic, e.payload['task']['status'])))"
    )
    task = call(secondary, "mesnada.spawn", {"prompt": "say:from the secondary", "engine": "claude", "tags": ["s"]})
    assert task["status"] == "running" and task["tags"] == ["s"]
    (done,) = wait_status(secondary, [task["id"]], {"completed"})
    assert done["output_tail"] == "from the secondary"
    # the secondary hears the task's events, fed by the primary's change events
    heard = secondary.wait_for("result = ('mesnada.task.finished', 'completed') in app.heard", True)
    assert heard and secondary.eval("result = app.heard[0][0]") == "mesnada.task.created"
    assert [t["id"] for t in call(secondary, "mesnada.list", {"tags": ["s"]})] == [task["id"]]
    # the secondary reads the same row from its own read-only connection
    assert secondary.eval(f"result = app.store.mesnada.get(id={task['id']!r})['status']") == "completed"
    # the service runs on the primary only
    assert primary.eval("result = app.services.get('mesnada') is not None") is True
    assert secondary.eval("result = app.services.get('mesnada') is None") is True
    slow = call(secondary, "mesnada.spawn", {"prompt": "sleep:60", "engine": "claude"})
    assert call(secondary, "mesnada.cancel", {"id": slow["id"]})["status"] == "cancelled"
    wait_status(secondary, [slow["id"]], {"cancelled"})
    error = secondary.eval(
        "from pando_core.errors import NotFoundError\n"
        "try:\n    app.call_primary('mesnada.get', {'id': 'task-00000000'})\n    result = None\n"
        "except NotFoundError as exc:\n    result = 'NotFoundError: ' + str(exc)\n"
    )
    assert error == "NotFoundError: no task task-00000000"


def test_sigkill_of_the_primary_while_three_tasks_run(pando_pair, fake_engines):
    primary, secondary = pando_pair(plugins=["mesnada"], env=FAST)
    ids = [
        call(secondary, "mesnada.spawn", {"prompt": f"say:begin {n}\nsleep:3\nsay:end {n}", "engine": "claude"})["id"]
        for n in range(3)
    ]
    wait_status(secondary, ids, {"running"})
    before = [call(secondary, "mesnada.get", {"id": i}) for i in ids]
    primary.kill()  # SIGKILL
    secondary.wait_for("result = app.role", "primary", timeout=15)
    # the children were not killed with it
    assert all(pid_alive(task["child_pid"]) for task in before)
    tasks = wait_status(secondary, ids, {"completed", "failed"}, timeout=60)
    for n, task in enumerate(tasks):
        assert task["status"] == "completed", task
        assert task["output_tail"] == f"begin {n}\nend {n}" and task["exit_code"] == 0
        assert task["attempt"] == 1  # the same run, adopted, not started again
    assert len(fake_engines.all()) == 3
    assert secondary.eval("result = app.services.get('mesnada') is not None") is True
