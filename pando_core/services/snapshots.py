"""Working-tree snapshots: capture, compare and restore the state of the working directory.

Two kinds of snapshot share one metadata index (``<store>/index.json``):

- ``git``: the working directory is inside a git work tree. The state (tracked changes and
  untracked-but-not-ignored files) is staged into a *temporary* index file (seeded from a copy of the
  user's index so unchanged files are not re-hashed), written as a tree, wrapped in a parentless commit
  and kept alive under ``refs/pando/snapshots/<id>``. The user's index, HEAD, branches and stash are
  never touched; restoring reads blobs with ``git cat-file`` and writes the files itself.
- ``files``: anything else. File contents are stored content-addressed (sha256 of the content,
  gzip-compressed) under ``<store>/blobs/<h[0:2]>/<h[2:4]>/<h>`` and shared between snapshots; each
  snapshot has a manifest ``<store>/manifests/<id>.json``.

Paths are always relative to the working directory, with ``/`` separators.

This module takes, lists and reads snapshots; the index, the content store, comparisons, restoring
and pruning are the ``snapshot_*`` modules beside it.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..clock import now_ms
from ..fsutil import atomic_write
from .snapshot_compare import SnapshotComparisonMixin
from .snapshot_content_store import ContentStoreMixin
from .snapshot_git import _GIT_SYMLINK, REF_PREFIX, _Git
from .snapshot_index import SnapshotIndexMixin
from .snapshot_pruning import SnapshotPruningMixin
from .snapshot_records import RestoreReport, Snapshot, SnapshotError, _newest_first, normalize_rel_path
from .snapshot_restore import SnapshotRestoreMixin

__all__ = ["DEFAULT_MAX_FILE_SIZE", "REF_PREFIX", "RestoreReport", "Snapshot", "SnapshotError", "SnapshotService"]

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
_ID_RE = re.compile(r"^[0-9a-z][0-9a-z-]*$")


# --------------------------------------------------------------------------- helpers


_id_lock = threading.Lock()
_last_id_ms = 0


def _new_id() -> str:
    """Sortable short id: base-36 milliseconds (fixed width) + 4 random hex digits."""
    global _last_id_ms
    with _id_lock:
        ms = max(now_ms(), _last_id_ms + 1)
        _last_id_ms = ms
    return f"{_base36(ms):0>9}-{secrets.token_hex(2)}"


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
        if not value:
            return out


# --------------------------------------------------------------------------- service


class SnapshotService(
    SnapshotIndexMixin, ContentStoreMixin, SnapshotComparisonMixin, SnapshotRestoreMixin, SnapshotPruningMixin
):
    """Capture and restore working-tree snapshots for ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        store_dir: Path | None = None,
        *,
        max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.store_dir = Path(store_dir).resolve() if store_dir else self.workdir / ".pando" / "snapshots"
        self.max_file_size = max_file_size
        self._git_cache: _Git | None = None
        self._kind: str | None = None  # a workdir does not change kind during a process
        self._lock: FileLock | None = None

    @classmethod
    def from_config(cls, workdir: Path, config: Any) -> SnapshotService:
        """The service for ``workdir`` with the ``[snapshots]`` settings of ``config``."""
        return cls(workdir, max_file_size=config.section("snapshots").get("max_file_size"))

    def _git(self) -> _Git:
        if self._git_cache is None:
            self._git_cache = _Git(self.workdir)
        return self._git_cache

    def _excluded_rel(self) -> list[str]:
        """Working-directory paths never captured: ``.pando`` and the store itself."""
        excluded = [".pando"]
        try:
            rel = self.store_dir.relative_to(self.workdir).as_posix()
        except ValueError:
            rel = None
        if rel and rel != ".pando" and not rel.startswith(".pando/"):
            excluded.append(rel)
        return excluded

    # ---------------------------------------------------------------- public API

    def detect_kind(self) -> str:
        """"git" when the workdir is in a git work tree, else "files" (probed once per service)."""
        if self._kind is None:
            self._kind = "git" if _Git.probe(self.workdir) else "files"
        return self._kind

    def take(self, label: str, session_id: str | None = None, *, stats: bool = True) -> Snapshot:
        """Snapshot the working tree now. ``stats=False`` (git kind) leaves ``file_count`` and
        ``total_size`` at 0: counting reads every blob's header, the slow part of a large tree."""
        if not self.workdir.is_dir():
            raise SnapshotError(f"working directory {self.workdir} does not exist")
        self._ensure_store()
        snap_id = _new_id()
        if self.detect_kind() == "git":
            snapshot = self._take_git(snap_id, label, session_id, stats)
            with self._acquire():
                self._write_index([*self._read_index(), snapshot])
            return snapshot
        # files kind: the whole capture runs under the lock so blob GC in prune() cannot race it
        with self._acquire():
            snapshot = self._take_files(snap_id, label, session_id)
            self._write_index([*self._read_index(), snapshot])
        return snapshot

    def list(self, session_id: str | None = None) -> list[Snapshot]:
        snaps = _newest_first(self._read_index())
        return [s for s in snaps if session_id is None or s.session_id == session_id]

    def get(self, id_or_prefix: str) -> Snapshot:
        key = (id_or_prefix or "").strip()
        if not key or not _ID_RE.match(key):
            raise SnapshotError(f"invalid snapshot id {id_or_prefix!r}")
        snaps = self._read_index()
        for snap in snaps:
            if snap.id == key:
                return snap
        matches = [s for s in snaps if s.id.startswith(key)]
        if not matches:
            raise SnapshotError(f"unknown snapshot {key!r}")
        if len(matches) > 1:
            shown = ", ".join(s.id for s in matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise SnapshotError(f"snapshot id prefix {key!r} is ambiguous: {shown}")
        return matches[0]

    def read_file(self, snapshot_id: str, path: str) -> bytes:
        """Content of ``path`` as recorded in a snapshot."""
        snap = self.get(snapshot_id)
        rel = normalize_rel_path(self.workdir, path)
        if snap.kind == "git":
            git = self._git()
            out = git.run("ls-tree", "-z", self._git_tree(snap), "--", rel, cwd=git.toplevel)
            for record in filter(None, out.split(b"\0")):
                meta, _, name = record.partition(b"\t")
                mode, kind, sha = meta.decode().split()
                if name.decode(errors="surrogateescape") == rel and kind == "blob":
                    return git.blob(sha, None if mode == _GIT_SYMLINK else rel)
            raise SnapshotError(f"{rel} is not in snapshot {snap.id}")
        entry = self._manifest(snap)["files"].get(rel)
        if entry is None:
            raise SnapshotError(f"{rel} is not in snapshot {snap.id}")
        return self._read_blob(entry["sha256"])

    # ---------------------------------------------------------------- git kind

    def _take_git(self, snap_id: str, label: str, session_id: str | None, stats: bool = True) -> Snapshot:
        git = self._git()
        tree, large = git.worktree_tree(self._excluded_rel(), self.max_file_size)
        message = f"pando snapshot {snap_id}: {label}\n\nsession: {session_id or '-'}\n"
        commit = git.run("commit-tree", "--no-gpg-sign", tree, input=message.encode()).decode().strip()
        ref = REF_PREFIX + snap_id
        git.run("update-ref", "-m", f"pando snapshot {snap_id}", ref, commit, "")
        count, size = git.tree_stats(tree) if stats else (0, 0)
        return Snapshot(
            id=snap_id,
            label=label,
            session_id=session_id,
            created_at=now_ms(),
            kind="git",
            file_count=count,
            total_size=size,
            skipped_count=len(large),
            ref=ref,
            commit=commit,
            tree=tree,
            head=git.head(),
        )

    def _git_current_tree(self) -> str:
        return self._git().worktree_tree(self._excluded_rel(), self.max_file_size)[0]

    def _git_tree(self, snap: Snapshot) -> str:
        if snap.kind != "git":
            raise SnapshotError(f"snapshot {snap.id} is not a git snapshot")
        git = self._git()
        for candidate in (snap.ref, snap.commit):
            if not candidate:
                continue
            out = (
                git.run("rev-parse", "-q", "--verify", f"{candidate}^{{tree}}", check=False).decode().strip()
            )
            if out:
                return out
        raise SnapshotError(f"snapshot {snap.id}: git objects are missing ({snap.ref} was deleted?)")

    # ---------------------------------------------------------------- files kind

    def _take_files(self, snap_id: str, label: str, session_id: str | None) -> Snapshot:
        files, skipped = self._scan(store=True)
        created = now_ms()
        snapshot = Snapshot(
            id=snap_id,
            label=label,
            session_id=session_id,
            created_at=created,
            kind="files",
            file_count=len(files),
            total_size=sum(e["size"] for e in files.values()),
            skipped_count=len(skipped),
            ref=f"manifests/{snap_id}.json",
        )
        manifest = {"snapshot": snapshot.to_dict(), "files": files, "skipped": skipped}
        self.manifests_dir.mkdir(mode=0o700, exist_ok=True)
        atomic_write(self.manifests_dir / f"{snap_id}.json", json.dumps(manifest, indent=1).encode(), 0o600, fsync=True)
        return snapshot
