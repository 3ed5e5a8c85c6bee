"""The team lease: which instance, of all those sharing one PostgreSQL database, runs a group of
role-scoped services (schedulers, indexers, the orchestrator).

On one machine the primary's file lock elects that owner; across machines a PostgreSQL
session-level advisory lock does. :class:`AdvisoryLease` holds it on a connection of its own, used
for nothing else, so the lease lives exactly as long as that connection: when the holder dies
(even SIGKILL) the server ends its session and releases the lock, and when the holder's
connection drops, a keepalive check (every :data:`KEEPALIVE_INTERVAL_S`) notices within about a
third of a second, marks the lease lost and calls ``on_lost`` so its services stop. A holder
that is alive but silent (stopped, hung, cut off) stops sending that check, and the server ends
its session after :data:`IDLE_SESSION_TIMEOUT_S`, so the lease moves then. Between the
drop and that check the old holder may still believe it holds the lease: services elected this
way must tolerate a brief overlap (their writes go through the database, which stays consistent).

:class:`LeaseElection` keeps trying for the lease on a standby (every :data:`RETRY_INTERVAL_S`),
so that a lost holder is replaced within ``keepalive + retry`` -- well under two seconds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pando.runtime.lease")

KEEPALIVE_INTERVAL_S = 0.3
RETRY_INTERVAL_S = 0.5
# libpq settings so that a silent network (not only a closed socket) ends the lease's connection
_CONNECT_OPTIONS = {"keepalives": 1, "keepalives_idle": 2, "keepalives_interval": 1, "keepalives_count": 2,
                    "tcp_user_timeout": 2000}
# The server's side of the same: a holder that stops talking (SIGSTOPped, hung, cut off by the
# network) sends no keepalive query for IDLE_SESSION_TIMEOUT_S, and the server ends its session,
# which frees the lease for a standby (PostgreSQL 14+; on 13 its TCP keepalives do, more slowly).
IDLE_SESSION_TIMEOUT_S = 3
_SERVER_SETTINGS = ("SET tcp_keepalives_idle = 2", "SET tcp_keepalives_interval = 1", "SET tcp_keepalives_count = 2")


def lease_key(database: str, group: str) -> int:
    """The advisory-lock key for service *group* on *database* (a signed 64-bit integer, as
    ``pg_try_advisory_lock(bigint)`` takes): every instance derives the same key from the same
    database identity and group name."""
    digest = hashlib.blake2b(f"pando-lease\0{database}\0{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lease_holder(dsn: str, key: int, password: str | None = None, timeout: float = 2.0) -> str | None:
    """The ``application_name`` of the session holding the lease *key* (None: nobody holds it,
    or the server cannot be asked). Advisory locks on a bigint key show in ``pg_locks`` as its
    high and low 32 bits (``classid``, ``objid``) with ``objsubid = 1``."""
    import psycopg

    from ..db.pg_changes import libpq_conninfo

    unsigned = key & 0xFFFFFFFFFFFFFFFF
    options = {"password": password} if password else {}
    try:
        with psycopg.connect(libpq_conninfo(dsn), autocommit=True, connect_timeout=max(1, int(timeout)), **options) as conn:
            row = conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                " AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())",
                (unsigned >> 32, unsigned & 0xFFFFFFFF),
            ).fetchone()
    except psycopg.Error as exc:
        log.debug("lease %d: cannot ask who holds it (%s)", key, exc)
        return None
    return str(row[0]) if row is not None else None


class AdvisoryLease:
    """A session-level advisory lock on a dedicated psycopg connection: held = this instance is
    the owner. ``on_lost()`` runs (on the keepalive thread) once when a held lease is lost."""

    def __init__(self, dsn: str, key: int, on_lost: Callable[[], None], *,
                 keepalive_interval: float = KEEPALIVE_INTERVAL_S, connect_timeout: float = 3.0,
                 password: str | None = None, application_name: str | None = None) -> None:
        from ..db.pg_changes import libpq_conninfo

        self.dsn = libpq_conninfo(dsn)
        self.key = key
        self.on_lost = on_lost
        self.keepalive_interval = keepalive_interval
        self.connect_timeout = connect_timeout
        self._options = dict(_CONNECT_OPTIONS, **({"password": password} if password else {}))
        if application_name:  # what lease_holder() reads back: who holds the lease, for error messages
            self._options["application_name"] = application_name[:63]
        self._conn: Any = None
        self._held = False
        self._lock = threading.Lock()  # the connection and _held
        self._closed = threading.Event()
        self._keepalive: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._held

    @property
    def backend_pid(self) -> int | None:
        conn = self._conn
        try:
            return conn.info.backend_pid if conn is not None and not conn.closed else None
        except Exception:  # noqa: BLE001
            return None

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it (never waits for a holder); True when held. An
        unreachable server is "not acquired" (logged), not an error: a standby simply tries again."""
        import psycopg

        with self._lock:
            if self._closed.is_set():
                return False
            if self._held:
                return True
            got = False
            for attempt in (1, 2):  # a kept connection the server has ended since (idle) is replaced once
                fresh = self._conn is None or self._conn.closed
                try:
                    if fresh:
                        self._conn = psycopg.connect(self.dsn, autocommit=True,
                                                     connect_timeout=max(1, int(self.connect_timeout)), **self._options)
                        self._configure_session(self._conn)
                    got = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]
                    break
                except psycopg.Error as exc:
                    self._drop()
                    if fresh or attempt == 2:
                        log.debug("lease %d: cannot reach the database (%s)", self.key, exc)
                        return False
            self._held = bool(got)
        if got:
            self._start_keepalive()
        return bool(got)

    def _configure_session(self, conn: Any) -> None:
        for statement in _SERVER_SETTINGS:
            conn.execute(statement)
        if conn.info.server_version >= 140000 and self.keepalive_interval < IDLE_SESSION_TIMEOUT_S / 3:
            conn.execute(f"SET idle_session_timeout = '{IDLE_SESSION_TIMEOUT_S}s'")

    def _start_keepalive(self) -> None:
        thread = self._keepalive
        if thread is None or not thread.is_alive():
            self._keepalive = threading.Thread(target=self._keep_alive, name="pando-lease-keepalive", daemon=True)
            self._keepalive.start()

    def _keep_alive(self) -> None:
        import psycopg

        while not self._closed.wait(self.keepalive_interval):
            with self._lock:
                if not self._held:
                    return
                try:
                    self._conn.execute("SELECT 1")
                    continue
                except psycopg.Error as exc:
                    log.warning("lease %d lost: its connection failed (%s)", self.key, exc)
                    self._held = False
                    self._drop()
            try:
                self.on_lost()
            except Exception:  # noqa: BLE001 - the owner's reaction is its own
                log.exception("lease on_lost callback failed")
            return

    def release(self) -> None:
        """Give the lease up (the connection stays open for the next :meth:`try_acquire`)."""
        import psycopg

        with self._lock:
            if not self._held:
                return
            self._held = False
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            except psycopg.Error:
                self._drop()  # closing the session releases it anyway

    def close(self) -> None:
        self.release()
        self._closed.set()
        with self._lock:
            self._drop()
        thread = self._keepalive
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.keepalive_interval + 1)

    def _drop(self) -> None:
        from ..db.pg_changes import close_quietly

        conn, self._conn = self._conn, None
        close_quietly(conn)


class LeaseElection:
    """Hold *key* when possible: try now and then every *retry_interval* seconds while not held;
    ``on_won()`` when this instance takes the lease, ``on_lost()`` when it loses it (both on the
    election's thread, one at a time)."""

    def __init__(self, dsn: str, key: int, on_won: Callable[[], None], on_lost: Callable[[], None], *,
                 retry_interval: float = RETRY_INTERVAL_S, password: str | None = None,
                 application_name: str | None = None) -> None:
        self._lost = threading.Event()
        self.lease = AdvisoryLease(dsn, key, self._lost.set, password=password, application_name=application_name)
        self.on_won = on_won
        self.on_lost = on_lost
        self.retry_interval = retry_interval
        self.wins = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self.lease.held

    def start(self) -> LeaseElection:
        self._thread = threading.Thread(target=self._run, name="pando-lease-election", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.lease.held and self.lease.try_acquire():
                self._lost.clear()
                self.wins += 1
                self._call(self.on_won)
            if self.lease.held:
                # wake as soon as the keepalive reports the loss (or on stop)
                while not self._lost.wait(0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                self._call(self.on_lost)
                continue  # try again at once: perhaps only our connection dropped
            self._stop.wait(self.retry_interval)

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # noqa: BLE001
            log.exception("lease election callback failed")

    def stop_trying(self, timeout: float = 2.0) -> None:
        """Stop the election's thread: no more ``on_won``/``on_lost`` calls; a held lease stays
        held until :meth:`close` (so its services can stop before another instance starts them)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Stop trying and give the lease up. ``on_lost`` is not called for this deliberate
        release: the caller stops its services itself, before."""
        self.stop_trying(timeout)
        self.lease.close()
