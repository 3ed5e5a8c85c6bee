"""Comparing snapshots: what changed from one snapshot to another (or to the working tree), as a
list of paths or a unified diff."""

from __future__ import annotations

import os

from ..textdiff import unified_diff
from .snapshot_records import (
    SYMLINK_MODE,
    Snapshot,
    SnapshotError,
    _Change,
    _path_selected,
    normalize_rel_path,
)

_BINARY_SNIFF = 8000


class SnapshotComparisonMixin:
    """changed_files() and diff() of SnapshotService."""

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


def _is_binary(data: bytes) -> bool:
    if b"\0" in data[:_BINARY_SNIFF]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _mode_str(mode: int) -> str:
    if mode == SYMLINK_MODE:
        return "120000"
    return "100755" if mode & 0o111 else "100644"
