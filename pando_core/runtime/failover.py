"""Failover: a secondary parks a thread in a blocking lock acquire and promotes when it wins.

The OS lock is the primary's lease: the kernel releases it when the primary dies, even on
SIGKILL, so the waiting secondary learns of the crash within one poll of the lock; a promotion
that fails (a full disk) gives the lock back and is tried again with backoff. A primary that
is alive but hung (SIGSTOP, deadlock) still holds the lock: nobody promotes, and ``ensure_primary``
reports it. Every secondary also follows ``primary.json``, so when another instance is promoted it
reconnects there and resends its in-flight writes with their original keys.
"""

from __future__ import annotations

import logging
import os
import threading

from ..db.storage import storage_full
from ..errors import one_line
from .lock import LockError, read_primary_record

log = logging.getLogger("pando.failover")

FOLLOW_INTERVAL_S = 0.02
PROMOTION_RETRY_FIRST_S = 0.1  # after a failed promotion: pause, doubled after each failure...
PROMOTION_RETRY_MAX_S = 5.0  # ...up to this


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
    itself (:meth:`Runtime.fence`) rather than be a second writer."""

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
