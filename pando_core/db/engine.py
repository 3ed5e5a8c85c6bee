"""SQLite engines: one read-write writer (the primary) or read-only readers (secondaries).

Python 3.11's sqlite3 runs in "legacy transaction control" mode, in which DDL autocommits and
SAVEPOINTs misbehave. We take control ourselves: autocommit at the driver level, and an explicit
``BEGIN IMMEDIATE`` (writer) / ``BEGIN`` (reader) emitted by SQLAlchemy's ``begin`` event. That makes
migrations transactional and lets the write coordinator use one savepoint per queued write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool

BUSY_TIMEOUT_MS = 10_000


@dataclass
class Change:
    """One row-level change recorded by a write, published as ``db.<table>.<op>`` after commit."""

    table: str
    op: str  # insert | update | delete
    ids: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "op": self.op, "ids": self.ids}


@dataclass
class WriteTx:
    """What a repository's write method gets: the connection in an open transaction."""

    conn: Connection
    changes: list[Change] = field(default_factory=list)

    def changed(self, table: str, op: str, *ids: str) -> None:
        self.changes.append(Change(table, op, [str(i) for i in ids]))

    @staticmethod
    def now_ms() -> int:
        return time.time_ns() // 1_000_000


@dataclass
class ReadTx:
    conn: Connection


def _configure(engine: Engine, *, readonly: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver callback
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not readonly:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # pragma: no cover - driver callback
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


class Database:
    """A SQLite database file opened read-write (one writer) or read-only."""

    def __init__(self, path: Path, *, readonly: bool = False, pool_size: int = 4) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            url = f"sqlite:///file:{self.path.resolve()}?mode=ro&uri=true"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{self.path.resolve()}"
        self.engine: Engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=8,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
        _configure(self.engine, readonly=readonly)
        self._write_lock = threading.RLock()
        self._commit_listeners: list[Callable[[list[Change], str], None]] = []
        if not readonly:
            # create the file and switch it to WAL now, so read-only openers can attach
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

    # -- transactions ----------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        with self.engine.connect() as conn, conn.begin():
            yield ReadTx(conn)

    @contextmanager
    def write(self, writer: str = "") -> Iterator[WriteTx]:
        """One write transaction; listeners hear its changes after COMMIT."""
        if self.readonly:
            raise RuntimeError("this database is open read-only; writes go through the primary")
        with self._write_lock:
            with self.engine.connect() as conn:
                with conn.begin():
                    tx = WriteTx(conn)
                    yield tx
            changes = tx.changes
        if changes:
            self.notify(changes, writer)

    @property
    def write_lock(self) -> threading.RLock:
        return self._write_lock

    def on_commit(self, listener: Callable[[list[Change], str], None]) -> None:
        """``listener(changes, writer_instance_id)`` runs after every committed write with changes."""
        self._commit_listeners.append(listener)

    def remove_commit_listener(self, listener: Callable[[list[Change], str], None]) -> None:
        if listener in self._commit_listeners:
            self._commit_listeners.remove(listener)

    def notify(self, changes: list[Change], writer: str) -> None:
        for listener in list(self._commit_listeners):
            try:
                listener(changes, writer)
            except Exception:  # noqa: BLE001 - a listener must not break the writer
                import logging

                logging.getLogger("pando.db").exception("commit listener failed")

    def dispose(self) -> None:
        self.engine.dispose()
