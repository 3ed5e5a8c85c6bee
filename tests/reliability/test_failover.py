"""Failover paths other than the crash loop: graceful handover, a hung primary, plugin RPC
methods after promotion."""

from __future__ import annotations

import signal
import time

import pytest
from reliability_kit import check_single_writer, check_writes, db_rows, primary_record

from tests.support.waiting import hold_for, wait_for

pytestmark = pytest.mark.reliability

HEARTBEAT = 0.1
CONFIG = {"heartbeat_interval": HEARTBEAT}


@pytest.mark.parametrize("how", ["cleanup", "sigterm"])
def test_graceful_handover_under_write_load_loses_nothing(cluster, workdir, how):
    primary = cluster.spawn("p", "--ticks", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    writers = [cluster.spawn(f"w{i}", "--write-loop", "--ticks", config=CONFIG) for i in range(3)]
    for w in writers:
        assert w.wait("ready", 20)["role"] == "secondary"
    for w in writers:
        w.wait(lambda r: r["ev"] == "ok" and r["n"] >= 20, 20, what="20 writes before the handover")

    if how == "cleanup":
        primary.send(op="cleanup")
    else:
        primary.kill(signal.SIGTERM)
    started = primary.wait("cleanup_start", 10)
    primary.wait("bye", 15, what="the primary's cleanup to finish")
    new = wait_for(lambda: (r := primary_record(workdir)) and r["epoch"] == 2 and r, 10, "a new primary")
    promoted = cluster.by_pid(new["pid"])
    assert promoted in writers
    promoted.wait(lambda r: r["ev"] == "role" and r["role"] == "primary", 5)
    # every writer carries on under the new primary
    for w in writers:
        w.wait(
            lambda r: r["ev"] == "ok" and r.get("epoch") == 2, 10, what="a write acknowledged under epoch 2"
        )
    handover_ms = (
        min(r["m"] for w in writers for r in w.events("ok") if r.get("epoch") == 2) - started["m"]
    ) / 1e6
    assert handover_ms < 2000, f"handover took {handover_ms:.0f} ms"

    if how == "cleanup":
        primary.close_stdin()
    assert primary.reap(10) == 0
    for w in writers:
        w.send(op="stop_writes")
    for w in writers:
        w.wait("stopped", 40)
    failures = [r for w in writers for r in w.events("fail")]
    assert not failures, failures[:5]
    for w in sorted(writers, key=lambda w: w is promoted):
        w.kill()
        w.reap()
    check_single_writer(cluster.workers, {})
    summary = check_writes(cluster.workers, workdir)
    assert summary["in_flight_at_kill"] == 0 and summary["acked"] == summary["invoked"]
    print(f"\nhandover ({how}): {handover_ms:.0f} ms; {summary}")


def test_stopped_primary_is_reported_not_replaced(cluster, workdir):
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    secondaries = [cluster.spawn(f"s{i}", config={**CONFIG, "write_timeout": 20}) for i in range(2)]
    for s in secondaries:
        assert s.wait("ready", 20)["role"] == "secondary"
    assert secondaries[0].command(op="ensure_primary", timeout=2.0)["ok"]
    record = primary_record(workdir)

    primary.kill(signal.SIGSTOP)
    try:
        # no heartbeats, no pings answered: still nobody takes the lock of a live process
        hold_for(
            lambda: (
                not any(s.count("lock") or s.count("role") for s in secondaries)
                and primary_record(workdir) == record
            ),
            5 * HEARTBEAT,
            "secondaries staying secondary",
        )
        mark = secondaries[0].mark()
        reply = secondaries[0].command(op="ensure_primary", timeout=0.5)
        assert not reply["ok"] and reply["kind"] == "unavailable"
        assert "does not answer" in reply["error"] and f"pid {primary.pid}" in reply["error"], reply["error"]
        took = secondaries[0].wait("ensure_primary_took", 5, mark)["seconds"]
        assert 0.4 < took < 2.0
        # a write issued now waits (it must not go anywhere else)
        pending = secondaries[1].mark()
        secondaries[1].send(op="write", sid="during-stop", tag="during-stop")
        assert secondaries[0].command(op="role")["result"]["role"] == "secondary"
        hold_for(
            lambda: not db_rows(workdir, "SELECT id FROM sessions WHERE id = 'during-stop'"),
            1.0,
            "no write while the primary is stopped",
        )
    finally:
        primary.kill(signal.SIGCONT)

    reply = secondaries[1].wait(
        lambda r: r.get("tag") == "during-stop", 20, pending, what="the write issued while stopped"
    )
    assert reply["ok"], reply
    assert secondaries[0].command(op="write", sid="after-cont")["ok"]
    assert secondaries[0].command(op="ensure_primary", timeout=2.0)["ok"]
    assert db_rows(
        workdir, "SELECT id FROM sessions WHERE id IN ('during-stop', 'after-cont') ORDER BY id"
    ) == [
        ("after-cont",),
        ("during-stop",),
    ]
    assert primary_record(workdir) == record
    assert not any(s.count("lock") for s in secondaries)


def test_plugin_rpc_method_survives_promotion(cluster, workdir):
    primary = cluster.spawn("p", "--echo", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    heir = cluster.spawn("heir", "--echo", config=CONFIG)
    assert heir.wait("ready", 20)["role"] == "secondary"
    caller = cluster.spawn("caller", "--no-failover", config=CONFIG)
    assert caller.wait("ready", 20)["role"] == "secondary"

    reply = caller.command(op="call", method="echo.ping", params={"n": 1})
    assert reply["ok"] and reply["result"]["served_by"] == "p" and reply["result"]["echo"] == {"n": 1}

    primary.kill()
    primary.reap()
    heir.wait(lambda r: r["ev"] == "role" and r["role"] == "primary", 10, what="promotion")
    heir.wait("echo_registered", 5)

    def call_echo():
        r = caller.command(op="call", method="echo.ping", params={"n": 2}, timeout=1.0)
        return r if r["ok"] else None

    reply = wait_for(call_echo, 10, "echo.ping answered by the promoted instance")
    assert reply["result"]["served_by"] == "heir" and reply["result"]["epoch"] == 2
    assert reply["result"]["echo"] == {"n": 2}
    # a method nobody registered is still refused with its kind intact
    reply = caller.command(op="call", method="echo.nope", params={})
    assert not reply["ok"] and reply["kind"] == "method_not_found"


def test_failover_when_promoted_secondary_had_writes_in_flight(cluster, workdir):
    """Writers on every secondary; the primary dies; whichever secondary promotes applies its own
    in-flight write locally under the same key, and the others resend theirs to it."""
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    writers = [cluster.spawn(f"w{i}", "--write-loop", "--ticks", config=CONFIG) for i in range(3)]
    for w in writers:
        w.wait(lambda r: r["ev"] == "ok" and r["n"] >= 10, 20)
    kill_m = time.monotonic_ns()
    primary.kill()
    primary.reap()
    new = wait_for(lambda: (r := primary_record(workdir)) and r["epoch"] == 2 and r, 10, "a new primary")
    for w in writers:
        first = w.wait(lambda r: r["ev"] == "ok" and r["m"] > kill_m and r.get("epoch") == 2, 10)
        assert (first["m"] - kill_m) / 1e6 < 3000
    for w in writers:
        w.send(op="stop_writes")
    for w in writers:
        w.wait("stopped", 40)
    for w in sorted(writers, key=lambda w: w.pid == new["pid"]):
        w.kill()
        w.reap()
    check_single_writer(cluster.workers, {primary.pid: {"epoch": 1}})
    summary = check_writes(cluster.workers, workdir)
    assert summary["acked"] == summary["invoked"], summary


def test_dead_primary_without_failover_is_reported_and_followed_later(cluster, workdir):
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    lonely = cluster.spawn("lonely", "--no-failover", config=CONFIG)
    assert lonely.wait("ready", 20)["role"] == "secondary"
    primary.kill()
    primary.reap()
    mark = lonely.mark()
    reply = lonely.command(op="ensure_primary", timeout=0.5)
    assert not reply["ok"] and reply["kind"] == "unavailable"
    assert "is gone" in reply["error"], reply["error"]
    assert lonely.wait("ensure_primary_took", 5, mark)["seconds"] < 2.0
    assert not lonely.count("lock")  # failover disabled: it never takes the lock
    # a new instance becomes primary; the lonely secondary follows it and writes again
    successor = cluster.spawn("successor", config=CONFIG)
    assert successor.wait("ready", 20)["role"] == "primary"
    wait_for(lambda: lonely.command(op="ensure_primary", timeout=0.5)["ok"], 10, "the secondary to follow")
    assert lonely.command(op="write", sid="after-successor")["ok"]
    assert db_rows(workdir, "SELECT id FROM sessions") == [("after-successor",)]
    assert not lonely.count("lock")


def test_failed_promotion_leaves_a_working_secondary_and_no_second_writer(cluster, workdir):
    """The instance that wins the lock cannot finish its promotion (here: its bus cannot be
    built). It must give the lock back, stay a secondary that never writes the database
    itself, and follow whoever becomes primary next."""
    primary = cluster.spawn("p", config=CONFIG)
    assert primary.wait("ready", 20)["role"] == "primary"
    heir = cluster.spawn("heir", config={**CONFIG, "max_message_bytes": 100, "write_timeout": 20})
    assert heir.wait("ready", 20)["role"] == "secondary"
    primary.kill()
    primary.reap()
    heir.wait("lock", 10, what="the heir to win the lock")
    wait_for(lambda: any("promotion failed" in line for line in heir.stderr), 10, "the failed promotion")
    assert not heir.count("role")
    # with no primary at all, a write must wait, not go straight into the database
    mark = heir.mark()
    heir.send(op="write", sid="no-primary-yet", tag="gap")
    hold_for(
        lambda: (
            not any(r.get("tag") == "gap" for r in heir.events("reply"))
            and not db_rows(workdir, "SELECT id FROM sessions WHERE id = 'no-primary-yet'")
        ),
        1.0,
        "the write waiting for a primary",
    )
    successor = cluster.spawn("successor", config=CONFIG)
    ready = successor.wait("ready", 20)
    assert ready["role"] == "primary" and ready["epoch"] == 2
    reply = heir.wait(lambda r: r.get("tag") == "gap", 20, mark, what="the write, through the successor")
    assert reply["ok"], reply
    # it went through the successor's coordinator (keyed), not through a local connection
    assert db_rows(workdir, "SELECT instance_id FROM applied_writes") == [("heir",)]
    assert heir.command(op="role")["result"]["role"] == "secondary"


def test_primary_whose_lock_file_is_replaced_stops_writing(cluster, workdir):
    """``ipc.lock`` deleted under a running primary (``rm -rf .pando``): a new process locks the
    new file and becomes primary. The old one must notice and stop writing, so there is never a
    second writer, while its reads keep working."""
    from pando_core.errors import UnavailableError
    from pando_core.runtime.bootstrap import bootstrap

    old = bootstrap(workdir, failover=False, config={**CONFIG, "lease_check_interval": 0.05})
    try:
        assert old.role == "primary"
        old.store.sessions.create(id="before", title="t")
        wait_for(lambda: old.lease_guard.checks >= 3, 5, "a few lease checks")
        assert old.fenced is None  # the lock file is ours: no false alarm
        (workdir / ".pando" / "ipc.lock").unlink()
        successor = cluster.spawn("successor", config=CONFIG)
        ready = successor.wait("ready", 20)
        assert ready["role"] == "primary" and ready["epoch"] == 2
        wait_for(lambda: old.fenced, 5, "the old primary to fence itself")
        assert "deleted or replaced" in old.fenced
        with pytest.raises(UnavailableError, match="restart pando"):
            old.store.sessions.create(id="after", title="t")
        with pytest.raises(UnavailableError, match="restart pando"), old.store.pipeline() as pipe:
            pipe.sessions.create(id="after-1", title="t")
            pipe.sessions.create(id="after-2", title="t")
        assert not old.bus.running
        assert old.store.sessions.get(id="before")["title"] == "t"  # reads still work
        reply = successor.command(op="write", sid="by-successor")
        assert reply["ok"], reply
        assert db_rows(workdir, "SELECT id FROM sessions ORDER BY id") == [("before",), ("by-successor",)]
    finally:
        old.cleanup()
