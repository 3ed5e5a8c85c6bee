"""``app.runs_services``: where the role-scoped services run, with real pando processes. On SQLite
it is the working directory's primary; in team mode (PostgreSQL) the one local primary of the team
that holds the team lease -- never a secondary, so that on the holder's machine ``call_primary``
reaches the instance running them -- and a bus method needing them elsewhere names the owner."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.waiting import hold_for

ROOT = Path(__file__).resolve().parents[1]
PROBE = "team_probe=tests.support.team_probe:"

pytestmark = pytest.mark.timeout(120)


def call_error(instance, method):
    return instance.eval(
        "from pando_core.errors import PandoError\n"
        f"try:\n    app.call_primary({method!r}, {{}})\n    result = None\n"
        "except PandoError as exc:\n    result = type(exc).__name__ + ': ' + str(exc)\n"
    )


def test_on_sqlite_the_primary_runs_the_services_and_a_promoted_secondary_takes_them(pando_pair):
    primary, secondary = pando_pair(plugins=[PROBE], env={"PYTHONPATH": str(ROOT)})
    assert primary.eval("result = app.runs_services") is True
    assert secondary.eval("result = app.runs_services") is False
    assert secondary.eval("result = app.call_primary('team_probe.where')")["pid"] == primary.pid
    assert secondary.eval("result = str(app.services_unavailable('the probe'))") == (
        "the probe runs on the primary; this instance is not it"
    )
    primary.kill()
    secondary.wait_for("result = app.runs_services", True, timeout=15)
    assert secondary.eval("result = app.call_primary('team_probe.where')")["pid"] == secondary.pid


@pytest.fixture
def team_env(postgres_url):
    pytest.importorskip("psycopg")
    return {"PYTHONPATH": str(ROOT), "PANDO_DATABASE__URL": postgres_url}


def test_in_team_mode_only_a_local_primary_holds_the_lease(pando_instance, pando_env, team_env, tmp_path):
    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    machine_a.mkdir()
    machine_b.mkdir()
    a1 = pando_instance([PROBE], team_env, machine_a)
    a1.wait_for("result = app.runs_services", True, timeout=10)
    a2 = pando_instance([PROBE], team_env, machine_a)  # a secondary on the holder's machine
    b1 = pando_instance([PROBE], team_env, machine_b)
    assert a2.info["role"] == "secondary" and b1.info["role"] == "primary"
    assert a2.eval("result = app.team_services is None") is True  # a secondary never stands
    hold_for(lambda: not b1.eval("result = app.runs_services"), 0.6, "the lease stays with its holder")

    # on the holder's machine, call_primary reaches the instance running the services
    assert a2.eval("result = app.call_primary('team_probe.where')")["pid"] == a1.pid
    # on the other machine, the method says where they run
    error = call_error(b1, "team_probe.where")
    assert error == (
        "UnavailableError: the team probe's service runs on the team's service owner "
        f"(instance {a1.info['instance_id']} (pid {a1.pid}) on host {socket.gethostname()}), "
        "not on this machine's primary: run this on that machine"
    )

    # pando status on the other machine says where the services run
    status = subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", "status", "--json"], cwd=machine_b,
        env=dict(pando_env, **team_env), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["service_owner"] == (
        f"instance {a1.info['instance_id']} (pid {a1.pid}) on host {socket.gethostname()}"
    )

    a1.kill()
    killed = time.monotonic()
    deadline = killed + 5
    holders: list = []
    while time.monotonic() < deadline and not holders:
        holders = [i for i in (a2, b1) if i.eval("result = app.runs_services")]
        time.sleep(0.02)
    took = time.monotonic() - killed
    print(f"\nteam services moved {took * 1000:.0f} ms after the SIGKILL of the holder")
    assert len(holders) == 1 and took < 2.0
    # whoever took it is its machine's primary (a2 only once promoted)
    assert holders[0].eval("result = app.role") == "primary"
    a2.wait_for("result = app.role", "primary", timeout=15)
    if holders[0] is a2:
        assert a2.eval("result = app.call_primary('team_probe.where')")["pid"] == a2.pid
    else:
        assert call_error(a2, "team_probe.where").startswith("UnavailableError: the team probe's service runs on")


def test_in_team_mode_a_fenced_primary_gives_the_lease_up(pando_instance, team_env, tmp_path):
    """The holder's ``ipc.lock`` is replaced under it (``rm -rf .pando`` while it runs): it fences
    itself, stops its services and gives the team lease up, and another machine's primary takes it."""
    import os

    env = dict(team_env, PANDO_RUNTIME__LEASE_CHECK_INTERVAL="0.2")
    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    machine_a.mkdir()
    machine_b.mkdir()
    a1 = pando_instance([PROBE], env, machine_a)
    a1.wait_for("result = app.runs_services", True, timeout=10)
    b1 = pando_instance([PROBE], env, machine_b)
    replacement = machine_a / ".pando" / "ipc.lock.new"
    replacement.write_bytes(b"")
    os.replace(replacement, machine_a / ".pando" / "ipc.lock")
    a1.wait_for("result = bool(app.runtime.fenced)", True, timeout=10)
    b1.wait_for("result = app.runs_services", True, timeout=3, interval=0.02)
    assert a1.eval("result = [app.runs_services, app.team_services is None]") == [False, True]
    hold_for(lambda: not a1.eval("result = app.runs_services"), 0.6, "a fenced primary does not stand again")
