"""The primary's lease (an OS file lock) and the primary record (``primary.json``).

Holding ``<workdir>/.pando/ipc.lock`` *is* being primary.  The lock is a native
``filelock.FileLock`` (``flock`` on Unix, ``LockFileEx`` on Windows), so the kernel drops it when
the holder dies, even on SIGKILL; a secondary parked in :meth:`InstanceLock.acquire_blocking`
wins it within one poll interval.  The lock file is never written, truncated or unlinked.

What the primary advertises lives in a separate file, ``primary.json``, written atomically
(temp file 0600 + fsync + ``os.replace``) *after* the bus is bound.  Readers tolerate a missing,
partial or corrupt file (→ None) and must check ``epoch``.

Lock *errors* (permission denied, filesystem without ``flock``, ``.pando`` not a directory or
owned by someone else) raise :class:`LockError`; they never turn into "acquired" or "held by
another".
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import filelock

from ..fsutil import atomic_write as write_durably
from .private_dir import ensure_private_dir

__all__ = [
    "InstanceLock",
    "LockError",
    "PRIMARY_RECORD_NAME",
    "LOCK_NAME",
    "PrimaryRecord",
    "ensure_pando_dir",
    "read_primary_record",
    "write_primary_record",
]

log = logging.getLogger(__name__)

LOCK_NAME = "ipc.lock"
PRIMARY_RECORD_NAME = "primary.json"
RECORD_FORMAT = 1


class LockError(RuntimeError):
    """The lock could not be *tried* (as opposed to: it is held by another process)."""


def ensure_pando_dir(pando_dir: str | os.PathLike[str]) -> str:
    """Create ``.pando`` with mode 0700 (or tighten an existing one we own). Raises LockError."""
    return ensure_private_dir(pando_dir, LockError)


class InstanceLock:
    """The per-workdir primary lock (``<pando_dir>/ipc.lock``).

    Thread-safe.  Not reentrant across instances: two ``InstanceLock`` objects on the same
    directory contend even inside one process (flock is per open file description).

    ``poll_interval`` bounds how late a parked :meth:`acquire_blocking` notices a released lock.
    """

    def __init__(self, pando_dir: str | os.PathLike[str], *, poll_interval: float = 0.01) -> None:
        self.pando_dir = os.path.abspath(os.fspath(pando_dir))
        self.path = os.path.join(self.pando_dir, LOCK_NAME)
        self.poll_interval = poll_interval
        self._mutex = threading.Lock()
        self._identity: tuple[int, int] | None = None
        self._held = False
        self._lock = filelock.FileLock(
            self.path,
            mode=0o600,
            thread_local=False,  # acquired in a parked thread, released from another one
            is_singleton=False,
            fallback_to_soft=False,  # no flock -> error, never an existence lock
            preserve_lock_file=True,
            on_acquired=self._record_identity,
        )

    # -- internal ------------------------------------------------------------------------
    def _record_identity(self, fd: int) -> None:
        st = os.fstat(fd)
        self._identity = (st.st_dev, st.st_ino)

    def _attempt(self, timeout: float, cancel: threading.Event | None) -> bool:
        ensure_pando_dir(self.pando_dir)
        try:
            self._lock.acquire(
                timeout=timeout,
                poll_interval=self.poll_interval,
                cancel_check=None if cancel is None else cancel.is_set,
            )
        except filelock.Timeout:
            return False
        except (OSError, NotImplementedError, RuntimeError, ValueError) as exc:
            raise LockError(f"cannot lock {self.path}: {_describe(exc)}") from exc
        self._held = True
        return True

    # -- public ---------------------------------------------------------------------------
    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._held

    def try_acquire(self) -> bool:
        """One non-blocking attempt: True = we are primary now (or already were), False = held by
        another process/object.  Raises LockError when the lock cannot be tried at all."""
        with self._mutex:
            if self._held:
                return True
            return self._attempt(0, None)

    def acquire_blocking(self, stop_event: threading.Event, *, timeout: float | None = None) -> bool:
        """Park until the lock is won (True) or *stop_event* is set / *timeout* passes (False).

        Polls every ``poll_interval`` seconds and checks *stop_event* between attempts, so a
        shutdown abandons the wait promptly.  Raises LockError on lock errors.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not stop_event.is_set():
            with self._mutex:
                if self._held:
                    return True
                # short slices: the mutex is never held for long, release() stays responsive
                slice_ = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
                if self._attempt(slice_, stop_event):
                    return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return False

    def still_held(self) -> bool:
        """True if we hold the lock *and* ``ipc.lock`` on disk is still the inode we locked.

        A primary should check this before acting as the writer after a long pause: if someone
        deleted or replaced the lock file, another process may hold a lock on the new inode."""
        if not self._held or self._identity is None:
            return False
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def release(self) -> None:
        """Release the lock if held (idempotent). The lock file stays on disk."""
        with self._mutex:
            if not self._held:
                return
            self._held = False
            self._identity = None
            try:
                self._lock.release(force=True)
            except OSError as exc:  # the fd is closed regardless; the kernel drops the lock
                log.warning("releasing %s: %s", self.path, exc)

    def __enter__(self) -> InstanceLock:
        if not self.try_acquire():
            raise LockError(f"{self.path} is held by another process")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"InstanceLock({self.pando_dir!r}, held={self._held})"


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied ({exc})"
    if code in (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP):
        return f"this filesystem does not support file locks (network or FUSE filesystem?) ({exc})"
    if code == errno.EROFS:
        return f"read-only filesystem ({exc})"
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------------
# primary.json


@dataclass(frozen=True, slots=True)
class PrimaryRecord:
    """What the current primary advertises.  Never trust it without checking ``epoch``.

    ``endpoints`` is :meth:`Endpoints.to_dict` of the *actually bound* endpoints; ``auth`` is
    :meth:`ServerAuth.record_info` (mechanism and, for CURVE, the server public key);
    ``started_at`` is wall-clock milliseconds.  Unknown keys in the file are ignored (forward
    compatible); ``extra`` is free-form for the caller.
    """

    instance_id: str
    pid: int
    epoch: int
    endpoints: dict[str, Any]
    started_at: int
    auth: dict[str, Any] | None = None
    workdir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = RECORD_FORMAT
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PrimaryRecord:
        """Parse; raises ValueError when required fields are missing or mistyped."""
        if not isinstance(d, Mapping):
            raise ValueError("record is not an object")

        def need(name: str, typ: type) -> Any:
            value = d.get(name)
            if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
                raise ValueError(f"field {name!r} missing or not {typ.__name__}")
            return value

        auth = d.get("auth")
        workdir = d.get("workdir")
        extra = d.get("extra")
        return cls(
            instance_id=need("instance_id", str),
            pid=need("pid", int),
            epoch=need("epoch", int),
            endpoints=dict(need("endpoints", dict)),
            started_at=need("started_at", int),
            auth=dict(auth) if isinstance(auth, dict) else None,
            workdir=workdir if isinstance(workdir, str) else None,
            extra=dict(extra) if isinstance(extra, dict) else {},
        )


def write_primary_record(pando_dir: str | os.PathLike[str], record: PrimaryRecord) -> str:
    """Atomically replace ``<pando_dir>/primary.json`` (temp 0600 + fsync + os.replace + dir
    fsync).  Readers see either the old or the new complete file.  Returns the path."""
    directory = ensure_pando_dir(pando_dir)
    path = os.path.join(directory, PRIMARY_RECORD_NAME)
    data = (json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic_write(path, data)
    return path


def atomic_write(path: str, data: bytes) -> None:
    """Durably replace *path* with *data*, mode 0600 (the lock's, auth and instance files)."""
    write_durably(Path(path), data, 0o600, fsync=True)


def read_primary_record(pando_dir: str | os.PathLike[str]) -> PrimaryRecord | None:
    """The current ``primary.json``, or None when missing, unreadable, partial or corrupt."""
    path = os.path.join(os.fspath(pando_dir), PRIMARY_RECORD_NAME)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(1 << 20)
        return PrimaryRecord.from_dict(json.loads(raw.decode("utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        log.debug("ignoring unreadable %s: %s", path, exc)
        return None
