"""Cold start: 8 processes started at once on a fresh workdir (spec/anchors.md §3.6 step 5)."""

from __future__ import annotations

import pytest
from reliability_kit import db_rows, primary_record

from tests.support.waiting import hold_for

pytestmark = pytest.mark.reliability

N = 8


def test_eight_processes_cold_start_one_primary_and_all_can_write(cluster, workdir):
    assert not (workdir / ".pando").exists()
    workers = [cluster.spawn(f"cold{i}", "--write-once") for i in range(N)]
    ready = [w.wait("ready", timeout=30, what="ready") for w in workers]
    roles = sorted(r["role"] for r in ready)
    assert roles == ["primary"] + ["secondary"] * (N - 1), roles
    primary = next(w for w, r in zip(workers, ready, strict=True) if r["role"] == "primary")
    # exactly one process ever won the lock, and it is the one primary.json names
    assert [w.name for w in workers if w.count("lock")] == [primary.name]
    record = primary_record(workdir)
    assert record is not None and record["pid"] == primary.pid and record["epoch"] == 1
    # every instance, primary or secondary, writes its own row
    acks = [w.wait(lambda r: r.get("ev") in ("ok", "fail"), timeout=30, what="boot write") for w in workers]
    assert all(a["ev"] == "ok" for a in acks), [a for a in acks if a["ev"] != "ok"]
    ids = {row[0] for row in db_rows(workdir, "SELECT id FROM sessions WHERE id LIKE 'cold%-boot'")}
    assert ids == {f"cold{i}-boot" for i in range(N)}
    # and each write went through the one writer: every secondary write is keyed in applied_writes
    keyed = {row[0] for row in db_rows(workdir, "SELECT instance_id FROM applied_writes")}
    assert keyed == {w.name for w in workers if w is not primary}
    for w in workers:
        w.close_stdin()
    for w in workers:
        assert w.reap(20) == 0, w.stderr[-20:]


@pytest.mark.parametrize("previous", ["fresh", "stale-record"])
def test_instances_started_while_the_lock_holder_has_no_primary_yet(cluster, workdir, previous):
    """A process holds the lock but has not opened the database or bound anything (a primary
    still starting up). Instances started meanwhile wait (no database or only a stale
    primary.json of a dead primary); when the holder goes away one of them becomes primary, the
    other its secondary, and both write."""
    epoch = 1
    if previous == "stale-record":
        dead = cluster.spawn("dead")
        assert dead.wait("ready", 20)["role"] == "primary"
        dead.kill()
        dead.reap()
        assert primary_record(workdir)["pid"] == dead.pid
        epoch = 2
    holder = cluster.spawn("holder", "--lock-only")
    holder.wait("locked", 20)
    early = [cluster.spawn(f"early{i}", "--write-once") for i in range(2)]
    for w in early:
        w.wait("starting", 20)
    # parked in bootstrap: nobody becomes ready (or primary) while the lock has no live primary
    hold_for(lambda: not any(w.count("ready") or w.count("lock") for w in early), 1.0, "instances waiting")
    assert (workdir / ".pando" / "pando.db").exists() == (previous == "stale-record")

    holder.send(op="release")
    holder.wait("released", 10)
    ready = {w.name: w.wait("ready", 20) for w in early}
    assert sorted(r["role"] for r in ready.values()) == ["primary", "secondary"], ready
    assert {r["epoch"] for r in ready.values()} == {epoch}
    for w in early:
        ack = w.wait(lambda r: r["ev"] in ("ok", "fail"), 20)
        assert ack["ev"] == "ok", ack
    assert {row[0] for row in db_rows(workdir, "SELECT id FROM sessions")} == {"early0-boot", "early1-boot"}
    # the one that became primary won the lock exactly once, the other never did
    assert sorted(w.count("lock") for w in early) == [0, 1]
