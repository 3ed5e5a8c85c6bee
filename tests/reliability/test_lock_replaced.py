"""``ipc.lock`` replaced under a running primary with writers on both sides (issue 19, item 8).

Until the old primary's next lease check (up to ``lease_check_interval``) two processes write the
one database: each must still hand out ``seq`` values nobody else has."""

from __future__ import annotations

import os

import pytest
from reliability_kit import db_rows

from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


def test_seq_stays_unique_while_a_replaced_lock_has_two_writers(cluster, workdir):
    config = {"heartbeat_interval": 0.1, "lease_check_interval": 3.0}  # a wide window
    old = cluster.spawn("old", "--write-loop", config=config)
    assert old.wait("ready")["role"] == "primary"
    proxied = cluster.spawn("proxied", "--write-loop", "--no-failover", config=config)
    assert proxied.wait("ready")["role"] == "secondary"
    wait_for(lambda: old.count("ok") > 50 and proxied.count("ok") > 50, 30, "writes on both sides")
    lock = workdir / ".pando" / "ipc.lock"
    replacement = workdir / ".pando" / "ipc.lock.new"
    replacement.write_bytes(b"")
    os.chmod(replacement, 0o600)
    os.replace(replacement, lock)  # the old primary's lock is now on a file nobody can name
    new = cluster.spawn("new", "--write-loop", config=config)
    ready = new.wait("ready", 20)
    assert ready["role"] == "primary" and ready["epoch"] == 2
    wait_for(lambda: old.command(op="role")["result"]["fenced"], 10, "the old primary to fence itself")
    wait_for(lambda: new.count("ok") > 50, 30, "the new primary's writes")
    for worker in (old, proxied, new):
        worker.command(op="stop_writes", wait_s=60)
    assert new.count("ok") and old.count("ok")
    for table in ("sessions", "messages"):
        duplicates = db_rows(workdir, f"SELECT seq, count(*) FROM {table} GROUP BY seq HAVING count(*) > 1")
        assert duplicates == [], f"{table}: {len(duplicates)} seq values handed out twice, e.g. {duplicates[:5]}"
