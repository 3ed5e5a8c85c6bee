"""A damaged ``primary.json`` (issue 19, item 4).

The epoch is kept in the database too, the primary rewrites a damaged record, and a newcomer
finds the primary on its derived endpoints instead of waiting for the record."""

from __future__ import annotations

import time

import pytest
from reliability_kit import primary_record

from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(150)

CONFIG = {"heartbeat_interval": 0.1}


def _damage(workdir) -> None:
    (workdir / ".pando" / "primary.json").write_text('{"instance_id": "p", "epoch": ')


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_a_newcomer_joins_a_healthy_primary_with_a_damaged_record_and_the_record_is_repaired(cluster, workdir, transport):
    config = {**CONFIG, "transport": transport}
    primary = cluster.spawn("p", config=config)
    assert primary.wait("ready")["role"] == "primary"
    _damage(workdir)
    started = time.monotonic()
    newcomer = cluster.spawn("n", config=config)
    ready = newcomer.wait("ready", 20)
    joined = time.monotonic() - started
    assert ready["role"] == "secondary" and ready["epoch"] == 1
    assert joined < 5.0, f"joining took {joined:.1f}s"  # (it waited 15 s and gave up before)
    wait_for(lambda: (primary_record(workdir) or {}).get("pid") == primary.pid, 5, "the record to be rewritten")
    assert newcomer.command(op="write", sid="through-the-primary")["ok"]


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_the_epoch_keeps_growing_without_the_record_and_secondaries_follow(cluster, workdir, transport):
    # lease checks (which rewrite the record) far apart: the record stays damaged while a primary dies
    config = {**CONFIG, "transport": transport, "lease_check_interval": 30}
    first = cluster.spawn("p", config=config)
    assert first.wait("ready")["role"] == "primary"
    standbys = [cluster.spawn(name, config=config) for name in ("a", "b", "c")]
    for standby in standbys:
        assert standby.wait("ready", 20)["role"] == "secondary"
    epochs = [1]
    for _ in range(2):
        current = next(w for w in [first, *standbys] if w.proc.poll() is None and w.command(op="role")["result"]["role"] == "primary")
        _damage(workdir)
        current.kill()
        current.reap()
        alive = [w for w in standbys if w.proc.poll() is None]
        wait_for(
            lambda alive=alive: any(w.count("role") > 0 and w.events("role")[-1]["role"] == "primary" and w.events("role")[-1]["epoch"] > epochs[-1] for w in alive),
            20,
            "a secondary's promotion",
        )
        promoted = next(w for w in alive if w.count("role") and w.events("role")[-1]["epoch"] > epochs[-1])
        epochs.append(promoted.events("role")[-1]["epoch"])
        # everyone else follows the new primary, although the record they read last was damaged
        for follower in (w for w in alive if w is not promoted):
            wait_for(
                lambda f=follower, pid=promoted.pid: f.command(op="role")["result"]["record_pid"] == pid, 10, "a follower to follow"
            )
            assert follower.command(op="write", sid=f"{follower.name}-at-{epochs[-1]}")["ok"]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 3, epochs
