"""Team mode through real pando processes: two "machines" (two working directories on two paths,
no shared ``.pando/``) pointed at one PostgreSQL database. A change written in one reaches the
change feed and the event listeners of the other; the role-scoped service runs on one instance
of the team, and moves within 2 s when that instance is SIGKILLed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.waiting import hold_for, wait_for

pytest.importorskip("psycopg")

ROOT = Path(__file__).resolve().parents[1]
PROBE = "team_probe=tests.support.team_probe:"

pytestmark = pytest.mark.timeout(120)


def probe_list(instance, name):
    return instance.eval(f"import tests.support.team_probe as p; result = list(p.{name})")


@pytest.fixture
def team(pando_instance, postgres_url, tmp_path):
    """``team(n)`` -> n instances, each in a working directory of its own, on one database."""
    stamp = tmp_path / "stamp"

    def start(count: int, *, service: bool = False):
        env = {"PYTHONPATH": str(ROOT), "PANDO_DATABASE__URL": postgres_url}
        if service:
            env["TEAM_PROBE_STAMP"] = str(stamp)
        instances = []
        for _ in range(count):
            workdir = tmp_path / f"machine-{len(list(tmp_path.glob('machine-*')))}"
            workdir.mkdir()
            instances.append(pando_instance([PROBE], env, workdir))
        return instances

    start.stamp = stamp
    return start


def test_a_change_written_on_one_machine_reaches_the_other(team):
    a, b = team(2)
    assert a.info["role"] == b.info["role"] == "primary"  # each the primary of its own directory
    b.eval("app.store.team_notes.add(body='from b')")
    changes = wait_for(lambda: probe_list(a, "CHANGES"), 5, "the change on the other machine")
    assert changes == [{"kind": "insert", "ids": ["from b"], "writer": b.info["instance_id"]}]
    events = wait_for(lambda: probe_list(a, "EVENTS"), 5, "the event on the other machine")
    assert events == [{"topic": "db.team_notes.insert", "ids": ["from b"], "writer": b.info["instance_id"]}]
    # the writer hears its own change once, from its own commit
    assert wait_for(lambda: probe_list(b, "CHANGES"), 5, "the writer's own change") == changes
    hold_for(lambda: len(probe_list(b, "CHANGES")) == 1 and len(probe_list(a, "CHANGES")) == 1, 0.3, "heard once")


def test_a_rolled_back_write_is_not_announced(team):
    a, b = team(2)
    error = b.eval(
        "from pando_core.db import Repository\n"
        "try:\n"
        "    with app.runtime.db.write(app.instance_id) as tx:\n"
        "        tx.raw.execute('INSERT INTO team_notes (body) VALUES (?)', ('lost',))\n"
        "        tx.changed('team_notes', 'insert', 'lost')\n"
        "        raise ValueError('undo')\n"
        "except ValueError as exc:\n"
        "    result = str(exc)"
    )
    assert error == "undo"
    b.eval("app.store.team_notes.add(body='kept')")
    wait_for(lambda: probe_list(a, "CHANGES"), 5, "the committed change")
    assert [c["ids"] for c in probe_list(a, "CHANGES")] == [["kept"]]


def test_the_service_runs_on_one_instance_and_moves_within_two_seconds_of_a_sigkill(team):
    a, b, c = team(3, service=True)
    stamp = team.stamp
    wait_for(lambda: stamp.exists() and stamp.read_text(), 10, "the service to start somewhere")
    owners = [i for i in (a, b, c) if probe_list(i, "SERVICE_RUNS")]
    assert len(owners) == 1, "the service runs on exactly one instance of the team"
    owner = owners[0]
    hold_for(lambda: stamp.read_text() in ("", str(owner.pid)), 0.5, "one owner")
    owner.kill()
    killed = time.monotonic()
    others = [i for i in (a, b, c) if i is not owner]
    wait_for(lambda: stamp.read_text() in {str(i.pid) for i in others}, 5, "another instance to run the service",
             interval=0.01)
    took = time.monotonic() - killed
    print(f"\nteam service failover: {took * 1000:.0f} ms after the SIGKILL")
    assert took < 2.0
    runs = [probe_list(i, "SERVICE_RUNS") for i in others]
    assert sorted(len(r) for r in runs) == [0, 1]


def test_a_read_only_command_never_runs_the_services(team, postgres_url, pando_env, monkeypatch, tmp_path):
    """An observer (``pando status``, ``sessions list``) in team mode reads the team's database but
    never stands for the lease: with nobody else running, the service still does not start."""
    import tests.support.team_probe as probe
    from pando_core.app import App, AppOptions
    from pando_core.context import PandoContext

    monkeypatch.setenv("PANDO_DATABASE__URL", postgres_url)
    monkeypatch.setenv("TEAM_PROBE_STAMP", str(team.stamp))
    workdir = tmp_path / "observer"
    workdir.mkdir()
    context = PandoContext(workdir, requested_plugins=[], extra_plugins={"team_probe": probe}, env=dict(pando_env, PANDO_DATABASE__URL=postgres_url))
    app = App.create(context, AppOptions(observe=True, startup_mode="instance"))
    try:
        assert app.team and app.team_services is None
        hold_for(lambda: not team.stamp.exists(), 1.2, "no service started by an observer")
        assert probe.SERVICE_RUNS == []
    finally:
        app.shutdown()


def test_a_dropped_listening_connection_resyncs_the_listeners(team, postgres_url):
    """The instance's NOTIFY connection is terminated on the server: it reconnects, its listeners
    get ``state.resync`` (as after a gap on the bus), and later changes arrive again."""
    import psycopg

    from pando_core.db.pg_changes import libpq_conninfo

    a, b = team(2)
    pid = a.eval("result = app.runtime.team_changes.listener.backend_pid")
    with psycopg.connect(libpq_conninfo(postgres_url), autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    wait_for(lambda: probe_list(a, "RESYNCS"), 5, "state.resync after the reconnect")
    assert a.eval("result = app.runtime.team_changes.listener.backend_pid") not in (None, pid)
    b.eval("app.store.team_notes.add(body='after the reconnect')")
    wait_for(lambda: probe_list(a, "CHANGES"), 5, "a change after the reconnect")
