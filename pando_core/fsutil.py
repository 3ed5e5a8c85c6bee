"""Atomic file writes shared by the file tools and the snapshot service.

* `write_temp_beside` — a new temp file in the target's directory (same filesystem, so it can be
  renamed over the target), removed again if writing it fails.
* `atomic_write` — the same, renamed over the target (with `fsync=True`, durably: the data and
  the rename are on disk when it returns).
* `current_umask` — the process umask (for the mode a newly created file would get).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "current_umask", "discard", "fsync_directory", "write_temp_beside"]


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def discard(name: str | os.PathLike[str]) -> None:
    """Remove a temp file, ignoring errors (it may already be gone)."""
    with contextlib.suppress(OSError):
        os.unlink(name)


def write_temp_beside(
    path: Path, data: bytes, mode: int | None = None, *, suffix: str = ".tmp", fsync: bool = False
) -> str:
    """Write `data` to a new temp file next to `path` and return its name.

    `mode` is the temp file's permission bits; None = those of `path` when it exists, else what a new
    file gets (0o666 minus the umask). `fsync` flushes the data to disk before returning.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is None:
            try:
                mode = path.stat().st_mode & 0o7777
            except OSError:
                mode = 0o666 & ~current_umask()
        os.chmod(tmp, mode)
    except BaseException:
        discard(tmp)
        raise
    return tmp


def atomic_write(
    path: Path, data: bytes, mode: int | None = None, *, suffix: str = ".tmp", fsync: bool = False
) -> None:
    """Replace `path` with `data` in one rename (see `write_temp_beside` for `mode`); `fsync`
    flushes the data, then the directory entry, to disk."""
    tmp = write_temp_beside(path, data, mode, suffix=suffix, fsync=fsync)
    try:
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    if fsync:
        fsync_directory(path.parent)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk, where the platform can."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
