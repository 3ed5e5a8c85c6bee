"""Failover: a secondary parks a thread in a blocking lock acquire and promotes when it wins.

The OS lock is the primary's lease: the kernel releases it when the primary dies, even on
SIGKILL, so the waiting secondary learns of the crash within one poll of the lock; a promotion
that fails (a full disk) gives the lock back and is tried again with backoff. A primary that
is alive but hung (SIGSTOP, deadlock) still holds the lock: nobody promotes, and ``ensure_primary``
reports it. Every secondary also follows ``primary.json``, so when another instance is promoted it
reconnects there and resends its in-flight writes with their original keys.

:class:`RoleChanges` is the part of the `~.bootstrap.Runtime` that changes its role after start-up
(promote, follow, fence); the watchers below decide when.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from ..db import Database, LocalExecutor, database_path
from ..db.storage import storage_full
from ..errors import UnavailableError, one_line
from . import protocol as P
from .auth import client_auth
from .lock import LockError, PrimaryRecord, read_primary_record, write_primary_record
from .roles import PRIMARY, SECONDARY
from .write_proxy import ProxyExecutor

log = logging.getLogger("pando.failover")

FOLLOW_INTERVAL_S = 0.02
PROMOTION_RETRY_FIRST_S = 0.1  # after a failed promotion: pause, doubled after each failure...
PROMOTION_RETRY_MAX_S = 5.0  # ...up to this


class RoleChanges:
    """The role changes of a `~.bootstrap.Runtime` after start-up (a mixin of it: they change
    its state under its ``state_lock``)."""

    def promote(self, lock: Any = None) -> None:
        """This secondary won the lock: become the primary (its in-flight writes are applied here)."""
        with self.state_lock:
            if self.role == PRIMARY:
                return
            started = time.monotonic()
            old_client, old_db, old_record = self.client, self.db, self.record
            proxy = self.store.executor if self.store is not None else None
            self.client = None
            if old_client is not None:
                old_client.close(timeout=1.0)  # in-flight proxied writes go local, same keys
            if old_db is not None and not self.database.team:  # team mode: it is read-write already
                old_db.dispose()
            try:
                self._become_primary()
            except BaseException:
                self._undo_promotion(proxy, old_record)
                raise
            self.primary_changed.notify_all()
        assert self.bus is not None
        self.bus.publish(P.INSTANCE_PROMOTED, {"instance_id": self.instance_id, "epoch": self.epoch, "pid": os.getpid()})
        self.instances.register(self.instance_id, self.role, self.epoch)
        log.info("promoted to primary (epoch %s) in %.0f ms", self.epoch, (time.monotonic() - started) * 1000)
        for callback in list(self._promoted_callbacks):
            try:
                callback(self)
            except Exception:  # noqa: BLE001 - a plugin must not undo the promotion
                log.exception("promotion callback failed")

    def _undo_promotion(self, proxy: Any, record: PrimaryRecord | None) -> None:
        """A promotion failed half-way (the caller then gives the lock back): drop whatever it
        built -- above all the read-write connection the store may already be writing through --
        and be a secondary again, proxying writes, pointed at the last known primary so that the
        follower re-points it at whoever is promoted next. Never a writer without the lock."""
        bus, coordinator, db = self.bus, self.coordinator, self.db
        kept = db if self.database.team else None  # team mode: the shared database stays open
        if kept is not None:
            db = None
        self.bus = self.coordinator = None
        if self.lease_guard is not None:
            self.lease_guard.stop()
            self.lease_guard = None
        self.role = SECONDARY
        self.record = record
        self.epoch = record.epoch if record is not None else 0
        for closer in (
            (lambda: bus.stop(timeout=2.0)) if bus is not None else None,
            (lambda: coordinator.close(timeout=2.0)) if coordinator is not None else None,
            (lambda: db.dispose()) if db is not None else None,
        ):
            if closer is not None:
                try:
                    closer()
                except Exception:  # noqa: BLE001
                    log.exception("cleaning up after a failed promotion")
        if self.database.team:  # the shared database stays open read-write: writes never needed the primary
            self.db = kept if kept is not None else self._open_writable()
            if self.store is not None:
                self.store.use(LocalExecutor(self.db, self.instance_id))
        else:
            self.db = Database(database_path(self.workdir), readonly=True)
        if isinstance(proxy, ProxyExecutor) and self.store is not None:
            proxy.db = self.db  # same executor: its idempotency key sequence carries on
            self.store.use(proxy)
        if record is not None:
            try:
                self.client = self._client(record, client_auth(self.pando_dir, record.auth))
                self._subscribe_all(self.client)
            except Exception:  # noqa: BLE001 - writes wait for the next primary (see WriteSender)
                log.exception("cannot reconnect after a failed promotion")
                self.client = None
        self._last_change_seq = None

    def follow(self, record: PrimaryRecord) -> None:
        """Point this secondary at a new primary (after a failover elsewhere)."""
        with self.state_lock:
            if self.role != SECONDARY or self.client is None:
                return
            if self.record is not None and record.epoch <= self.record.epoch and record.instance_id == self.record.instance_id:
                return
            auth = client_auth(self.pando_dir, record.auth)
            self.client.reconnect(record.endpoints, auth)
            self.record = record
            self.epoch = record.epoch
            self._last_change_seq = None
            self.primary_changed.notify_all()
        log.info("now following primary pid %s (epoch %s)", record.pid, record.epoch)

    def fence(self, reason: str) -> None:
        """This primary's lease is gone (see :class:`~.failover.LeaseGuard`): stop being a
        writer at once. Queued and new proxied writes are refused as retryable, the bus goes
        down (secondaries follow ``primary.json`` to whoever holds the lock now), and local
        writes raise UnavailableError; reads still work. Restarting pando is the way back."""
        with self.state_lock:
            if self.role != PRIMARY or self.fenced:
                return
            self.fenced = reason
            log.error("%s: this pando stops writing; restart it to join the current primary", reason)
            if self.store is not None and not self.database.team:  # team mode: writes go on, directly
                self.store.use(_FencedExecutor(self.db, self.instance_id, reason))
            coordinator, bus = self.coordinator, self.bus
            self.coordinator = None  # writes still in flight here fail: no writer, no primary to proxy to
        if coordinator is not None:
            coordinator.close()
        if bus is not None:
            self._shut_down_bus(bus)
        for callback in list(self._fenced_callbacks):
            try:
                callback(reason)
            except Exception:  # noqa: BLE001 - fencing goes on
                log.exception("fence callback failed")


    def repair_record(self) -> None:
        """``primary.json`` must name this primary: rewrite it when it is missing or damaged
        (or names an older epoch). One naming a newer epoch is left alone: that primary holds
        a replaced lock, and the lease check fences this one."""
        with self.state_lock:
            record = self.record if self.role == PRIMARY and not self.fenced else None
        if record is None:
            return
        on_disk = read_primary_record(self.pando_dir)
        if on_disk == record or (on_disk is not None and on_disk.epoch > record.epoch):
            return
        log.warning("%s was missing or damaged; writing it again", self.pando_dir / "primary.json")
        try:
            write_primary_record(self.pando_dir, record)
        except OSError as exc:
            log.error("cannot rewrite the primary record: %s", exc)

    def _bus_failed(self, reason: str) -> None:
        """The bus died under this primary: no secondary can reach it, so it must not keep the
        lease. Fence it, then give the lock up: a waiting secondary takes over."""
        self.fence(reason)
        if self.fenced == reason:
            self.lock.release()


class _FencedExecutor(LocalExecutor):
    """A fenced primary's executor: reads from its database, writes refused with the reason."""

    def __init__(self, db: Database | None, instance_id: str, reason: str) -> None:
        super().__init__(db, instance_id)
        self.reason = reason

    def run_write(self, spec: Any, params: dict[str, Any]) -> Any:
        raise UnavailableError(f"{spec.qualified}: not written: {self.reason}; restart pando to write again")

    def run_writes(self, calls: list[tuple[Any, dict[str, Any]]]) -> list[tuple[bool, Any]]:
        return [self._outcome(spec, params) for spec, params in calls]


class PrimaryFollower:
    """Watches ``primary.json`` and re-points the secondary's client when the primary changes."""

    def __init__(self, runtime) -> None:  # noqa: ANN001
        self.runtime = runtime
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="pando-primary-follower", daemon=True)
        self._last_stat: tuple[int, int] | None = None

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Check primary.json now (an instance.shutdown / instance.promoted event arrived)."""
        self._poke.set()

    def _follow(self) -> None:
        path = os.path.join(self.runtime.pando_dir, "primary.json")
        while not self._stop.is_set():
            self._poke.wait(FOLLOW_INTERVAL_S)
            self._poke.clear()
            try:
                st = os.stat(path)
                stamp = (st.st_mtime_ns, st.st_ino)
            except OSError:
                continue
            if stamp == self._last_stat:
                continue
            self._last_stat = stamp
            record = read_primary_record(self.runtime.pando_dir)
            if record is None or record.instance_id == self.runtime.instance_id:
                continue
            current = self.runtime.record
            if current is None or record.epoch > current.epoch:
                try:
                    self.runtime.follow(record)
                except Exception:  # noqa: BLE001 - try again on the next change
                    log.exception("could not follow the new primary")
                    self._last_stat = None

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)


class FailoverWatcher(PrimaryFollower):
    """A follower that also waits for the lock and promotes this instance when it wins."""

    def __init__(self, runtime) -> None:  # noqa: ANN001
        super().__init__(runtime)
        self._lock_thread = threading.Thread(target=self._wait_for_lock, name="pando-failover", daemon=True)

    def start(self) -> None:
        super().start()
        self._lock_thread.start()

    def _wait_for_lock(self) -> None:
        """Win the lock, promote; when the promotion fails (a full disk, say), give the lock
        back -- another instance may do better -- and try again after a growing pause, for as
        long as this instance runs: a primary comes back once the cause is gone."""
        pause = PROMOTION_RETRY_FIRST_S
        while not self._stop.is_set():
            try:
                won = self.runtime.lock.acquire_blocking(self._stop)
            except LockError:
                log.exception("failover disabled: the lock can no longer be tried")
                return
            if not won or self._stop.is_set():
                return
            try:
                self.runtime.promote(self.runtime.lock)
            except Exception as exc:  # noqa: BLE001 - keep the process alive; report loudly
                reason = storage_full(exc, self.runtime.pando_dir) or exc
                self.runtime.promotion_failure = f"promotion failed: {one_line(reason, 300)}"
                log.error(
                    "%s; releasing the lock so another instance can take over, trying again in %.1fs",
                    self.runtime.promotion_failure,
                    pause,
                    exc_info=exc if storage_full(exc, self.runtime.pando_dir) is None else None,
                )
                self.runtime.lock.release()
            else:
                self.runtime.promotion_failure = None
                return
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, PROMOTION_RETRY_MAX_S)

    def stop(self) -> None:
        super().stop()
        if self._lock_thread.is_alive() and self._lock_thread is not threading.current_thread():
            self._lock_thread.join(timeout=2)


class LeaseGuard:
    """The primary's check that its lease is still real: the OS lock is held on the inode that
    ``ipc.lock`` names. If the file was deleted or replaced (``rm -rf .pando`` while pando runs),
    another process can lock the new file and become a primary too; this primary then fences
    itself (:meth:`RoleChanges.fence`) rather than be a second writer."""

    def __init__(self, runtime, interval: float) -> None:  # noqa: ANN001
        self.runtime = runtime
        self.interval = interval
        self.checks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pando-lease-guard", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.checks += 1
            if not self.runtime.lock.still_held():
                self.runtime.fence(f"{self.runtime.lock.path} was deleted or replaced while this primary held it")
                return
            self.runtime.repair_record()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
