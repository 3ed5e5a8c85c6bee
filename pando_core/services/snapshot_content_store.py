"""The content-addressed store of ``files`` snapshots: gzip blobs named by their sha256, shared
between snapshots, the manifests that list them, the scan of the working directory, and blob GC."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write
from ..ignore import IgnoreRules
from .snapshot_records import SYMLINK_MODE, Snapshot, SnapshotError

_SKIP_DIR_NAMES = frozenset({".git", ".pando"})


class ContentStoreMixin:
    """Blobs, manifests and the working-directory scan of ``files`` snapshots, for SnapshotService."""

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

