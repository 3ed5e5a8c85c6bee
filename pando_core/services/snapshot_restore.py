"""Restoring a snapshot: writing back the files changed since it was taken, never through a
symlinked or non-directory parent, after a safety snapshot of the current state."""

from __future__ import annotations

import os
from pathlib import Path

from ..fsutil import atomic_write, current_umask
from .snapshot_git import _GIT_EXEC, _GIT_GITLINK, _GIT_SYMLINK
from .snapshot_records import SYMLINK_MODE, RestoreReport, Snapshot, SnapshotError, _Change


class SnapshotRestoreMixin:
    """restore() of SnapshotService and the file writes and deletions it makes."""

    def restore(
        self,
        snapshot_id: str,
        *,
        paths: list[str] | None = None,
        delete_added: bool = False,
        dry_run: bool = False,
        safety_snapshot: bool = True,
    ) -> RestoreReport:
        """Write back the snapshot's content of files modified or deleted since it was taken.

        Files added since the snapshot are left alone (listed in ``skipped``) unless
        ``delete_added``. Unless ``dry_run`` or there is nothing to do, a "pre-restore" snapshot
        of the current state is taken first (``report.safety_snapshot``).
        """
        snap, changes = self._changes(snapshot_id, None, paths)
        report = RestoreReport(snapshot_id=snap.id, dry_run=dry_run)
        deletions: list[_Change] = []
        writes: list[_Change] = []
        for change in changes:
            if change.status == "A":
                if delete_added:
                    deletions.append(change)
                else:
                    report.skipped.append(change.path)
                    report.reasons[change.path] = "added since the snapshot (use --delete-added to remove)"
            elif snap.kind == "git" and change.old[0] == _GIT_GITLINK:
                report.skipped.append(change.path)
                report.reasons[change.path] = "submodule: not restored"
            else:
                writes.append(change)
        if dry_run:
            report.deleted = [c.path for c in deletions]
            report.restored = [c.path for c in writes]
            return report
        if not deletions and not writes:
            return report
        if safety_snapshot:
            report.safety_snapshot = self.take(f"pre-restore {snap.id}", session_id=snap.session_id).id
        for change in deletions:
            reason = self._delete_path(change.path)
            if reason:
                report.skipped.append(change.path)
                report.reasons[change.path] = reason
            else:
                report.deleted.append(change.path)
        for change in writes:
            try:
                data, is_link, mode = self._snapshot_content(snap, change)
            except SnapshotError as exc:
                report.skipped.append(change.path)
                report.reasons[change.path] = str(exc)
                continue
            reason = self._write_path(change.path, data, is_link, mode)
            if reason:
                report.skipped.append(change.path)
                report.reasons[change.path] = reason
            else:
                report.restored.append(change.path)
        return report

    def _snapshot_content(self, snap: Snapshot, change: _Change) -> tuple[bytes, bool, int]:
        """(content, is symlink, permission bits) of the snapshot side of a change."""
        if snap.kind == "git":
            mode, sha = change.old
            is_link = mode == _GIT_SYMLINK
            data = self._git().blob(sha, None if is_link else change.path)
            perms = (0o777 if mode == _GIT_EXEC else 0o666) & ~current_umask()
            return data, is_link, perms
        entry = change.old
        data = self._read_blob(entry["sha256"])
        is_link = entry["mode"] == SYMLINK_MODE
        return data, is_link, (0 if is_link else int(entry["mode"]))

    def _safe_target(self, rel: str) -> tuple[Path | None, str | None]:
        """The absolute target for ``rel`` unless a parent is a symlink or not a directory."""
        parts = rel.split("/")
        if not rel or any(p in ("", ".", "..") for p in parts):
            return None, "invalid path"
        current = self.workdir
        for part in parts[:-1]:
            current = current / part
            if os.path.islink(current):
                return None, "a parent directory is a symlink"
            if os.path.lexists(current) and not current.is_dir():
                return None, "a parent path is not a directory"
        return self.workdir / rel, None

    def _write_path(self, rel: str, data: bytes, is_link: bool, mode: int) -> str | None:
        target, reason = self._safe_target(rel)
        if target is None:
            return reason
        if target.is_dir() and not target.is_symlink():
            return "a directory is in the way"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if is_link:
                if os.path.lexists(target):
                    target.unlink()
                os.symlink(os.fsdecode(data), target)
            else:
                atomic_write(target, data, mode, fsync=True)
        except OSError as exc:
            return f"cannot write: {exc.strerror or exc}"
        return None

    def _delete_path(self, rel: str) -> str | None:
        target, reason = self._safe_target(rel)
        if target is None:
            return reason
        if not os.path.lexists(target):
            return None
        if target.is_dir() and not target.is_symlink():
            return "is a directory"
        try:
            target.unlink()
        except OSError as exc:
            return f"cannot delete: {exc.strerror or exc}"
        parent = target.parent
        while parent != self.workdir and self.workdir in parent.parents:
            try:
                parent.rmdir()  # only succeeds when empty
            except OSError:
                break
            parent = parent.parent
        return None

