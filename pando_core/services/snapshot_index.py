"""The snapshot store's layout and its metadata index (``<store>/index.json``), read and written
under the store's file lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

from filelock import FileLock, Timeout

from ..fsutil import atomic_write
from .snapshot_records import Snapshot, SnapshotError

LOCK_TIMEOUT = 120.0


class SnapshotIndexMixin:
    """The store directory, its lock and its index, for SnapshotService."""

    @property
    def index_path(self) -> Path:
        return self.store_dir / "index.json"

    @property
    def blobs_dir(self) -> Path:
        return self.store_dir / "blobs"

    @property
    def manifests_dir(self) -> Path:
        return self.store_dir / "manifests"

    def _ensure_store(self) -> None:
        if not self.store_dir.is_dir():
            self.store_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(self.store_dir, 0o700)
        ignore = self.store_dir / ".gitignore"
        if not ignore.exists():  # keeps the store out of the user's `git status`
            atomic_write(ignore, b"# created by pando: snapshot store\n*\n", 0o600, fsync=True)

    def _locked(self) -> FileLock:
        if self._lock is None:
            self._ensure_store()
            self._lock = FileLock(str(self.store_dir / "index.lock"), timeout=LOCK_TIMEOUT)
        return self._lock

    def _acquire(self) -> _LockGuard:
        return _LockGuard(self._locked())

    def _read_index(self) -> list[Snapshot]:
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            data = json.loads(raw)
            return [Snapshot.from_dict(item) for item in data.get("snapshots", [])]
        except (ValueError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"snapshot index {self.index_path} is corrupt: {exc}") from exc

    def _write_index(self, snapshots: list[Snapshot]) -> None:
        payload = {"version": 1, "snapshots": [s.to_dict() for s in snapshots]}
        atomic_write(self.index_path, json.dumps(payload, indent=1).encode(), 0o600, fsync=True)


class _LockGuard:
    def __init__(self, lock: FileLock) -> None:
        self.lock = lock

    def __enter__(self) -> FileLock:
        try:
            self.lock.acquire()
        except Timeout:
            raise SnapshotError(
                f"timed out waiting for the snapshot store lock {self.lock.lock_file}"
            ) from None
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
