"""Jepsen-lite (spec/anchors.md §3.6): writers record acknowledgements, a nemesis SIGKILLs the
primary over and over (and once SIGSTOPs it), the checker verifies the database and the history.

Writers: the first primary plus three secondaries, each writing keyed records as fast as it can
(``worker.py --write-loop``; odd-numbered ones through ``store.pipeline``, 8 writes per message); every kill is followed by a fresh secondary writer, so there are
always four writers.  At the end, from the SQLite file (read-only) and the JSON-lines histories:

* every acknowledged write is stored exactly once; definitively rejected writes and writes nobody
  invoked are absent; ambiguous ones (in flight at a kill) at most once; ``message_count`` agrees
  with the messages table (a double-applied message would break it);
* no write ever failed with a constraint error on its own key (that would be a double apply);
* writer intervals (lock won .. last act as primary) never overlap, each starts after the
  previous primary was killed, and epochs strictly increase;
* a SIGSTOPped primary is not replaced (nobody wins the lock, the epoch stays) and the cluster
  carries on after SIGCONT.
"""

from __future__ import annotations

import signal
import time

import pytest
from reliability_kit import check_single_writer, check_writes, primary_record

from pando_core.runtime.instances import pid_alive
from tests.support.waiting import hold_for, wait_for

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

KILLS = 20
STOP_ROUND = 5  # before this kill, SIGSTOP the primary for a while instead of killing it at once
HEARTBEAT = 0.1
CONFIG = {"heartbeat_interval": HEARTBEAT}
FLAGS = ("--write-loop", "--ticks")


def pipelines(n: int) -> bool:
    """Odd-numbered writers send their writes in pipelined batches of 8 (one message per batch)."""
    return n % 2 == 1


def flags(n: int) -> tuple[str, ...]:
    return (*FLAGS, "--pipeline", "8") if pipelines(n) else FLAGS


def test_jepsen_kill_primary_repeatedly(cluster, workdir):
    started = time.monotonic()
    first = cluster.spawn("w0", *flags(0), config=CONFIG)
    assert first.wait("ready", 20)["role"] == "primary"
    writers = [first] + [cluster.spawn(f"w{i}", *flags(i), config=CONFIG) for i in (1, 2, 3)]
    for w in writers[1:]:
        assert w.wait("ready", 20)["role"] == "secondary"
    for w in writers:
        w.wait("ok", 20, what="a first acknowledged write")

    def total_acks() -> int:
        return sum(w.count("ok") for w in cluster.workers)

    kills: dict[int, dict] = {}
    failover_ms: list[float] = []
    next_name = 4
    for round_no in range(KILLS):
        record = wait_for(
            lambda: (r := primary_record(workdir)) and pid_alive(r["pid"]) and cluster.by_pid(r["pid"]) and r,
            10,
            "a live primary",
        )
        primary = cluster.by_pid(record["pid"])
        # let the cluster make progress under this primary before hitting it again
        base = total_acks()
        wait_for(
            lambda base=base: total_acks() >= base + 80, 15, f"80 more acknowledged writes (round {round_no})"
        )

        if round_no == STOP_ROUND:
            locks_before = sum(w.count("lock") for w in cluster.workers)
            primary.kill(signal.SIGSTOP)
            try:
                # > 3 heartbeat intervals: nobody takes over a live (stopped) lock holder
                hold_for(
                    lambda locks_before=locks_before, record=record: (
                        sum(w.count("lock") for w in cluster.workers) == locks_before
                        and primary_record(workdir)["epoch"] == record["epoch"]
                    ),
                    5 * HEARTBEAT,
                    "no promotion while the primary is stopped",
                )
            finally:
                primary.kill(signal.SIGCONT)
            base = total_acks()
            wait_for(lambda base=base: total_acks() >= base + 40, 15, "writes to resume after SIGCONT")
            assert primary_record(workdir)["epoch"] == record["epoch"]

        kill_m = time.monotonic_ns()
        primary.kill(signal.SIGKILL)
        kills[primary.pid] = {"epoch": record["epoch"]}
        assert primary.reap(10) == -signal.SIGKILL
        cluster.spawn(f"w{next_name}", *flags(next_name), config=CONFIG)  # there are always four writers
        next_name += 1
        new = wait_for(
            lambda record=record: (r := primary_record(workdir)) and r["epoch"] > record["epoch"] and r,
            10,
            f"a new primary after kill {round_no + 1}",
        )
        assert new["pid"] != primary.pid
        # first write acknowledged by the new primary (its own or a proxied one)
        first_ack = wait_for(
            lambda new=new: min(
                (r["m"] for w in cluster.workers for r in w.events("ok") if r.get("epoch") == new["epoch"]),
                default=None,
            ),
            10,
            "a write acknowledged under the new primary",
        )
        failover_ms.append((first_ack - kill_m) / 1e6)

    # stop the writers (each finishes its write in flight), then stop everything
    alive = [w for w in cluster.workers if w.proc.poll() is None]
    for w in alive:
        w.send(op="stop_writes")
    for w in alive:
        w.wait("stopped", 40, what="the write loop to stop")
    # secondaries first, so that none of them takes over while we tear down
    last_primary = primary_record(workdir)["pid"]
    for w in sorted(alive, key=lambda w: w.pid == last_primary):
        w.kill(signal.SIGKILL)
        w.reap(10)

    intervals = check_single_writer(cluster.workers, kills)
    assert len(intervals) == KILLS + 1
    assert intervals[-1]["epoch"] == intervals[0]["epoch"] + KILLS
    summary = check_writes(cluster.workers, workdir)
    assert summary["acked"] > 80 * KILLS
    # both write paths took part: acknowledged pipelined writes proxied by secondaries too
    pipelined = [w for w in cluster.workers if pipelines(int(w.name[1:]))]
    assert sum(1 for w in pipelined for r in w.events("ok") if r.get("role") == "secondary") > 10 * KILLS
    failover_ms.sort()
    print(
        f"\njepsen: {summary}; kills={len(kills)}; failover ms median={failover_ms[len(failover_ms) // 2]:.0f} "
        f"max={failover_ms[-1]:.0f}; {time.monotonic() - started:.1f}s"
    )
    assert time.monotonic() - started < 90


# -- team mode: the same check against PostgreSQL -----------------------------------------------

PG_WRITERS = 4
PG_KILLS = 8
PG_RESTART_ROUND = 4  # before this kill, the nemesis restarts the PostgreSQL server


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own (the nemesis restarts it), stopped by pid at the end."""
    pytest.importorskip("psycopg")
    from pando_core.testing.postgres import find_bindir, temporary_server

    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found")
    with temporary_server("pando-pg-jepsen-") as server:
        yield server


def test_jepsen_on_postgres_kill_writers_and_restart_the_server(cluster, tmp_path, own_postgres):
    """Team mode: four writers on two "machines" (working directories) write directly to one
    PostgreSQL database; the nemesis SIGKILLs a writer every round (a fresh one replaces it) and
    restarts the server once. Every acknowledged write is stored exactly once."""
    from reliability_kit import postgres_rows

    started = time.monotonic()
    url = own_postgres.create_database("jepsen")
    machines = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for machine in machines:
        machine.mkdir()

    def spawn(n: int):
        return cluster.spawn(f"p{n}", *flags(n), "--database-url", url, config=CONFIG, workdir=machines[n % 2])

    writers = [spawn(i) for i in range(PG_WRITERS)]
    for w in writers:
        w.wait("ready", 30)
        w.wait("ok", 20, what="a first acknowledged write")

    def total_acks() -> int:
        return sum(w.count("ok") for w in cluster.workers)

    next_name = PG_WRITERS
    restart_failures = 0
    for round_no in range(PG_KILLS):
        base = total_acks()
        wait_for(lambda base=base: total_acks() >= base + 80, 20, f"80 more acknowledged writes (round {round_no})")
        if round_no == PG_RESTART_ROUND:
            before = sum(w.count("fail") for w in cluster.workers)
            own_postgres.restart()  # every connection drops; writes in flight are retried or fail
            base = total_acks()
            wait_for(lambda base=base: total_acks() >= base + 80, 30, "writes to resume after the restart")
            restart_failures = sum(w.count("fail") for w in cluster.workers) - before
        alive = [w for w in cluster.workers if w.proc.poll() is None]
        victim = alive[round_no % len(alive)]
        victim.kill(signal.SIGKILL)
        assert victim.reap(10) == -signal.SIGKILL
        replacement = spawn(next_name)
        next_name += 1
        replacement.wait("ready", 30)

    alive = [w for w in cluster.workers if w.proc.poll() is None]
    for w in alive:
        w.send(op="stop_writes")
    for w in alive:
        w.wait("stopped", 40, what="the write loop to stop")
    for w in alive:
        w.kill(signal.SIGKILL)
        w.reap(10)

    summary = check_writes(cluster.workers, None, postgres_rows(url))
    assert summary["acked"] > 80 * PG_KILLS
    print(
        f"\njepsen on postgres: {summary}; writers killed={PG_KILLS}; failures around the server restart="
        f"{restart_failures}; {time.monotonic() - started:.1f}s"
    )
    assert time.monotonic() - started < 120
