"""The primary epoch, kept in the database so that it cannot be lost with ``primary.json``.

Each new primary takes an epoch one above every epoch before it. ``primary.json`` advertises it,
but that file may be damaged or deleted; the epoch also lives in the database header
(``PRAGMA user_version``, which pando uses for nothing else), written in the same kind of
transaction as any write, so it is as durable as the data. A new primary takes
``max(database, record) + 1``: it never goes back (seen before: epochs 1, 2, 1), so secondaries
that follow "a higher epoch" always follow the real primary.
"""

from __future__ import annotations

from ..db import Database

__all__ = ["next_epoch", "stored_epoch"]


def next_epoch(db: Database, recorded: int) -> int:
    """Take the next epoch (above *recorded*, the one ``primary.json`` names, and above the
    database's) and store it; raises what the write raises (a full disk, say). A shared
    (PostgreSQL) database holds a team, not one working directory: the epoch stays local."""
    if db.shared:
        return int(recorded) + 1
    with db.write_lock, db.transaction() as tx:
        stored = tx.raw.execute("PRAGMA user_version").fetchone()[0]
        epoch = max(int(stored), int(recorded)) + 1
        tx.raw.execute(f"PRAGMA user_version = {epoch:d}")
    return epoch


def stored_epoch(db: Database) -> int:
    """The epoch of the latest primary of this database (0 = none recorded yet)."""
    if db.shared:
        return 0
    with db.read() as tx:
        return int(tx.raw.execute("PRAGMA user_version").fetchone()[0])
