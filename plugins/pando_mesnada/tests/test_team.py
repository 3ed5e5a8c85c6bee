"""Mesnada in team mode, with real pando processes: two "machines" (two working directories, no
shared ``.pando/``) on one PostgreSQL database. The orchestrator runs only on the instance holding
the team lease; a task spawned on the other machine is queued there and run once, by the holder;
what needs the orchestrator itself says where it runs; when the holder dies the other machine's
primary takes the lease and runs the tasks."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("psycopg")

pytestmark = pytest.mark.timeout(180)

FAST = {"PANDO_MESNADA__POLL_INTERVAL": "0.05"}


def hold_for(check, seconds, what):
    """*check* stays true for *seconds* (bounded: polled every 50 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), f"not true for {seconds}s: {what}"
        time.sleep(0.05)


def call(instance, method, params=None, timeout=30.0):
    return instance.eval(f"result = app.call_primary({method!r}, {json.dumps(params or {})})", timeout=timeout)


def call_error(instance, method, params):
    return instance.eval(
        "from pando_core.errors import PandoError\n"
        f"try:\n    app.call_primary({method!r}, {json.dumps(params)})\n    result = None\n"
        "except PandoError as exc:\n    result = type(exc).__name__ + ': ' + str(exc)\n"
    )


def wait_status(instance, task_id, statuses, timeout=60.0):
    deadline = time.monotonic() + timeout
    task = None
    while time.monotonic() < deadline:
        task = call(instance, "mesnada.get", {"id": task_id})
        if task["status"] in statuses:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not reach {statuses}: {task and task['status']}")


@pytest.fixture
def machines(pando_instance, postgres_url, tmp_path, fake_engines):
    env = dict(FAST, PANDO_DATABASE__URL=postgres_url)

    def start(name):
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        return pando_instance(["mesnada"], env, workdir)

    return start


def test_a_task_spawned_on_the_other_machine_runs_once_on_the_lease_holder(machines, fake_engines):
    holder = machines("machine-a")
    holder.wait_for("result = app.runs_services", True, timeout=10)
    other = machines("machine-b")
    assert other.info["role"] == "primary"  # the primary of its own directory...
    hold_for(lambda: other.eval("result = app.runs_services") is False, 0.6, "the lease stays with its holder")
    assert other.eval("result = app.services.get('mesnada') is None") is True  # ...without the orchestrator

    listen = ("app.started = []\n"
              "app.events.subscribe('mesnada.task.started', lambda e: app.started.append(e.payload['task']['id']))")
    holder.eval(listen)
    other.eval(listen)
    task = call(other, "mesnada.spawn", {"prompt": "say:from machine b", "engine": "claude", "tags": ["b"]})
    assert task["status"] == "pending"  # queued in the shared table; the holder starts it
    done = wait_status(other, task["id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["output_tail"] == "from machine b", done
    assert call(holder, "mesnada.get", {"id": task["id"]})["status"] == "completed"
    hold_for(lambda: len(fake_engines.all()) == 1, 1.0, "the task ran once, on one machine")
    # started by the holder's orchestrator (the only one that publishes mesnada.task.started)
    assert holder.eval("result = app.started") == [task["id"]] and other.eval("result = app.started") == []
    # in the spawning machine's directory (the default work_dir): the same path on one host here
    assert fake_engines.for_prompt("from machine b")["cwd"] == str(other.workdir.resolve())
    assert [t["id"] for t in call(other, "mesnada.list", {"tags": ["b"]})] == [task["id"]]

    # what needs the running orchestrator says where it runs
    holder_id = holder.info["instance_id"]
    error = call_error(other, "mesnada.cancel", {"id": task["id"]})
    assert error.startswith("UnavailableError: the mesnada orchestrator runs on the team's service owner "
                            f"(instance {holder_id} (pid {holder.pid}) on host "), error
    assert "run this on that machine" in error

    # the holder dies: the other machine's primary takes the lease and runs what is spawned there
    holder.kill()
    killed = time.monotonic()
    other.wait_for("result = app.runs_services", True, timeout=5, interval=0.02)
    print(f"\nteam services moved {1000 * (time.monotonic() - killed):.0f} ms after the SIGKILL")
    assert time.monotonic() - killed < 2.0
    second = call(other, "mesnada.spawn", {"prompt": "say:after the failover", "engine": "claude"})
    assert wait_status(other, second["id"], {"completed", "failed"})["status"] == "completed"
    assert len(fake_engines.all()) == 2

