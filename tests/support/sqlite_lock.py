"""Whether SQLite's write lock on a database file is free, seen from a connection of the test's own."""

from __future__ import annotations

import os
import sqlite3


def another_writer_gets_in(path: str | os.PathLike[str]) -> bool:
    """Whether a new connection can take the write lock of *path* right now (it begins a write
    transaction without waiting, and rolls it back)."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        conn.close()
