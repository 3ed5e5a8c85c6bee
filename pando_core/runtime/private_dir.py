"""A directory only we can use: ``.pando`` and its ``auth`` folder, the ``ipc://`` socket folder."""

from __future__ import annotations

import os
import stat


def ensure_private_dir(path: str | os.PathLike[str], error: type[Exception]) -> str:
    """Create *path* (and its parents) with mode 0700, or check that an existing one is a real
    directory owned by the current user, tightening group/other permission bits if it has any.
    Anything else raises *error* with the reason; returns the path as a string."""
    path = os.fspath(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except FileExistsError as exc:  # a file (or a symlink to one) sits there
        raise error(f"{path} exists and is not a directory") from exc
    except OSError as exc:
        raise error(f"cannot create {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise error(f"{path} exists and is not a directory (symlink?)")
    if hasattr(os, "getuid"):
        if st.st_uid != os.getuid():
            raise error(f"{path} is owned by uid {st.st_uid}, not by the current user (uid {os.getuid()})")
        if st.st_mode & 0o077:
            try:
                os.chmod(path, 0o700)
            except OSError as exc:
                raise error(f"cannot set mode 0700 on {path}: {exc.strerror or exc}") from exc
    return path
