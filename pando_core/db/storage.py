"""A full disk, said as one line with a kind: "no space left on the device holding .pando/".

SQLite reports a full disk as "database or disk is full" (SQLITE_FULL) when a write cannot grow
a file, but as "disk I/O error" when the shared-memory file or the WAL cannot be extended; the
OS says ENOSPC (or EDQUOT, over quota). :func:`storage_full` recognises all of them -- an I/O
error only when the device really has (almost) no space left -- and gives the error pando shows
and sends over the bus (kind ``no_space``, not retryable: the write was not applied and will
not be until someone frees space).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import StorageFullError

__all__ = ["no_space_message", "storage_full"]

_SQLITE_FULL = 13
_SQLITE_IOERR = 10
_NEARLY_FULL_BYTES = 256 * 1024


def no_space_message(directory: str | os.PathLike[str]) -> str:
    return f"no space left on the device holding {Path(directory)}/; free some space there and try again"


def _device_full(directory: str | os.PathLike[str]) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL_BYTES


def storage_full(exc: BaseException, directory: str | os.PathLike[str]) -> StorageFullError | None:
    """The :class:`StorageFullError` *exc* means for *directory* (``.pando/``), or None when it is
    something else. Looks through the causes (SQLAlchemy wraps the driver's error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageFullError):
            return current
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFullError(no_space_message(directory))
        code = getattr(current, "sqlite_errorcode", None)
        if isinstance(code, int):
            primary = code & 0xFF
            if primary == _SQLITE_FULL or (primary == _SQLITE_IOERR and _device_full(directory)):
                return StorageFullError(no_space_message(directory))
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None
