"""The team lease (a PostgreSQL advisory lock on a dedicated connection), on a real server and
with a real holder process that is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from pando_core.db.pg_changes import libpq_conninfo
from pando_core.runtime.team_lease import AdvisoryLease, LeaseElection, lease_key
from tests.support.waiting import hold_for, wait_for

psycopg = pytest.importorskip("psycopg")


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(libpq_conninfo(url), autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def test_lease_key_is_stable_and_distinct():
    assert lease_key("db-a", "services") == lease_key("db-a", "services")
    assert lease_key("db-a", "services") != lease_key("db-b", "services")
    assert -(2**63) <= lease_key("db-a", "x") < 2**63


def test_only_one_of_two_holds(postgres_url):
    key = lease_key(postgres_url, "services")
    first = AdvisoryLease(postgres_url, key, lambda: None)
    second = AdvisoryLease(postgres_url, key, lambda: None)
    try:
        assert first.try_acquire() and first.held
        assert not second.try_acquire() and not second.held
        assert first.try_acquire()  # holding it already
        first.release()
        assert not first.held
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.close()
        second.close()


def test_terminated_connection_loses_the_lease_and_the_other_takes_it(postgres_url):
    key = lease_key(postgres_url, "services")
    lost = threading.Event()
    holder = AdvisoryLease(postgres_url, key, lost.set)
    standby = AdvisoryLease(postgres_url, key, lambda: None)
    try:
        assert holder.try_acquire()
        assert not standby.try_acquire()
        started = time.monotonic()
        _terminate(postgres_url, holder.backend_pid)
        assert lost.wait(2), "the holder did not notice its lost connection"
        assert not holder.held
        wait_for(standby.try_acquire, 2, "the standby to take the lease", interval=0.05)
        assert time.monotonic() - started < 2
        assert not holder.try_acquire()  # reconnects, but the lease is the standby's now
    finally:
        holder.close()
        standby.close()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pando_core.runtime.team_lease import AdvisoryLease
    lease = AdvisoryLease(sys.argv[1], int(sys.argv[2]), lambda: None)
    while not lease.try_acquire():
        time.sleep(0.05)
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_sigkilled_holder_process_fails_over_within_two_seconds(postgres_url):
    key = lease_key(postgres_url, "services")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, postgres_url, str(key)], stdout=subprocess.PIPE, text=True)
    won = threading.Event()
    election = None
    try:
        assert proc.stdout.readline().strip() == "held"
        election = LeaseElection(postgres_url, key, won.set, lambda: None).start()
        hold_for(lambda: not won.is_set(), 0.7, "the standby waiting while the holder lives")
        killed = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        assert won.wait(2), "the standby did not take the lease within 2 s of the kill"
        assert time.monotonic() - killed < 2
        assert election.held
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        if election is not None:
            election.close()


def test_election_reports_loss_and_wins_again(postgres_url):
    key = lease_key(postgres_url, "services")
    events: list[str] = []
    election = LeaseElection(postgres_url, key, lambda: events.append("won"), lambda: events.append("lost")).start()
    try:
        wait_for(lambda: events == ["won"], 3, "the first win")
        _terminate(postgres_url, election.lease.backend_pid)
        wait_for(lambda: events == ["won", "lost", "won"], 3, "loss and a new win")
    finally:
        election.close()
    # a closed election has given the lease back
    other = AdvisoryLease(postgres_url, key, lambda: None)
    try:
        assert other.try_acquire()
    finally:
        other.close()


def test_a_stopped_holder_loses_the_lease_to_a_standby(postgres_url):
    """A holder that is alive but silent (SIGSTOP) stops sending its keepalive; the server ends its
    session after the idle timeout and a standby takes the lease. Resumed, the old holder finds
    its lease lost."""
    from pando_core.runtime.team_lease import IDLE_SESSION_TIMEOUT_S

    key = lease_key(postgres_url, "services")
    script = HOLDER.replace("lambda: None)", "lambda: print('lost', flush=True))")
    proc = subprocess.Popen([sys.executable, "-c", script, postgres_url, str(key)], stdout=subprocess.PIPE, text=True)
    won = threading.Event()
    election = None
    try:
        assert proc.stdout.readline().strip() == "held"
        election = LeaseElection(postgres_url, key, won.set, lambda: None).start()
        os.kill(proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        assert won.wait(IDLE_SESSION_TIMEOUT_S + 3), "the standby did not take the lease from a stopped holder"
        assert time.monotonic() - stopped >= IDLE_SESSION_TIMEOUT_S - 0.5  # not before the holder went quiet
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.stdout.readline().strip() == "lost"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        if election is not None:
            election.close()


def test_an_idle_standby_connection_is_replaced(postgres_url):
    from pando_core.runtime.team_lease import IDLE_SESSION_TIMEOUT_S

    key = lease_key(postgres_url, "services")
    holder = AdvisoryLease(postgres_url, key, lambda: None)
    standby = AdvisoryLease(postgres_url, key, lambda: None)
    try:
        assert holder.try_acquire()
        assert not standby.try_acquire()
        hold_for(lambda: holder.held, IDLE_SESSION_TIMEOUT_S + 0.5, "the holder keeping its lease while idle")
        holder.release()
        assert standby.try_acquire()  # its connection was ended by the server meanwhile: a new one
    finally:
        holder.close()
        standby.close()
