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
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import posixpath
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..clock import now_ms
from ..errors import PandoError
from ..fsutil import atomic_write, current_umask
from ..ignore import IgnoreRules
from ..textdiff import unified_diff

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
REF_PREFIX = "refs/pando/snapshots/"
LOCK_TIMEOUT = 120.0
SYMLINK_MODE = 0o120000
_GIT_SYMLINK = "120000"
_GIT_GITLINK = "160000"
_GIT_EXEC = "100755"
_EMPTY_TREE_INPUT = b""
_ID_RE = re.compile(r"^[0-9a-z][0-9a-z-]*$")
_SKIP_DIR_NAMES = frozenset({".git", ".pando"})
_BINARY_SNIFF = 8000


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


def _is_binary(data: bytes) -> bool:
    if b"\0" in data[:_BINARY_SNIFF]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


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


# --------------------------------------------------------------------------- git plumbing


class _Git:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.base_env = {k: v for k, v in os.environ.items() if k != "GIT_INDEX_FILE"}
        self.base_env.update(
            GIT_OPTIONAL_LOCKS="0",
            GIT_TERMINAL_PROMPT="0",
            GIT_AUTHOR_NAME="pando",
            GIT_AUTHOR_EMAIL="pando@localhost",
            GIT_COMMITTER_NAME="pando",
            GIT_COMMITTER_EMAIL="pando@localhost",
            LC_ALL="C",
        )
        info = self.run("rev-parse", "--show-toplevel", "--show-prefix").decode().splitlines()
        self.toplevel = Path(info[0])
        self.prefix = info[1] if len(info) > 1 else ""  # "sub/dir/" or ""

    @staticmethod
    def probe(workdir: Path) -> bool:
        """True when ``workdir`` is inside a git work tree (and git is installed)."""
        if shutil.which("git") is None:
            return False
        try:
            out = subprocess.run(
                ["git", "rev-parse", "--is-inside-work-tree"],
                cwd=workdir,
                capture_output=True,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return out.returncode == 0 and out.stdout.strip() == b"true"

    def run(
        self,
        *args: str,
        index: Path | None = None,
        input: bytes | None = None,
        cwd: Path | None = None,
        check: bool = True,
    ) -> bytes:
        proc = self.proc(*args, index=index, input=input, cwd=cwd)
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            detail = err[-1] if err else f"exit code {proc.returncode}"
            raise SnapshotError(f"git {args[0]} failed: {detail}")
        return proc.stdout

    def proc(
        self,
        *args: str,
        index: Path | None = None,
        input: bytes | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        env = self.base_env
        if index is not None:
            env = {**env, "GIT_INDEX_FILE": str(index)}
        cmd = ["git", "-c", "core.quotepath=false", "-c", "core.safecrlf=false", *args]
        try:
            return subprocess.run(cmd, cwd=cwd or self.workdir, input=input, capture_output=True, env=env)
        except OSError as exc:
            raise SnapshotError(f"cannot run git: {exc}") from exc

    def real_index(self) -> Path:
        path = Path(self.run("rev-parse", "--git-path", "index").decode().strip())
        return path if path.is_absolute() else (self.workdir / path)

    def head(self) -> str | None:
        out = self.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False).decode().strip()
        return out or None

    def empty_tree(self) -> str:
        return self.run("mktree", input=_EMPTY_TREE_INPUT).decode().strip()

    def worktree_tree(self, excluded: list[str], max_file_size: int | None) -> tuple[str, list[str]]:
        """Write the current working-directory state as a tree; returns (tree, skipped large files)."""
        with tempfile.TemporaryDirectory(prefix="pando-snap-") as tmp:
            index = Path(tmp) / "index"
            real = self.real_index()
            if real.is_file():
                shutil.copyfile(real, index)
            try:
                return self._stage_and_write(index, Path(tmp), excluded, max_file_size)
            except SnapshotError:
                if not index.exists():
                    raise
                # e.g. unmerged entries in the copied index: start again from an empty one
                index.unlink()
                return self._stage_and_write(index, Path(tmp), excluded, max_file_size)

    def _stage_and_write(
        self, index: Path, tmp: Path, excluded: list[str], max_file_size: int | None
    ) -> tuple[str, list[str]]:
        large: list[str] = []
        if max_file_size is not None:
            out = self.run("ls-files", "-z", "--others", "--exclude-standard", "--", ".", index=index)
            for rel in filter(None, out.decode(errors="surrogateescape").split("\0")):
                try:
                    st = os.lstat(self.workdir / rel)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_size > max_file_size:
                    large.append(rel)
        specs = ["."] + [f":(exclude,literal){p}" for p in excluded + large]
        spec_file = tmp / "pathspec"
        spec_file.write_bytes(("\0".join(specs) + "\0").encode(errors="surrogateescape"))
        proc = self.proc(
            "-c",
            "advice.addEmbeddedRepo=false",
            "-c",
            "advice.addIgnoredFile=false",
            "add",
            "-A",
            "--ignore-errors",
            f"--pathspec-from-file={spec_file}",
            "--pathspec-file-nul",
            index=index,
        )
        if proc.returncode != 0:
            # --ignore-errors: unreadable files are left out but git still exits non-zero; anything
            # else is a real failure
            errors = proc.stderr.decode(errors="replace").strip().splitlines()
            tolerated = (
                "warning:",
                "error: open(",
                "error: unable to index file",
                "fatal: adding files failed",
            )
            # an excluded path the user's .gitignore also ignores (".pando/" usually): git lists it
            # and exits 1 although everything else was staged
            ignored_notice = "The following paths are ignored by one of your .gitignore files:"
            real = [
                line
                for line in errors
                if not line.startswith(tolerated) and line != ignored_notice and not line.startswith("hint:")
                and line.rstrip("/") not in excluded
            ]
            if real or not errors:
                raise SnapshotError(f"git add failed: {real[-1] if real else f'exit code {proc.returncode}'}")
        for path in excluded:  # entries the user tracks there (the copied index still has them)
            self.run("rm", "--cached", "-r", "-q", "--ignore-unmatch", "--", f":(literal){path}", index=index)
        if not self.prefix:
            return self.run("write-tree", index=index).decode().strip(), large
        if not self.run("ls-files", "-z", "--", ".", index=index):
            return self.empty_tree(), large
        return self.run("write-tree", f"--prefix={self.prefix}", index=index).decode().strip(), large

    def tree_stats(self, tree: str) -> tuple[int, int]:
        out = self.run("ls-tree", "-r", "-l", "-z", "--full-tree", tree)
        count = size = 0
        for record in filter(None, out.split(b"\0")):
            meta = record.split(b"\t", 1)[0].split()
            if len(meta) >= 4 and meta[1] == b"blob":
                count += 1
                if meta[3].isdigit():
                    size += int(meta[3])
        return count, size

    def diff_trees(self, old: str, new: str) -> list[_Change]:
        out = self.run("diff-tree", "-r", "-z", "--no-renames", "--no-ext-diff", old, new, cwd=self.toplevel)
        parts = out.split(b"\0")
        changes: list[_Change] = []
        i = 0
        while i + 1 < len(parts):
            meta, raw_path = parts[i], parts[i + 1]
            i += 2
            if not meta.startswith(b":"):
                continue
            old_mode, new_mode, old_sha, new_sha, status = meta[1:].decode().split()
            path = raw_path.decode(errors="surrogateescape")
            status = status[0]
            old_entry = None if status == "A" else (old_mode, old_sha)
            new_entry = None if status == "D" else (new_mode, new_sha)
            changes.append(_Change("M" if status == "T" else status, path, old_entry, new_entry))
        return changes

    def blob(self, sha: str, path: str | None) -> bytes:
        if path is None:
            return self.run("cat-file", "blob", sha)
        return self.run("cat-file", "--filters", f"--path={self.prefix}{path}", sha, cwd=self.toplevel)


# --------------------------------------------------------------------------- service


class SnapshotService:
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

    # ---------------------------------------------------------------- store plumbing

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

    def changed_files(
        self, a: str, b: str | None = None, *, paths: list[str] | None = None
    ) -> list[tuple[str, str]]:
        """(status, path) of what changed from snapshot ``a`` to ``b`` (or the working tree)."""
        _, changes = self._changes(a, b, paths)
        return [(c.status, c.path) for c in changes]

    def diff(self, a: str, b: str | None = None, *, paths: list[str] | None = None) -> str:
        """Unified diff from snapshot ``a`` to snapshot ``b`` (or the current working tree)."""
        old, new = self._pair(a, b)
        selected = self._selection(paths)
        if old.kind == "git":
            git = self._git()
            old_tree = self._git_tree(old)
            new_tree = self._git_tree(new) if new else self._git_current_tree()
            args = [
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--no-renames",
                "--src-prefix=a/",
                "--dst-prefix=b/",
                old_tree,
                new_tree,
            ]
            if selected is not None:
                args += ["--"] + [f":(literal){p}" if p else "." for p in selected]
            return git.run(*args, cwd=git.toplevel).decode(errors="replace")
        changes = self._files_changes(old, new, selected)
        return "".join(self._files_diff(change, new is None) for change in changes)

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

    # ---------------------------------------------------------------- comparisons

    def _selection(self, paths: list[str] | None) -> list[str] | None:
        if paths is None:
            return None
        return [normalize_rel_path(self.workdir, p) for p in paths]

    def _pair(self, a: str, b: str | None) -> tuple[Snapshot, Snapshot | None]:
        """Snapshots ``a`` and ``b`` (None: the working tree), which must be of the same kind."""
        old = self.get(a)
        new = self.get(b) if b is not None else None
        if new is not None and new.kind != old.kind:
            raise SnapshotError(
                f"cannot compare a {old.kind} snapshot ({old.id}) with a {new.kind} one ({new.id})"
            )
        return old, new

    def _changes(self, a: str, b: str | None, paths: list[str] | None) -> tuple[Snapshot, list[_Change]]:
        old, new = self._pair(a, b)
        selected = self._selection(paths)
        if old.kind == "git":
            git = self._git()
            new_tree = self._git_tree(new) if new else self._git_current_tree()
            changes = git.diff_trees(self._git_tree(old), new_tree)
            return old, [c for c in changes if _path_selected(c.path, selected)]
        return old, self._files_changes(old, new, selected)

    def _files_changes(
        self, old: Snapshot, new: Snapshot | None, selected: list[str] | None
    ) -> list[_Change]:
        """Changes between two files snapshots (``new`` None: the working tree), limited to ``selected``."""
        old_files = self._manifest(old)["files"]
        new_files = self._manifest(new)["files"] if new else self._scan(store=False)[0]
        changes = []
        for path in sorted(set(old_files) | set(new_files)):
            if not _path_selected(path, selected):
                continue
            o, n = old_files.get(path), new_files.get(path)
            if o is None:
                changes.append(_Change("A", path, None, n))
            elif n is None:
                changes.append(_Change("D", path, o, None))
            elif o["sha256"] != n["sha256"] or o["mode"] != n["mode"]:
                changes.append(_Change("M", path, o, n))
        return changes

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

    def _manifest(self, snap: Snapshot) -> dict[str, Any]:
        if snap.kind != "files":
            raise SnapshotError(f"snapshot {snap.id} is not a files snapshot")
        path = self.manifests_dir / f"{snap.id}.json"
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            raise SnapshotError(f"snapshot {snap.id}: manifest {path} is missing") from None
        except ValueError as exc:
            raise SnapshotError(f"snapshot {snap.id}: manifest {path} is corrupt: {exc}") from exc

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """(relative path, lstat) of every capturable non-directory entry, honouring .gitignore files."""
        excluded = set(self._excluded_rel())
        rules = IgnoreRules(self.workdir)

        def visit(rel_dir: str) -> Iterator[tuple[str, os.stat_result]]:
            rules.load_dir(self.workdir / rel_dir)
            try:
                with os.scandir(self.workdir / rel_dir) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                return
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if entry.name in _SKIP_DIR_NAMES or rel in excluded:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)
                if rules.ignored(rel, is_dir):
                    continue
                if is_dir:
                    yield from visit(rel)
                elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    yield rel, st

        return visit("")

    def _scan(self, *, store: bool) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        files: dict[str, dict[str, Any]] = {}
        skipped: dict[str, dict[str, Any]] = {}
        for rel, st in self._walk():
            full = self.workdir / rel
            if stat.S_ISLNK(st.st_mode):
                try:
                    data = os.fsencode(os.readlink(full))
                except OSError:
                    continue
                mode = SYMLINK_MODE
            else:
                if self.max_file_size is not None and st.st_size > self.max_file_size:
                    skipped[rel] = {"size": st.st_size, "reason": "larger than the size cap"}
                    continue
                try:
                    data = full.read_bytes()
                except OSError as exc:
                    skipped[rel] = {"size": st.st_size, "reason": f"unreadable: {exc.strerror}"}
                    continue
                mode = stat.S_IMODE(st.st_mode)
            digest = hashlib.sha256(data).hexdigest()
            if store:
                self._store_blob(digest, data)
            files[rel] = {"sha256": digest, "mode": mode, "size": len(data)}
        return files, skipped

    def _blob_path(self, digest: str) -> Path:
        return self.blobs_dir / digest[:2] / digest[2:4] / digest

    def _store_blob(self, digest: str, data: bytes) -> None:
        path = self._blob_path(digest)
        if path.exists():
            return
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        atomic_write(path, gzip.compress(data, compresslevel=6, mtime=0), 0o600, fsync=True)

    def _read_blob(self, digest: str) -> bytes:
        try:
            return gzip.decompress(self._blob_path(digest).read_bytes())
        except FileNotFoundError:
            raise SnapshotError(f"blob {digest[:12]} is missing from the snapshot store") from None
        except (OSError, EOFError) as exc:
            raise SnapshotError(f"blob {digest[:12]} is corrupt: {exc}") from exc

    def _gc_blobs(self, remaining: list[Snapshot]) -> int:
        """Delete blobs no remaining files snapshot refers to (caller holds the lock)."""
        if not self.blobs_dir.is_dir():
            return 0
        referenced: set[str] = set()
        for snap in remaining:
            if snap.kind == "files":
                try:
                    referenced.update(e["sha256"] for e in self._manifest(snap)["files"].values())
                except SnapshotError:
                    continue
        removed = 0
        for root, _dirs, names in os.walk(self.blobs_dir, topdown=False):
            for name in names:
                if name not in referenced:
                    try:
                        os.unlink(os.path.join(root, name))
                        removed += 1
                    except OSError:
                        pass
            if root != str(self.blobs_dir):
                try:
                    os.rmdir(root)
                except OSError:
                    pass
        return removed

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

    # ---------------------------------------------------------------- writing files

    def _files_diff(self, change: _Change, against_worktree: bool) -> str:
        path = change.path
        old = self._read_blob(change.old["sha256"]) if change.old else b""
        if change.new is None:
            new = b""
        elif against_worktree:
            try:
                full = self.workdir / path
                new = (
                    os.fsencode(os.readlink(full))
                    if change.new["mode"] == SYMLINK_MODE
                    else full.read_bytes()
                )
            except OSError:
                new = b""
        else:
            new = self._read_blob(change.new["sha256"])
        a_name = f"a/{path}" if change.old else "/dev/null"
        b_name = f"b/{path}" if change.new else "/dev/null"
        lines = [f"diff --git a/{path} b/{path}\n"]
        if change.status == "A":
            lines.append(f"new file mode {_mode_str(change.new['mode'])}\n")
        elif change.status == "D":
            lines.append(f"deleted file mode {_mode_str(change.old['mode'])}\n")
        elif change.old["mode"] != change.new["mode"]:
            lines.append(f"old mode {_mode_str(change.old['mode'])}\n")
            lines.append(f"new mode {_mode_str(change.new['mode'])}\n")
        if old == new:
            return "".join(lines)
        if _is_binary(old) or _is_binary(new):
            lines.append(f"Binary files {a_name} and {b_name} differ\n")
            return "".join(lines)
        lines.append(unified_diff(old.decode("utf-8"), new.decode("utf-8"), a_name, b_name))
        return "".join(lines)

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


def _newest_first(snaps: list[Snapshot]) -> list[Snapshot]:
    """Newest first; snapshots of the same millisecond in reverse index (creation) order."""
    order = sorted(enumerate(snaps), key=lambda pair: (pair[1].created_at, pair[0]), reverse=True)
    return [snap for _, snap in order]


def _mode_str(mode: int) -> str:
    if mode == SYMLINK_MODE:
        return "120000"
    return "100755" if mode & 0o111 else "100644"


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
