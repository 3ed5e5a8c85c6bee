"""Writing a checked patch all-or-nothing: every file staged in a temp file, then renamed into place;
on any failure the previous state is put back."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pando_core.agent.tools.base import ToolError
from pando_core.agent.tools.write import write_temp_for, write_text_atomic
from pando_core.fsutil import discard

if TYPE_CHECKING:
    from pando_core.agent.tools.patch import PlannedChange


def _missing_dirs(path: Path) -> list[Path]:
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    return missing


def _commit(changes: list[PlannedChange]) -> None:
    """Write every change via temp files + renames; on any failure restore the previous state."""
    created_dirs: list[Path] = []
    staged: dict[int, str] = {}
    try:
        for number, change in enumerate(changes):
            if change.after is None:
                continue
            missing = _missing_dirs(change.target)
            change.target.parent.mkdir(parents=True, exist_ok=True)
            created_dirs.extend(missing)
            staged[number] = write_temp_for(change.target, change.after)
    except OSError as exc:
        _discard(staged.values(), created_dirs)
        raise ToolError(f"Failed to apply the patch; no files were changed: {exc}") from exc

    undo: list[tuple[str, PlannedChange, str | None]] = []
    try:
        for number, change in enumerate(changes):
            tmp = staged.get(number)
            moved = change.target != change.path
            if change.op.kind == "add" or moved:
                assert tmp is not None
                os.link(tmp, change.target)  # no-clobber: fails if the target appeared meanwhile
                os.unlink(tmp)
                staged.pop(number)
                undo.append(("created", change, None))
            if change.op.kind == "delete" or moved:
                backup = write_temp_for(change.path, "")
                os.replace(change.path, backup)
                undo.append(("removed", change, backup))
            elif change.op.kind == "update":
                assert tmp is not None
                os.replace(tmp, change.path)
                staged.pop(number)
                undo.append(("replaced", change, None))
    except OSError as exc:
        for kind, change, backup in reversed(undo):
            with contextlib.suppress(OSError):
                if kind == "created":
                    os.unlink(change.target)
                elif kind == "removed" and backup:
                    os.replace(backup, change.path)
                elif kind == "replaced" and change.before is not None:
                    write_text_atomic(change.path, change.before)
        _discard(staged.values(), created_dirs)
        raise ToolError(f"Failed to apply the patch; no files were changed: {exc}") from exc
    for kind, _change, backup in undo:
        if kind == "removed" and backup:
            discard(backup)


def _discard(temps: Any, created_dirs: list[Path]) -> None:
    for tmp in list(temps):
        discard(tmp)
    for directory in sorted(created_dirs, key=lambda d: len(d.parts), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
