"""Deleting and pruning snapshots: dropping their git refs or manifests, rewriting the index and
collecting the blobs nothing refers to any more."""

from __future__ import annotations

from ..clock import now_ms
from .snapshot_records import Snapshot, SnapshotError, _newest_first


class SnapshotPruningMixin:
    """delete(), delete_many() and prune() of SnapshotService."""

    def delete(self, snapshot_id: str) -> Snapshot:
        snap = self.get(snapshot_id)
        with self._acquire():
            remaining = [s for s in self._read_index() if s.id != snap.id]
            self._drop([snap])
            self._write_index(remaining)
            self._gc_blobs(remaining)
        return snap

    def delete_many(self, snapshot_ids: set[str]) -> list[Snapshot]:
        """Delete the snapshots with these ids (unknown ids are ignored), in one pass over the index."""
        with self._acquire():
            index = self._read_index()
            removed = [s for s in index if s.id in snapshot_ids]
            if not removed:
                return []
            remaining = [s for s in index if s.id not in snapshot_ids]
            self._drop(removed)
            self._write_index(remaining)
            self._gc_blobs(remaining)
        return removed

    def prune(self, max_snapshots: int | None = None, older_than_days: float | None = None) -> list[Snapshot]:
        """Drop snapshots beyond the newest ``max_snapshots`` and/or older than ``older_than_days``."""
        if max_snapshots is not None and max_snapshots < 0:
            raise SnapshotError("max_snapshots must be >= 0")
        with self._acquire():
            index = self._read_index()
            ordered = _newest_first(index)
            removed: dict[str, Snapshot] = {}
            if older_than_days is not None:
                cutoff = now_ms() - int(older_than_days * 86_400_000)
                removed.update({s.id: s for s in ordered if s.created_at < cutoff})
            if max_snapshots is not None:
                kept = [s for s in ordered if s.id not in removed]
                removed.update({s.id: s for s in kept[max_snapshots:]})
            if not removed:
                return []
            remaining = [s for s in index if s.id not in removed]
            self._drop(list(removed.values()))
            self._write_index(remaining)
            self._gc_blobs(remaining)
        return sorted(removed.values(), key=lambda s: s.created_at, reverse=True)

    def _drop(self, snaps: list[Snapshot]) -> None:
        for snap in snaps:
            if snap.kind == "git" and snap.ref:
                try:
                    self._git().run("update-ref", "-d", snap.ref, check=False)
                except SnapshotError:
                    pass  # no longer a git repository: nothing to release
            elif snap.kind == "files":
                try:
                    (self.manifests_dir / f"{snap.id}.json").unlink()
                except FileNotFoundError:
                    pass

