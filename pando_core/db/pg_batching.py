"""The PostgreSQL write path in as few round trips, and as little client work, as the work allows.

A repository's write is a handful of statements and the engine adds its own (the write key, the
NOTIFY, BEGIN and COMMIT). Measured on loopback (docs/performance.md), a round trip of a small
prepared statement costs less than psycopg's pipeline mode does in Python (entering it, queueing,
syncing, leaving: 30-40 us a write), so:

- a single write runs outside pipeline mode: BEGIN, its statements and COMMIT each go at once.
  The engine's last statement records the write key and sends the NOTIFY; a statement of the
  write may carry both instead (:meth:`BatchingWriterConnection.execute_finishing`, outside
  savepoints): ``messages.create``, the write that matters most, is then one statement
  (:data:`~.repositories._PG_CREATE_MESSAGE`) and three round trips, BEGIN, it, COMMIT, as a raw
  INSERT + COMMIT;
- a batch of writes (``store.pipeline``; each write in a SAVEPOINT) enters pipeline mode at its
  first SAVEPOINT: from there, statements whose result nobody needs yet (``INSERT``/``UPDATE``/
  ``DELETE`` without ``RETURNING``, ``SAVEPOINT``) are only queued and go to the server with the
  next statement that returns rows, at the end of a savepoint, or with COMMIT, still as prepared
  statements (one multi-statement text instead costs more in planning than it saves);
- ``seq`` values come from the server's ``pando_seq`` sequence, so they are unique and ordered
  across every instance of the team (a clock would order two machines' writes by their skew).

An error in a queued statement is raised where the queue is sent: at the next read, at the end
of a savepoint (so a batch's failed write is still undone alone), or at COMMIT -- always inside
the write, which fails as a whole, as it would have.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from .pg_sql import to_pyformat
from .postgres import SEQUENCE, PgWriterConnection, PostgresDatabase

_DEFERRABLE = ("INSERT", "UPDATE", "DELETE", "SAVEPOINT")

def _deferrable(sql: str) -> bool:
    head = sql.lstrip()[:9].upper()
    return head.startswith(_DEFERRABLE) and "RETURNING" not in sql.upper()


class _Queued:
    """What ``execute`` returns for a queued statement: asking for its result sends the queue."""

    __slots__ = ("_raw", "_cursor")

    def __init__(self, raw: BatchingRaw, cursor: Any) -> None:
        self._raw = raw
        self._cursor = cursor

    def _sent(self) -> Any:
        self._raw.flush()
        return self._cursor

    @property
    def rowcount(self) -> int:
        return self._sent().rowcount

    @property
    def description(self) -> Any:
        return self._sent().description

    def fetchone(self) -> Any:
        cursor = self._sent()
        return cursor.fetchone() if cursor.description is not None else None

    def fetchall(self) -> list:
        cursor = self._sent()
        return cursor.fetchall() if cursor.description is not None else []

    def __iter__(self):  # noqa: ANN204
        return iter(self.fetchall())


class BatchingRaw:
    """``tx.raw`` of the batching writer: takes the repositories' ``?`` SQL, as :class:`PgRaw`."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.in_transaction = False  # BEGIN queued or sent, COMMIT/ROLLBACK not yet
        self._pipeline: Any = None  # the open pipeline context of the transaction
        self.queued = 0  # statements queued since the last round trip

    # -- the pipeline ------------------------------------------------------------------------------

    def open(self) -> None:
        """Begin a transaction: BEGIN sent at once, outside pipeline mode (see the module doc)."""
        self.connection.execute("BEGIN")
        self.in_transaction = True
        self.queued = 0

    def _enter_pipeline(self) -> None:
        self._pipeline = self.connection.pipeline()
        self._pipeline.__enter__()

    def flush(self) -> None:
        """Send what is queued and wait for its results (one round trip); raises the first
        error among them."""
        if self._pipeline is not None and self.queued:
            self.queued = 0
            self.connection._pipeline.sync()

    def close(self, last: str | None) -> None:
        """Queue *last* (COMMIT or ROLLBACK), send everything and leave pipeline mode."""
        pipeline, self._pipeline = self._pipeline, None
        self.in_transaction = False
        self.queued = 0
        if pipeline is None:
            if last is not None:
                self.connection.execute(last)
            return
        try:
            if last is not None:
                self.connection.execute(last)
        except BaseException as exc:
            pipeline.__exit__(type(exc), exc, exc.__traceback__)
            raise
        pipeline.__exit__(None, None, None)

    def leave_pipeline(self) -> None:
        """Send what is queued and leave pipeline mode, the transaction staying open (for
        SQLAlchemy, which expects a connection outside pipeline mode)."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            self.queued = 0
            pipeline.__exit__(None, None, None)

    # -- statements --------------------------------------------------------------------------------

    def execute(self, sql: str, params: Any = None) -> Any:
        sql = to_pyformat(sql)
        params = () if params is None else params
        if self._pipeline is None:
            if not (self.in_transaction and sql.startswith("SAVEPOINT")):
                return self.connection.execute(sql, params)
            self._enter_pipeline()  # a batch of writes, each in its savepoint: queue from here on
        cursor = self.connection.cursor()
        cursor.execute(sql, params)
        self.queued += 1
        if _deferrable(sql):
            return _Queued(self, cursor)
        self.flush()  # a read: its rows (and description) are wanted now
        return cursor

    def executemany(self, sql: str, seq_of_params: Any) -> Any:
        cursor = self.connection.cursor()
        cursor.executemany(to_pyformat(sql), seq_of_params)
        self.queued += 1
        self.flush()
        return cursor


class BatchingWriterConnection(PgWriterConnection):
    """:class:`PgWriterConnection` sending queued statements together (see the module doc)."""

    def __init__(self, db: PostgresDatabase) -> None:
        super().__init__(db)
        self.conn.autocommit = True  # BEGIN and COMMIT are ours
        self.raw = BatchingRaw(self.conn)
        raw = self.raw

        @event.listens_for(self._engine, "before_cursor_execute")
        def _leave_pipeline(*_args: Any) -> None:  # SQLAlchemy statements: outside pipeline mode
            raw.leave_pipeline()

    def next_seq(self, table: str) -> int:
        # a read: sent at once (with anything queued, in a batch)
        return self.raw.execute(f"SELECT nextval('{SEQUENCE}')").fetchone()[0]

    def begin(self) -> None:
        if self.raw.in_transaction or self._sa.in_transaction():
            raise RuntimeError("a write transaction is already open on this database (nested write)")
        self.pending = []
        self.pending_key = None
        self.raw.open()

    def _key_and_notify(self, writer: str) -> tuple[list[str], list[Any], bool]:
        """The CTEs recording the pending key (this writer's previous one deleted) and announcing
        the pending changes (``n``), their parameters, and whether ``n`` is there; both taken."""
        from .engine import WriteTx, coalesce_changes
        from .pg_changes import encode_changes

        parts: list[str] = []
        params: list[Any] = []
        if self.pending_key is not None:
            owner, seq, method, result = self.pending_key
            parts.append("d AS (DELETE FROM applied_writes WHERE instance_id = %s AND seq = %s)")
            parts.append(
                "k AS (INSERT INTO applied_writes (instance_id, seq, method, ok, result, created_at)"
                " VALUES (%s, %s, %s, 1, %s, %s))"
            )
            params += [owner, seq - 1, owner, seq, method, result, WriteTx.now_ms()]
        notify = bool(self.pending)
        if notify:
            parts.append("n AS (SELECT pg_notify('pando_changes', %s))")
            params.append(encode_changes(coalesce_changes(self.pending), writer))
        self.pending, self.pending_key = [], None
        return parts, params, notify

    def execute_finishing(self, head: str, params: list[Any], select: str) -> Any:
        """Run *head* (``WITH`` and CTEs, the repositories' ``?``) + *select* carrying the key and the
        NOTIFY of everything pending, so that COMMIT follows with nothing else (one statement
        and its round trip saved). Only outside savepoints and pipeline mode: a savepoint rolled
        back would take the key with it. *select* reads its rows ``FROM`` its own CTEs."""
        if self.savepoints or self.raw._pipeline is not None:
            return None
        parts, extra, notify = self._key_and_notify(self.writer_name)
        sql = to_pyformat(head) + "".join(", " + part for part in parts) + " " + select + (", n" if notify else "")
        return self.conn.execute(sql, [*params, *extra])

    def finish(self, writer: str) -> None:
        """The write key and the NOTIFY (one statement), then COMMIT."""
        parts, params, notify = self._key_and_notify(writer)
        if parts:
            self.conn.execute("WITH " + ", ".join(parts) + (" SELECT 1 FROM n" if notify else " SELECT 1"), params)
            self.raw.queued += 1
        self.commit()

    def commit(self) -> None:
        self.pending, self.pending_key = [], None
        try:
            self.raw.close("COMMIT")
        finally:
            if self._sa.in_transaction():
                self._sa.commit()  # SQLAlchemy's bookkeeping (the server's transaction has ended)

    def rollback(self) -> None:
        self.pending, self.pending_key = [], None
        raw = self.raw
        if self.broken:
            raw._pipeline = None
            raw.in_transaction = False
            return
        try:
            raw.close("ROLLBACK")
        except Exception:  # noqa: BLE001 - the transaction is undone either way
            pass
        # an error already read from the pipeline makes the server discard what follows up to the
        # next sync -- the queued ROLLBACK too: the transaction would stay open and aborted, and
        # the next write would fail with "current transaction is aborted"
        try:
            if not self.broken and self.conn.info.transaction_status != 0:  # 0: IDLE
                self.conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - a connection that broke now is replaced by the next write
            pass
        if self._sa.in_transaction():
            self._sa.rollback()
