"""The fires table: every fire of every job, claimed before its task is spawned.

``claim`` is the one arbiter of "has this minute fired?": it inserts the job's scheduled minute
under a unique index, and refuses a minute at or before one already claimed, in one write
transaction on the primary. The scheduler claims first and spawns second, so a primary killed
between the two loses that fire (its row stays ``claimed``, shown as interrupted) but a new
primary never fires the same minute again. ``run now`` fires are rows of kind ``manual``, which
take part in no such order.
"""

from __future__ import annotations

from typing import Any

from pando_core.db import Component, Migration, Repository, read, write
from pando_core.errors import NotFoundError, ValidationError

TABLE = "cron_fires"
SCHEDULED, MANUAL = "scheduled", "manual"
CLAIMED, FIRED, SKIPPED, FAILED = "claimed", "fired", "skipped", "failed"
OUTCOMES = (FIRED, SKIPPED, FAILED)

MIGRATIONS = [
    Migration(
        1,
        "cron fires",
        [
            f"""CREATE TABLE {TABLE} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                job TEXT NOT NULL,
                kind TEXT NOT NULL,
                scheduled_at INTEGER,
                catch_up INTEGER NOT NULL DEFAULT 0,
                status TEXT NOT NULL,
                task_id TEXT,
                reason TEXT,
                instance TEXT,
                claimed_at INTEGER NOT NULL,
                recorded_at INTEGER
            )""",
            f"CREATE UNIQUE INDEX {TABLE}_minute ON {TABLE} (job, scheduled_at) WHERE kind = 'scheduled'",
            f"CREATE INDEX {TABLE}_job ON {TABLE} (job, id)",
        ],
    ),
]


def _rows(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor.fetchall():
        fire = dict(zip(names, row, strict=True))
        fire["catch_up"] = bool(fire["catch_up"])
        out.append(fire)
    return out


def _fetch(tx: Any, fire_id: int) -> dict[str, Any]:
    rows = _rows(tx.raw.execute(f"SELECT * FROM {TABLE} WHERE id = ?", (fire_id,)))
    if not rows:
        raise NotFoundError(f"no cron fire {fire_id}")
    return rows[0]


class FireRepository(Repository):
    name = "cron"

    @write
    def claim(
        self,
        tx: Any,
        *,
        job: str,
        kind: str,
        instance: str,
        scheduled_at: int | None = None,
        catch_up: bool = False,
    ) -> dict | None:
        """Record that *job* fires now; None when that scheduled minute (or a later one) was already
        claimed. *scheduled_at*: the minute (epoch ms) of a scheduled fire."""
        if kind not in (SCHEDULED, MANUAL):
            raise ValidationError(f"cron.claim: kind must be {SCHEDULED} or {MANUAL}")
        if kind == SCHEDULED:
            if scheduled_at is None:
                raise ValidationError("cron.claim: a scheduled fire needs scheduled_at")
            (latest,) = tx.raw.execute(
                f"SELECT max(scheduled_at) FROM {TABLE} WHERE job = ? AND kind = ?", (job, SCHEDULED)
            ).fetchone()
            if latest is not None and latest >= scheduled_at:
                return None
        (fire_id,) = tx.raw.execute(
            f"INSERT INTO {TABLE} (job, kind, scheduled_at, catch_up, status, instance, claimed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",  # RETURNING: portable (SQLite and PostgreSQL)
            (job, kind, scheduled_at, int(bool(catch_up)), CLAIMED, instance, tx.now_ms()),
        ).fetchone()
        tx.changed(TABLE, "insert", fire_id)
        return _fetch(tx, fire_id)

    @write
    def record(
        self, tx: Any, *, id: int, status: str, task_id: str | None = None, reason: str | None = None
    ) -> dict:
        """The outcome of a claimed fire: fired (with its task), skipped or failed (with why)."""
        if status not in OUTCOMES:
            raise ValidationError(f"cron.record: status must be one of {', '.join(OUTCOMES)}")
        cursor = tx.raw.execute(
            f"UPDATE {TABLE} SET status = ?, task_id = ?, reason = ?, recorded_at = ? WHERE id = ?",
            (status, task_id, reason, tx.now_ms(), id),
        )
        if cursor.rowcount == 0:
            raise NotFoundError(f"no cron fire {id}")
        tx.changed(TABLE, status, id)
        return _fetch(tx, id)

    @read
    def get(self, tx: Any, *, id: int) -> dict:
        return _fetch(tx, id)

    @read
    def last_scheduled(self, tx: Any, *, job: str) -> int | None:
        """The latest scheduled minute (epoch ms) claimed for *job*."""
        (latest,) = tx.raw.execute(
            f"SELECT max(scheduled_at) FROM {TABLE} WHERE job = ? AND kind = ?", (job, SCHEDULED)
        ).fetchone()
        return latest

    @read
    def history(self, tx: Any, *, job: str | None = None, limit: int = 50) -> list:
        """Fires, newest first; *job*: only that job's (case-insensitive)."""
        sql, args = f"SELECT * FROM {TABLE}", []
        if job:
            sql += " WHERE lower(job) = lower(?)"
            args.append(job)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(int(limit))
        return _rows(tx.raw.execute(sql, args))

    @read
    def latest(self, tx: Any) -> dict:
        """``{job: its newest fire}`` for every job that ever fired."""
        rows = _rows(
            tx.raw.execute(f"SELECT * FROM {TABLE} WHERE id IN (SELECT max(id) FROM {TABLE} GROUP BY job)")
        )
        return {row["job"]: row for row in rows}


def component() -> Component:
    return Component("cron", list(MIGRATIONS), [FireRepository])
