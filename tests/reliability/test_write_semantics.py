"""Change events and idempotent writes, across real processes."""

from __future__ import annotations

import pytest
from reliability_kit import db_rows, primary_record

from pando_core.db import database_path
from tests.support.sqlite_lock import another_writer_gets_in
from tests.support.waiting import hold_for, wait_for

pytestmark = pytest.mark.reliability

CONFIG = {"heartbeat_interval": 0.1}


def test_change_events_reach_secondaries_in_order(cluster, workdir):
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    watcher = cluster.spawn("watcher", "--events", config=CONFIG)
    ready = watcher.wait("ready", 20)
    assert ready["role"] == "secondary" and ready["heartbeat_seen"]
    other = cluster.spawn("other", config=CONFIG)
    assert other.wait("ready", 20)["role"] == "secondary"

    # writes made on the primary itself, with other topics published in between (they share
    # the seq counter, so they are no gap) ...
    for i in range(5):
        assert primary.command(op="writes", n=1, prefix=f"local-{i}")["ok"]
        assert primary.command(op="publish", topic="session.update", payload={"i": i})["ok"]
    # ... and writes proxied from another secondary
    assert other.command(op="writes", n=3, prefix="remote")["ok"]

    expected = [f"local-{i}-0" for i in range(5)] + [f"remote-{i}" for i in range(3)]

    def inserts():
        return [e for e in watcher.events("event") if e["topic"] == "db.sessions.insert"]

    wait_for(lambda: len(inserts()) >= len(expected), 10, "8 db.sessions.insert events")
    events = inserts()
    assert [i for e in events for i in e["payload"]["ids"]] == expected
    assert [e["payload"]["writer"] for e in events] == ["p"] * 5 + ["other"] * 3
    seqs = [e["seq"] for e in watcher.events("event")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    assert {e["epoch"] for e in events} == {1}
    # nothing was lost, so the watcher never had to resynchronise
    assert watcher.command(op="role")["result"]["resyncs"] == 0
    # and the rows are in the shared database file, read here through a read-only connection
    assert {row[0] for row in db_rows(workdir, "SELECT id FROM sessions")} == set(expected)


def test_a_lost_change_event_makes_listening_secondaries_resynchronise(cluster):
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    watcher = cluster.spawn("watcher", "--events", config=CONFIG)
    assert watcher.wait("ready", 20)["role"] == "secondary"
    # change_seq baseline: one change seen
    assert primary.command(op="writes", n=1, prefix="before")["ok"]
    wait_for(lambda: any(e["topic"] == "db.sessions.insert" for e in watcher.events("event")), 10, "first change")
    assert watcher.command(op="role")["result"]["resyncs"] == 0

    # the last change is lost and nothing follows it: the next heartbeat (change_seq ahead) shows it
    assert primary.command(op="lose_change")["ok"]
    wait_for(lambda: watcher.command(op="role")["result"]["resyncs"] == 1, 10, "a resync after a heartbeat")
    resync = wait_for(
        lambda: next((e for e in watcher.events("event") if e["topic"] == "state.resync"), None),
        10,
        "state.resync handed to the listener",
    )
    assert resync["payload"]["change_seq"] == 2 and resync["payload"]["sessions"]

    # a change lost between two others: the next change event shows the gap
    assert primary.command(op="lose_change")["ok"]
    assert primary.command(op="writes", n=1, prefix="after")["ok"]
    wait_for(lambda: watcher.command(op="role")["result"]["resyncs"] == 2, 10, "a resync at the next change")
    # changes that arrive in order cause none, nor do changes to tables nobody here listens to
    # (the listener takes db.sessions.* only; the instance takes every change to count them)
    assert primary.command(op="publish_change", topic="db.files.insert", payload={"ids": ["f"], "writer": "p"})["ok"]
    assert primary.command(op="writes", n=3, prefix="more")["ok"]
    wait_for(lambda: sum(e["topic"] == "db.sessions.insert" for e in watcher.events("event")) == 5, 10, "5 changes")
    hold_for(lambda: watcher.command(op="role")["result"]["resyncs"] == 2, 0.5, "no further resync")
    assert {e["topic"] for e in watcher.events("event")} == {"db.sessions.insert", "state.resync"}


def _db_write(worker, key, method="sessions.create", **params):
    return worker.command(
        op="call", method="db.write", params={"method": method, "params": params, "key": key}
    )


def test_same_key_twice_applies_once_and_errors_keep_their_kind(cluster, workdir):
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    client = cluster.spawn("c", "--no-failover", config=CONFIG)
    assert client.wait("ready", 20)["role"] == "secondary"

    first = _db_write(client, ["idem", 1], id="idem-1", title="once")
    again = _db_write(client, ["idem", 1], id="idem-1", title="once")
    assert first["ok"] and again["ok"]
    assert first["result"] == again["result"]  # the stored result, created_at and seq included
    assert first["result"]["result"]["id"] == "idem-1"
    # the same key with different params still returns the first outcome (the key identifies the write)
    assert _db_write(client, ["idem", 1], id="idem-other", title="x")["result"] == first["result"]
    assert db_rows(workdir, "SELECT id FROM sessions") == [("idem-1",)]
    assert db_rows(workdir, "SELECT instance_id, seq, ok FROM applied_writes") == [("idem", 1, 1)]

    # a new key for the same row: a constraint error, with its kind across the wire
    conflict = _db_write(client, ["idem", 2], id="idem-1", title="twice")
    assert not conflict["ok"] and conflict["kind"] == "constraint", conflict
    assert "UNIQUE" in conflict["error"]
    # retried, the recorded error comes back the same, and nothing was written
    again = _db_write(client, ["idem", 2], id="idem-1", title="twice")
    assert (again["kind"], again["error"]) == (conflict["kind"], conflict["error"])
    assert db_rows(workdir, "SELECT COUNT(*) FROM sessions") == [(1,)]
    # through the repository API the same conflict surfaces as a ConstraintError
    via_store = client.command(op="write", sid="idem-1")
    assert (
        not via_store["ok"] and via_store["kind"] == "constraint" and via_store["type"] == "ConstraintError"
    )
    # other kinds survive too
    missing = _db_write(
        client,
        ["idem", 3],
        method="messages.create",
        session_id="nope",
        role="user",
        parts=[{"type": "text", "text": "x"}],
    )
    assert not missing["ok"] and missing["kind"] == "not_found"
    invalid = _db_write(
        client, ["idem", 4], method="messages.create", session_id="idem-1", role="wizard", parts=[]
    )
    assert not invalid["ok"] and invalid["kind"] == "validation"
    unknown = _db_write(client, ["idem", 5], method="sessions.get", id="idem-1")  # a read is not a write
    assert not unknown["ok"] and unknown["kind"] == "method_not_found"
    bad_key = client.command(
        op="call", method="db.write", params={"method": "sessions.create", "params": {}, "key": "nope"}
    )
    assert not bad_key["ok"] and bad_key["kind"] == "invalid_params"
    assert primary.proc.poll() is None


def test_pipelined_writes_go_in_batches_apply_in_order_and_fail_alone(cluster, workdir):
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    client = cluster.spawn("c", "--no-failover", config=CONFIG)
    assert client.wait("ready", 20)["role"] == "secondary"
    ids = [f"pipe-{i}" for i in range(40)]
    ids[25] = ids[5]  # a second write of an existing row: a constraint error for that write alone
    stats_before = primary.command(op="bus_stats")["result"]

    reply = client.command(op="pipeline", ids=ids, batch=16)
    assert reply["ok"], reply
    outcomes = reply["result"]
    assert outcomes[25] == {"kind": "constraint", "type": "ConstraintError"}
    assert [o.get("id") for i, o in enumerate(outcomes) if i != 25] == [sid for i, sid in enumerate(ids) if i != 25]
    # one message per 16 writes (40 -> 3), each handed whole to the coordinator, each write
    # applied in the order issued
    stats = primary.command(op="bus_stats")["result"]
    assert stats["batches"] - stats_before["batches"] == 3
    assert stats["batches_whole"] - stats_before["batches_whole"] == 3
    stored = db_rows(workdir, "SELECT id FROM sessions WHERE title = 'pipelined' ORDER BY seq")
    assert [r[0] for r in stored] == [sid for i, sid in enumerate(ids) if i != 25]
    # every write has its own key, recorded with its outcome (the failed one too)
    keys = db_rows(workdir, "SELECT ok, COUNT(*) FROM applied_writes WHERE instance_id = 'c' GROUP BY ok")
    assert dict(keys) == {0: 1, 1: 39}

    # through the context manager, leaving the block raises the first failure
    again = client.command(op="writes", prefix="pipe", n=3, pipeline=2)
    assert not again["ok"] and again["type"] == "ConstraintError"
    assert primary.proc.poll() is None


def test_key_applied_by_a_dead_primary_is_not_applied_again(cluster, workdir):
    """The applied-writes table lives in the shared database: a key resent to the next primary
    after a failover returns the stored outcome instead of applying twice."""
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    heir = cluster.spawn("heir", config=CONFIG)
    assert heir.wait("ready", 20)["role"] == "secondary"
    client = cluster.spawn("c", "--no-failover", config=CONFIG)
    assert client.wait("ready", 20)["role"] == "secondary"
    parts = [{"type": "text", "text": "exactly once"}]
    assert _db_write(client, ["k", 1], id="s1", title="t")["ok"]
    first = _db_write(client, ["k", 2], method="messages.create", session_id="s1", role="user", parts=parts)
    assert first["ok"]

    primary.kill()
    primary.reap()
    wait_for(lambda: (r := primary_record(workdir)) and r["epoch"] == 2, 10, "the heir to take over")

    def resend():
        r = _db_write(client, ["k", 2], method="messages.create", session_id="s1", role="user", parts=parts)
        return r if r["ok"] else None

    again = wait_for(resend, 10, "the resent write to be answered by the new primary")
    assert again["result"] == first["result"]
    assert db_rows(workdir, "SELECT COUNT(*) FROM messages") == [(1,)]
    assert db_rows(workdir, "SELECT message_count FROM sessions WHERE id = 's1'") == [(1,)]


def test_restarted_instance_with_the_same_id_does_not_reuse_idempotency_keys(cluster, workdir):
    """Keys live in the shared database for good: an instance id used again by a later process
    (``bootstrap(workdir, instance_id="...")``) must not get the earlier process's stored results
    for its own, different writes."""
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    first = cluster.spawn("fixed-id", "--no-failover", config=CONFIG)
    assert first.wait("ready", 20)["role"] == "secondary"
    assert first.command(op="write", sid="first-run")["result"]["id"] == "first-run"
    first.close_stdin()
    assert first.reap(10) == 0
    again = cluster.spawn("fixed-id", "--no-failover", config=CONFIG)
    assert again.wait("ready", 20)["role"] == "secondary"
    reply = again.command(op="write", sid="second-run")
    assert reply["ok"] and reply["result"]["id"] == "second-run", reply
    assert {row[0] for row in db_rows(workdir, "SELECT id FROM sessions")} == {"first-run", "second-run"}


def test_the_primary_holds_sqlite_write_lock_only_while_writes_come(cluster, workdir):
    """Between the writes of a stream the primary keeps the next transaction begun; once they
    stop, it gives SQLite's write lock back (nobody else writes there, but nothing should have
    to wait on an idle primary)."""
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    writer = cluster.spawn("w", config=CONFIG)
    assert writer.wait("ready", 20)["role"] == "secondary"
    assert writer.command(op="writes", n=50, prefix="w")["ok"]
    wait_for(lambda: another_writer_gets_in(database_path(workdir)), 5, "the primary to give SQLite's write lock back")
    assert len(db_rows(workdir, "SELECT id FROM sessions WHERE id LIKE 'w-%'")) == 50
