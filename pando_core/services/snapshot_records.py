"""What the snapshot service records and returns: a snapshot, a restore report, one changed path,
and the rules for the working-directory-relative paths they name."""

from __future__ import annotations

import posixpath
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import PandoError

SYMLINK_MODE = 0o120000


class SnapshotError(PandoError):
    """A snapshot operation failed (unknown or ambiguous id, git failure, corrupt store...)."""

    kind = "snapshot"


@dataclass(frozen=True)
class Snapshot:
    id: str
    label: str
    session_id: str | None
    created_at: int  # milliseconds since the epoch
    kind: str  # "git" | "files"
    file_count: int
    total_size: int = 0
    skipped_count: int = 0  # files left out because they exceeded the size cap
    ref: str | None = None  # git: refs/pando/snapshots/<id>; files: manifests/<id>.json (store-relative)
    commit: str | None = None  # git: the snapshot commit
    tree: str | None = None  # git: the tree of the working directory
    head: str | None = None  # git: HEAD when the snapshot was taken (None before the first commit)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RestoreReport:
    snapshot_id: str
    restored: list[str] = field(default_factory=list)  # written back (modified or deleted since)
    deleted: list[str] = field(default_factory=list)  # added since the snapshot, removed (delete_added)
    skipped: list[str] = field(default_factory=list)  # left alone; see ``reasons``
    reasons: dict[str, str] = field(default_factory=dict)
    safety_snapshot: str | None = None  # snapshot of the state just before the restore
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.restored or self.deleted)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Change:
    status: str  # A (added since the old side), M, D
    path: str
    old: Any  # backend-specific entry of the old side (None for A)
    new: Any  # backend-specific entry of the new side (None for D)


def normalize_rel_path(workdir: Path, path: str) -> str:
    """A user-given path (absolute or relative to the working directory) as a relative '/' path."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(workdir) if p.exists() else p.relative_to(workdir)
        except ValueError:
            raise SnapshotError(f"path {path} is outside the working directory {workdir}") from None
    rel = posixpath.normpath(p.as_posix())
    if rel == ".":
        return ""
    if rel == ".." or rel.startswith("../"):
        raise SnapshotError(f"path {path} is outside the working directory {workdir}")
    return rel


def _path_selected(path: str, selected: list[str] | None) -> bool:
    if selected is None:
        return True
    for sel in selected:
        if sel == "" or path == sel or path.startswith(sel + "/"):
            return True
    return False


def _newest_first(snaps: list[Snapshot]) -> list[Snapshot]:
    """Newest first; snapshots of the same millisecond in reverse index (creation) order."""
    order = sorted(enumerate(snaps), key=lambda pair: (pair[1].created_at, pair[0]), reverse=True)
    return [snap for _, snap in order]
