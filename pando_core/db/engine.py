"""SQLite engines: one read-write writer (the primary) or read-only readers (secondaries).

Python 3.11's sqlite3 runs in "legacy transaction control" mode, in which DDL autocommits and
SAVEPOINTs misbehave. We take control ourselves: autocommit at the driver level, and explicit
``BEGIN IMMEDIATE`` (writes) / ``BEGIN`` (reads). That makes migrations transactional and lets the
write coordinator use savepoints inside a batch's transaction.

Every write goes through one long-lived writer connection (:class:`WriterConnection`): the
transaction is begun and ended on the DBAPI connection directly, and a SQLAlchemy ``Connection``
wrapping that same DBAPI connection is there for repositories that build SQLAlchemy statements.
Checking a connection out of a pool and letting SQLAlchemy run BEGIN/COMMIT cost about 35 us per
transaction, more than the SQLite work of a typical write (see bench/ipc.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool, StaticPool

from ..clock import now_ms

log = logging.getLogger("pando.db")

BUSY_TIMEOUT_MS = 10_000


@dataclass(slots=True)
class Change:
    """One row-level change recorded by a write, published as ``db.<table>.<op>`` after commit."""

    table: str
    op: str  # insert | update | delete
    ids: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "op": self.op, "ids": self.ids}


def coalesce_changes(changes: Iterable[Change]) -> list[Change]:
    """*changes* merged into one per (table, op), ids in order and once each: what several writes
    committed together announce (one event per kind of change rather than one per write)."""
    merged: dict[tuple[str, str], dict[str, None]] = {}
    for change in changes:
        merged.setdefault((change.table, change.op), {}).update(dict.fromkeys(change.ids))
    return [Change(table, op, list(ids)) for (table, op), ids in merged.items()]


class WriteTx:
    """What a repository's write method gets: the writer connection in an open transaction.

    ``tx.raw`` is the DBAPI (``sqlite3``) connection: plain SQL on it is the fast path. ``tx.conn``
    is a SQLAlchemy ``Connection`` on the same DBAPI connection and the same transaction.
    """

    __slots__ = ("_writer", "changes")
    dialect = "sqlite"  # a repository may take a faster statement where the engine allows it

    def __init__(self, writer: WriterConnection) -> None:
        self._writer = writer
        self.changes: list[Change] = []

    @property
    def raw(self) -> sqlite3.Connection:
        return self._writer.raw

    @property
    def conn(self) -> Connection:
        return self._writer.sqlalchemy()

    def part(self) -> WriteTx:
        """A WriteTx in the same transaction with changes of its own (one write of a batch)."""
        return WriteTx(self._writer)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Run the block in a SAVEPOINT: if it raises, only what it did is undone (the rest of the
        transaction stays) and the exception goes on."""
        raw = self.raw
        raw.execute("SAVEPOINT pando_write")
        try:
            yield
            flush = getattr(raw, "flush", None)  # PostgreSQL: the block's queued statements (pg_batching)
            if flush is not None:
                flush()
        except BaseException:
            raw.execute("ROLLBACK TO pando_write")
            raw.execute("RELEASE pando_write")
            raise
        raw.execute("RELEASE pando_write")

    def restart(self) -> None:
        """Roll back everything done in this transaction and begin a new one on the same
        connection (the coordinator undoes a lone write, or a batch it applies again, this way)."""
        self._writer.rollback()
        self._writer.begin()

    def next_seq(self, table: str) -> int:
        """The next value of *table*'s ``seq`` column (see :meth:`WriterConnection.next_seq`)."""
        return self._writer.next_seq(table)

    def changed(self, table: str, op: str, *ids: str) -> None:
        self.changes.append(Change(table, op, [str(i) for i in ids]))

    now_ms = staticmethod(now_ms)  # milliseconds since the epoch, as rows store times


@dataclass
class ReadTx:
    conn: Connection

    @property
    def raw(self) -> sqlite3.Connection:
        return self.conn.connection.driver_connection


def _configure_dbapi(dbapi_connection: sqlite3.Connection, *, readonly: bool) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    if not readonly:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class WriterConnection:
    """The primary's one write connection: a DBAPI connection whose transactions we run ourselves.

    ``begin``/``commit``/``rollback`` act on the DBAPI connection. A SQLAlchemy ``Connection`` over
    the same DBAPI connection (a private engine with a static pool and no BEGIN of its own) is
    opened with the writer -- opening it later would let SQLAlchemy's first-connect rollback end a
    transaction in progress. When SQLAlchemy took part in a transaction, it is ended through
    SQLAlchemy, which commits or rolls back the DBAPI connection, so both agree on the state.
    """

    def __init__(self, path: Path) -> None:
        self.raw = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        _configure_dbapi(self.raw, readonly=False)
        self._engine = create_engine("sqlite://", creator=lambda: self.raw, poolclass=StaticPool)
        self._sa = self._engine.connect()
        self._last_seq: dict[str, int] = {}
        self._data_version: int | None = None  # PRAGMA data_version when _last_seq was valid
        self._version_checked = False  # data_version was read in the open transaction
        self._prepared = False  # a transaction begun ahead of the next write (see prepare)

    def next_seq(self, table: str) -> int:
        """One more than the highest ``seq`` handed out for *table*: read once from the table
        (``max(seq)``: an index lookup for messages and files, a scan of the small sessions
        rows), then counted here. This connection is normally the database's only writer, but
        for up to a lease check a fenced old primary may still commit (``ipc.lock`` replaced
        under it): ``PRAGMA data_version`` says when any other connection committed, and the
        count is read again then. Inside ``BEGIN IMMEDIATE`` nobody else can commit before we
        do, so the value is unique. A rolled-back transaction leaves a gap, which ordering by
        ``seq`` does not mind."""
        if not self._version_checked:  # once per transaction: inside it nobody else commits
            self._version_checked = True
            version = self.raw.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:  # another connection committed: the counts may be behind
                self._data_version = version
                self._last_seq.clear()
        last = self._last_seq.get(table)
        if last is None:
            last = self.raw.execute(f"SELECT max(seq) FROM {table}").fetchone()[0] or 0
        self._last_seq[table] = last + 1
        return last + 1

    def sqlalchemy(self) -> Connection:
        return self._sa

    def begin(self) -> None:
        """BEGIN IMMEDIATE, or take over the transaction :meth:`prepare` began. Raises
        RuntimeError, beginning nothing, while another transaction is open on the connection."""
        raw = self.raw
        if self._prepared:
            self._prepared = False
            if raw.in_transaction:
                return  # the transaction prepare() began: its data_version check stands
        elif raw.in_transaction:
            raise RuntimeError("a write transaction is already open on this database (nested write)")
        raw.execute("BEGIN IMMEDIATE")
        self._version_checked = False

    @property
    def prepared(self) -> bool:
        return self._prepared

    def prepare(self) -> None:
        """Begin the next write transaction now, while idle: the next :meth:`begin` finds it open."""
        if not self.raw.in_transaction:
            self.raw.execute("BEGIN IMMEDIATE")
            self._prepared = True
            self._version_checked = False

    def release_prepared(self) -> None:
        """End a transaction :meth:`prepare` began and no write used (it holds SQLite's write lock)."""
        if self._prepared:
            self._prepared = False
            if self.raw.in_transaction:
                self.raw.execute("ROLLBACK")

    def commit(self) -> None:
        if self._sa.in_transaction():
            self._sa.commit()  # COMMITs the DBAPI connection too
        else:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        self._prepared = False
        if self._sa.in_transaction():
            self._sa.rollback()
        elif self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self._sa.close()
        self._engine.dispose()
        self.raw.close()


def _configure(engine: Engine, *, readonly: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver callback
        _configure_dbapi(dbapi_connection, readonly=readonly)

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # pragma: no cover - driver callback
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


class _Transaction:
    """The context manager :meth:`Database.transaction` returns. A class, not a generator: it
    wraps every write, and a ``@contextmanager`` generator costs three times as much."""

    __slots__ = ("_connection",)

    def __init__(self, connection: WriterConnection) -> None:
        self._connection = connection

    def __enter__(self) -> WriteTx:
        self._connection.begin()
        return WriteTx(self._connection)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is not None:
            self._connection.rollback()
            return
        try:
            self._connection.commit()
        except BaseException:
            self._connection.rollback()
            raise


DB_FILE_MODE = 0o600
SIDE_FILE_SUFFIXES = ("-wal", "-shm", "-journal")


def make_private(path: Path) -> None:
    """Create the database file `path` with mode 0600 (if missing) and take group and other
    permissions off it and its side files. SQLite creates the -wal, -shm and -journal files later
    with the database file's own mode, so they are 0600 too once the main file is."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), DB_FILE_MODE)
    except OSError:
        return  # SQLite will report why it cannot open the file
    os.close(fd)
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILE_SUFFIXES)):
        try:
            mode = os.stat(candidate).st_mode
            if mode & 0o077:
                os.chmod(candidate, DB_FILE_MODE)
        except OSError:
            continue  # a side file that does not exist (yet)


class CommitListeners:
    """``on_commit`` / ``notify`` of a database: listeners that hear each committed write's
    changes (``listener(changes, writer_instance_id)``) after COMMIT, a failing one logged."""

    _commit_listeners: list[Callable[[list[Change], str], None]]

    def on_commit(self, listener: Callable[[list[Change], str], None]) -> None:
        """``listener(changes, writer_instance_id)`` runs after every committed write with changes
        made through this process's database object."""
        self._commit_listeners.append(listener)

    def notify(self, changes: list[Change], writer: str) -> None:
        for listener in list(self._commit_listeners):
            try:
                listener(changes, writer)
            except Exception:  # noqa: BLE001 - a listener must not break the writer
                log.exception("commit listener failed")


class Database(CommitListeners):
    """A SQLite database file opened read-write (one writer) or read-only."""

    dialect = "sqlite"
    shared = False  # one writer: the primary of the working directory (team mode: postgres.py)

    def __init__(self, path: Path, *, readonly: bool = False, pool_size: int = 4) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            url = f"sqlite:///file:{self.path.resolve()}?mode=ro&uri=true"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            make_private(self.path)
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
        self._writer: WriterConnection | None = None
        self._commit_listeners: list[Callable[[list[Change], str], None]] = []
        if not readonly:
            # create the file and switch it to WAL now, so read-only openers can attach
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

    @property
    def storage_dir(self) -> Path:
        """The directory whose device holds the data (a full disk is reported for it)."""
        return self.path.parent

    def adapt_ddl(self, statement: str) -> str:
        return statement  # migrations are written in SQLite's types

    def has_table(self, name: str) -> bool:
        with self.read() as tx:
            return (
                tx.conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).first()
                is not None
            )

    # -- transactions ----------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        with self.engine.connect() as conn, conn.begin():
            yield ReadTx(conn)

    @contextmanager
    def write(self, writer: str = "") -> Iterator[WriteTx]:
        """One write transaction; listeners hear its changes after COMMIT."""
        with self._write_lock, self.transaction() as tx:
            yield tx
        if tx.changes:
            self.notify(tx.changes, writer)

    def transaction(self, writer: str = "") -> _Transaction:
        """BEGIN IMMEDIATE ... COMMIT on the writer connection (ROLLBACK if the block raises), as
        ``with db.transaction() as tx:``.

        The caller holds :attr:`write_lock`; changes are not announced (see :meth:`write`).
        *writer* names the writing instance for engines that announce changes at commit
        (PostgreSQL's NOTIFY); SQLite's listeners hear them from :meth:`notify`.
        """
        return _Transaction(self.writer())

    def prepare_write(self) -> None:
        """Begin the next write transaction ahead of time, so that the next write skips its
        ``BEGIN IMMEDIATE`` (5-10 us of a lone proxied write's latency). The caller holds
        :attr:`write_lock`. The transaction holds SQLite's write lock while idle, which blocks
        nobody: this connection is the database's only writer and WAL readers never wait for
        it. :meth:`release_prepared` (and :meth:`dispose`) give it back; a failure to begin is
        only logged (the next write begins as usual)."""
        try:
            self.writer().prepare()
        except sqlite3.Error as exc:
            log.debug("cannot prepare the next write transaction: %s", exc)

    def release_prepared(self) -> None:
        """Roll back a transaction :meth:`prepare_write` began if no write has used it."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.release_prepared()

    def writer(self) -> WriterConnection:
        """The write connection (opened on first use). Hold :attr:`write_lock` while using it."""
        if self.readonly:
            raise RuntimeError("this database is open read-only; writes go through the primary")
        if self._writer is None:
            self._writer = WriterConnection(self.path)
        return self._writer

    @property
    def write_lock(self) -> threading.RLock:
        return self._write_lock

    def dispose(self) -> None:
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()
