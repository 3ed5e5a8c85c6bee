"""The multi-instance contract for plugins, through real processes (``pando_pair``): changes from
anywhere, bus methods across a failover, services only on the primary, session ends reaching the
primary, and a secondary whose plugin set differs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = "probe=tests.support.platform_probe:"
ENV = {"PYTHONPATH": str(ROOT)}

pytestmark = pytest.mark.timeout(120)


def probe_list(instance, name):
    return instance.eval(f"import tests.support.platform_probe as p; result = list(p.{name})")


def until(check, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


def test_the_primary_hears_the_changes_a_secondary_commits(pando_pair):
    primary, secondary = pando_pair(plugins=[PROBE], env=ENV)
    secondary_id = secondary.info["instance_id"]
    secondary.eval("app.store.probe_notes.add(body='from the secondary')")
    changes = until(lambda: [c for c in probe_list(primary, "CHANGES") if c["table"] == "probe_notes"])
    assert changes == [{"table": "probe_notes", "kind": "insert", "ids": ["from the secondary"], "writer": secondary_id, "role": "primary"}]
    # and a secondary's own subscription is fed by the primary's change events
    primary.eval("app.store.probe_notes.add(body='from the primary')")
    seen = until(lambda: [c for c in probe_list(secondary, "CHANGES") if c["ids"] == ["from the primary"]])
    assert seen[0]["writer"] == primary.info["instance_id"] and seen[0]["role"] == "secondary"


def test_a_bus_method_from_a_secondary_before_and_after_a_sigkill_failover(pando_instance):
    first = pando_instance([PROBE], ENV)
    second = pando_instance([PROBE], ENV)
    third = pando_instance([PROBE], ENV)
    assert (first.info["role"], second.info["role"], third.info["role"]) == ("primary", "secondary", "secondary")
    third.eval("app.store.probe_notes.add(body='n1')")
    answer = third.eval("result = app.call_primary('probe.whoami', {'echo': 'x'})")
    assert answer == {"pid": first.pid, "echo": "x", "notes": ["n1"]}
    error = third.eval(
        "from pando_core.errors import NotFoundError\n"
        "try:\n    app.call_primary('probe.fail', {'what': 'w'})\nexcept NotFoundError as exc:\n    result = str(exc)"
    )
    assert error == "no such thing: w"  # the handler's error class, across the bus
    first.kill()
    new_primary = until(lambda: next((i for i in (second, third) if i.role == "primary"), None))
    caller = third if new_primary is second else second
    answer = caller.eval("result = app.call_primary('probe.whoami', {'echo': 'y'}, timeout=10)")
    assert answer == {"pid": new_primary.pid, "echo": "y", "notes": ["n1"]}
    assert new_primary.eval("result = app.call_primary('probe.whoami')")["pid"] == new_primary.pid


def test_a_service_runs_only_on_the_primary_and_moves_within_a_second_of_a_sigkill(pando_pair, pando_workdir):
    primary, secondary = pando_pair(plugins=[PROBE], env=ENV)
    runs = until(lambda: probe_list(primary, "SERVICE_RUNS"))
    assert runs == [{"pid": primary.pid, "role": "primary"}]
    assert secondary.eval("result = app.services.get('probe.heartbeat') is None") is True
    assert probe_list(secondary, "SERVICE_RUNS") == []
    heartbeat = pando_workdir / ".pando" / "probe" / "heartbeat"
    until(lambda: heartbeat.exists() and heartbeat.read_text() == str(primary.pid))
    primary.kill()
    killed = time.monotonic()
    until(lambda: heartbeat.read_text() == str(secondary.pid), timeout=5, interval=0.01)
    assert time.monotonic() - killed < 1.0
    assert probe_list(secondary, "SERVICE_RUNS") == [{"pid": secondary.pid, "role": "primary"}]


def test_a_session_ended_on_a_secondary_reaches_the_primary_once(pando_pair):
    primary, secondary = pando_pair(plugins=[PROBE], env=ENV)
    session_id = secondary.eval(
        "s = app.sessions.create(title='t')\n"
        "app.messages.create(s['id'], 'user', [{'type': 'text', 'data': {'text': 'hi'}}])\n"
        "app.sessions.end(s['id'])\n"
        "app.sessions.end(s['id'])\n"
        "result = s['id']"
    )
    ended = until(lambda: probe_list(primary, "ENDED"))
    assert ended == [{"id": session_id, "origin": secondary.info["instance_id"], "role": "primary", "here": primary.info["instance_id"]}]
    assert probe_list(secondary, "ENDED") == [
        {"id": session_id, "origin": secondary.info["instance_id"], "role": "secondary", "here": secondary.info["instance_id"]}
    ]
    time.sleep(0.3)  # a second end without activity must not reach the primary again
    assert len(probe_list(primary, "ENDED")) == 1


def test_idle_sessions_end_on_the_primary(pando_instance, pando_workdir):
    (pando_workdir / ".pando.toml").write_text("[agent]\nidle_minutes = 0.01\n", encoding="utf-8")
    primary = pando_instance([PROBE], ENV)
    session_id = primary.eval(
        "s = app.sessions.create(title='t')\n"
        "app.messages.create(s['id'], 'user', [{'type': 'text', 'data': {'text': 'hi'}}])\n"
        "result = s['id']"
    )
    ended = until(lambda: probe_list(primary, "ENDED"), timeout=10)
    assert ended[0]["id"] == session_id and ended[0]["origin"] == primary.info["instance_id"]


def test_a_secondary_with_a_different_plugin_set_says_so_in_one_line(pando_instance, tmp_path):
    primary = pando_instance([], ENV)
    secondary = pando_instance([PROBE], ENV)
    assert (primary.info["role"], secondary.info["role"]) == ("primary", "secondary")
    message = secondary.eval("result = app.plugin_mismatch")
    assert message.startswith("pando: plugins differ from the primary's: this pando has probe but the primary")
    assert "\n" not in message
    log = (tmp_path / "instance-1.log").read_text()
    assert message in log
    error = secondary.eval(
        "from pando_core.errors import UnavailableError\n"
        "try:\n    app.call_primary('probe.whoami', timeout=5)\nexcept UnavailableError as exc:\n    result = str(exc)"
    )
    assert f"the primary (pid {primary.pid}) does not serve 'probe.whoami'" in error


def test_the_core_serves_sessions_and_messages_through_the_same_bus_methods(pando_pair):
    primary, secondary = pando_pair(plugins=[], env=ENV)
    session_id = primary.eval(
        "s = app.sessions.create(title='shared')\n"
        "app.messages.create(s['id'], 'user', [{'type': 'text', 'data': {'text': 'hi'}}])\n"
        "result = s['id']"
    )
    listed = secondary.eval("result = [s['id'] for s in app.call_primary('session.list')]")
    assert listed == [session_id]
    assert secondary.eval(f"result = app.call_primary('session.get', {{'id': '{session_id}'}})['title']") == "shared"
    assert secondary.eval(f"result = len(app.call_primary('message.list', {{'session_id': '{session_id}'}}))") == 1
    missing = secondary.eval(
        "from pando_core.errors import NotFoundError, ValidationError\n"
        "try:\n    app.call_primary('session.get', {'id': 'nope'})\nexcept NotFoundError as exc:\n    result = ['not_found', str(exc)]\n"
        "try:\n    app.call_primary('session.get', {'id': 3})\nexcept ValidationError as exc:\n    result.append('validation')"
    )
    assert missing[0] == "not_found" and missing[-1] == "validation"
    services = secondary.eval("result = app.call_primary('core.services')")
    assert services == []
