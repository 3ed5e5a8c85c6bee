"""Cold start: 8 processes started at once on a fresh workdir (spec/anchors.md §3.6 step 5)."""

from __future__ import annotations

from reliability_kit import db_rows, primary_record

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
