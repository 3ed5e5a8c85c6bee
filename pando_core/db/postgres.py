"""PostgreSQL engine for team mode: the same interface as the SQLite :class:`~.engine.Database`.

Every instance, on any machine, opens the database read-write and writes directly: there is no
primary for writes. What differs from SQLite, and why:

- ``tx.raw`` is :class:`PgRaw`, a thin adapter over a psycopg connection that takes the
  repositories' ``?``/``:name`` SQL (:func:`~.pg_sql.to_pyformat`), so repositories run unchanged.
- ``tx.next_seq`` takes ``nextval('pando_seq')``: one sequence for every ``seq`` column, unique
  under any number of concurrent writers (``max(seq) + 1`` is not).
- Each write transaction that recorded changes sends ``pg_notify('pando_changes', ...)`` before
  COMMIT (see :mod:`.pg_changes`): delivered to every listener at commit, only if it commits.
- :meth:`PostgresDatabase.run_write` records the write's idempotency key in ``applied_writes`` in
  the same transaction (the previous key of this writer is deleted in the same statement): when
  the connection drops mid-write, the write is retried once on a new connection, unless the key
  shows that its COMMIT went through -- never applied twice.
- Migrations run under a session advisory lock (:meth:`PostgresDatabase.migration_lock`), so the
  instance that starts first applies them and the others find them applied.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.pool import QueuePool, StaticPool

from ..errors import PandoError, UnavailableError
from .engine import Change, CommitListeners, WriteTx, coalesce_changes
from .pg_sql import postgres_ddl, to_pyformat

log = logging.getLogger("pando.db.postgres")

MIN_SERVER_VERSION = 130000  # PostgreSQL 13: GENERATED AS IDENTITY, pg_notify, ON CONFLICT, ...
SEQUENCE = "pando_seq"
MIGRATION_LOCK_KEY = 0x70616E646F  # "pando": the advisory lock migrations run under
RECONNECT_WINDOW_S = 5.0  # a write whose connection dropped waits this long for the server
CONNECT_TIMEOUT_S = 5


class DatabaseError(PandoError):
    """The database cannot be used (unreachable, refused, missing, too old): said in one line."""

    kind = "unavailable"


def require_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise DatabaseError(
            "team mode on PostgreSQL needs psycopg: pip install 'pando-core[postgres]'"
        ) from exc
    return psycopg


def sqlalchemy_url(url: str) -> str:
    """*url* with the psycopg driver named (``postgresql://`` would pick psycopg2)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + rest
    return url


def libpq_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and scheme.startswith(("postgresql", "postgres")):
        return "postgresql://" + rest
    return url


def _where(url: str) -> str:
    """``host:port/db`` of *url*, for messages (never the password)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(sqlalchemy_url(url))
    except Exception:  # noqa: BLE001 - a message helper
        return "the configured database"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def explain_connect_error(exc: BaseException, url: str) -> str:
    """The one line said when connecting to *url* failed with *exc*."""
    text = str(exc).strip()
    lowered = text.lower()
    where = _where(url)
    if "password authentication failed" in lowered or "no password supplied" in lowered or "authentication failed" in lowered:
        return (
            f"PostgreSQL at {where} refused the login (authentication failed); "
            "check the user, and the password ([database] password_env, PGPASSWORD or ~/.pgpass)"
        )
    if "does not exist" in lowered and "database" in lowered:
        name = where.rsplit("/", 1)[-1]
        return f"the database {name!r} does not exist on PostgreSQL at {where.rsplit('/', 1)[0]}; create it (createdb {name})"
    if "role" in lowered and "does not exist" in lowered:
        return f"PostgreSQL at {where} has no such user: {text.splitlines()[-1]}"
    if (
        "connection refused" in lowered
        or "could not connect" in lowered
        or "timeout" in lowered
        or "no such file" in lowered
        or "could not translate host" in lowered
    ):
        return f"cannot reach the PostgreSQL server at {where} (is it running, and is [database] url right?)"
    first = " ".join(text.split())[:200]
    return f"cannot connect to PostgreSQL at {where}: {first}"


def check_server_version(version: int, url: str) -> None:
    """Refuse a server older than :data:`MIN_SERVER_VERSION` (``server_version_num``)."""
    if version < MIN_SERVER_VERSION:
        major = version // 10000
        raise DatabaseError(
            f"PostgreSQL {major} at {_where(url)} is older than the oldest supported version, "
            f"{MIN_SERVER_VERSION // 10000}; upgrade the server"
        )


def _bool_as_integer(connection: Any) -> None:
    """Send Python booleans as integers: the schema keeps flags in INTEGER columns (as SQLite
    does), and PostgreSQL will not put a boolean there."""
    from psycopg.adapt import Dumper

    class BoolAsInteger(Dumper):
        oid = 20  # int8

        def dump(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

    connection.adapters.register_dumper(bool, BoolAsInteger)


def connect(url: str, password: str | None = None, *, autocommit: bool = False) -> Any:
    """A psycopg connection to *url*, checked (server version), or :class:`DatabaseError`."""
    psycopg = require_psycopg()
    kwargs: dict[str, Any] = {"autocommit": autocommit, "connect_timeout": CONNECT_TIMEOUT_S}
    if password:
        kwargs["password"] = password
    try:
        connection = psycopg.connect(libpq_url(url), **kwargs)
    except psycopg.Error as exc:
        raise DatabaseError(explain_connect_error(exc, url)) from exc
    try:
        check_server_version(connection.info.server_version, url)
    except DatabaseError:
        connection.close()
        raise
    _bool_as_integer(connection)
    return connection


class PgRaw:
    """``tx.raw`` on PostgreSQL: a psycopg connection taking the repositories' ``?`` SQL.

    ``execute`` returns the psycopg cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``,
    ``description``), as ``sqlite3.Connection.execute`` does. There is no ``lastrowid``: a store
    that needs a generated id asks for it with ``RETURNING``.
    """

    __slots__ = ("connection",)

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Any = None) -> Any:
        return self.connection.execute(to_pyformat(sql), () if params is None else params)

    def executemany(self, sql: str, seq_of_params: Any) -> Any:
        cursor = self.connection.cursor()
        cursor.executemany(to_pyformat(sql), seq_of_params)
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.connection.info.transaction_status != 0  # 0: IDLE


class PgWriterConnection:
    """One write connection of this process, with a SQLAlchemy ``Connection`` over it (as the
    SQLite writer). psycopg begins a transaction implicitly with its first statement."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db
        self.conn = connect(db.url, db.password)
        self.raw = PgRaw(self.conn)
        conn = self.conn
        self._engine = create_engine("postgresql+psycopg://", creator=lambda: conn, poolclass=StaticPool)
        self._sa = self._engine.connect()
        if self._sa.in_transaction():
            self._sa.rollback()
        self.pending: list[Change] = []  # changes of the open transaction, announced before COMMIT
        self.pending_key: tuple | None = None  # (owner, seq, method, result) recorded with the COMMIT
        self.savepoints = 0  # savepoints open in the write transaction
        self.writer_name = ""  # the writer of the open transaction (its NOTIFY names it)
        self.open = False  # a write transaction is open (begun, not yet ended)

    @property
    def broken(self) -> bool:
        return bool(self.conn.broken or self.conn.closed)

    def sqlalchemy(self) -> Connection:
        return self._sa

    def next_seq(self, table: str) -> int:
        return self.conn.execute(f"SELECT nextval('{SEQUENCE}')").fetchone()[0]

    def begin(self) -> None:
        # psycopg begins at the first statement: "open" is ours to track
        if self.open or self.raw.in_transaction or self._sa.in_transaction():
            raise RuntimeError("a write transaction is already open on this database (nested write)")
        self.open = True
        self.pending = []
        self.pending_key = None

    def finish(self, writer: str) -> None:
        """Announce the pending changes and record the pending key (one statement), then COMMIT."""
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
        if self.pending:
            select = "SELECT pg_notify('pando_changes', %s)"
            params.append(encode_changes(coalesce_changes(self.pending), writer))
        else:
            select = "SELECT 1"
        if parts or self.pending:
            self.conn.execute(("WITH " + ", ".join(parts) + " " if parts else "") + select, params)
        self.commit()

    def commit(self) -> None:
        self.pending, self.pending_key, self.open = [], None, False
        if self._sa.in_transaction():
            self._sa.commit()
        else:
            self.conn.commit()

    def rollback(self) -> None:
        self.pending, self.pending_key, self.open = [], None, False
        if self.broken:
            return
        if self._sa.in_transaction():
            self._sa.rollback()
        else:
            self.conn.rollback()

    def close(self) -> None:
        for closer in (self._sa.close, self._engine.dispose, self.conn.close):
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass


class PgWriteTx(WriteTx):
    """A :class:`WriteTx` whose changes also go to the writer's pending list (the NOTIFY)."""

    __slots__ = ()
    dialect = "postgresql"

    def part(self) -> PgWriteTx:
        return PgWriteTx(self._writer)

    def changed(self, table: str, op: str, *ids: str) -> None:
        change = Change(table, op, [str(i) for i in ids])
        self.changes.append(change)
        self._writer.pending.append(change)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        writer = self._writer
        pending = writer.pending
        mark = len(pending)
        writer.savepoints += 1
        try:
            with super().savepoint():
                try:
                    yield
                except BaseException:
                    del pending[mark:]  # what was undone is not announced
                    raise
        finally:
            writer.savepoints -= 1

    def execute_finishing(self, head: str, params: list[Any], select: str) -> Any:
        """See :meth:`.pg_batching.BatchingWriterConnection.execute_finishing` (None: run the
        statement as usual)."""
        finishing = getattr(self._writer, "execute_finishing", None)
        return finishing(head, params, select) if finishing is not None else None


class _PgTransaction:
    __slots__ = ("_connection", "_writer")

    def __init__(self, connection: PgWriterConnection, writer: str) -> None:
        self._connection = connection
        self._writer = writer

    def __enter__(self) -> PgWriteTx:
        self._connection.begin()
        self._connection.savepoints = 0
        self._connection.writer_name = self._writer
        return PgWriteTx(self._connection)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is not None:
            self._connection.rollback()
            return
        try:
            self._connection.finish(self._writer)
        except BaseException:
            self._connection.rollback()
            raise


@dataclass
class PgReadTx:
    conn: Connection

    @property
    def raw(self) -> PgRaw:
        return PgRaw(self.conn.connection.driver_connection)


class PostgresDatabase(CommitListeners):
    """A PostgreSQL database shared by every instance of a team, opened read-write."""

    dialect = "postgresql"
    shared = True  # other processes write it too: no primary for writes
    readonly = False
    path = None
    storage_dir = None

    def __init__(self, url: str, *, password: str | None = None, pool_size: int = 4, writer_id: str = "") -> None:
        self.url = url
        self.password = password or None
        self.writer_id = writer_id
        self._key_owner = f"{writer_id or 'pando'}:{uuid.uuid4().hex[:8]}"  # applied_writes keys of this object
        self._key_seq = 0
        self._write_lock = threading.RLock()
        self._writer: PgWriterConnection | None = None
        self._commit_listeners: list[Callable[[list[Change], str], None]] = []
        with self._write_lock:
            self._writer = _writer_connection(self)  # fails here, in one line, when the server cannot be used
        connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
        if self.password:
            connect_args["password"] = self.password
        self.engine = create_engine(
            sqlalchemy_url(url),
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=8,
            pool_pre_ping=True,
            connect_args=connect_args,
        )

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:  # pragma: no cover - driver callback
            _bool_as_integer(dbapi_connection)

    # -- schema -----------------------------------------------------------------------------------

    def adapt_ddl(self, statement: str) -> str:
        return postgres_ddl(statement)

    def has_table(self, name: str) -> bool:
        with self.read() as tx:
            return tx.conn.exec_driver_sql("SELECT to_regclass(%(n)s) IS NOT NULL", {"n": name}).scalar()

    def ensure_schema_objects(self) -> None:
        """What the engine itself needs besides the migrations: the ``seq`` sequence."""
        with self.write() as tx:
            tx.conn.exec_driver_sql(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")

    @contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Hold the migrations' advisory lock (a session lock on a connection of its own)."""
        connection = connect(self.url, self.password, autocommit=True)
        try:
            connection.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
            yield
        finally:
            try:
                connection.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            except Exception:  # noqa: BLE001 - closing the connection releases it too
                pass
            connection.close()

    # -- transactions -----------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[PgReadTx]:
        with self.engine.connect() as conn, conn.begin():
            yield PgReadTx(conn)

    @contextmanager
    def write(self, writer: str = "") -> Iterator[PgWriteTx]:
        writer = writer or self.writer_id
        with self._write_lock, self.transaction(writer) as tx:
            yield tx
        if tx.changes:
            self.notify(tx.changes, writer)

    def transaction(self, writer: str = "") -> _PgTransaction:
        return _PgTransaction(self.writer(), writer or self.writer_id)

    def run_write(self, apply: Callable[[PgWriteTx], Any], writer: str, method: str) -> Any:
        """``apply(tx)`` in one transaction with its idempotency key (``applied_writes``, written
        with the COMMIT): when the connection drops, the write is retried once on a new
        connection -- unless the key shows that its COMMIT went through, and then what it
        returned stands. Never applied twice. (A pipeline's batch is one such write.)"""
        writer = writer or self.writer_id
        with self._write_lock:
            self._key_seq += 1
            seq = self._key_seq
            for attempt in (1, 2):
                tx = None
                applied = False
                try:
                    with self.transaction(writer) as tx:
                        # the key is pending from the start: a statement of the write may carry it
                        self._writer.pending_key = (self._key_owner, seq, method, None)
                        result = apply(tx)
                        applied = True
                    break
                except Exception as exc:
                    if not self._lost_connection():
                        raise
                    log.warning("%s: the connection to PostgreSQL dropped during the write (%s)", method, exc)
                    self._drop_writer()
                    if applied and self._recorded(seq, method):
                        break  # the COMMIT went through before the connection dropped
                    if attempt == 2:
                        raise UnavailableError(
                            f"{method}: not written: the connection to PostgreSQL dropped twice"
                        ) from exc
        changes = tx.changes if tx is not None else []
        if changes:
            self.notify(changes, writer)
        return result

    def _lost_connection(self) -> bool:
        return self._writer is None or self._writer.broken

    def _drop_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _recorded(self, seq: int, method: str) -> bool:
        """Whether this object's key *seq* was committed (asked on a new connection, waiting up
        to :data:`RECONNECT_WINDOW_S` for the server to come back)."""
        deadline = time.monotonic() + RECONNECT_WINDOW_S
        while True:
            try:
                writer = self.writer()
                row = writer.conn.execute(
                    "SELECT 1 FROM applied_writes WHERE instance_id = %s AND seq = %s", (self._key_owner, seq)
                ).fetchone()
                if writer.conn.info.transaction_status != 0:  # 0: IDLE (the batching writer autocommits)
                    writer.conn.rollback()
                return row is not None
            except Exception as exc:  # noqa: BLE001 - the server may be restarting
                self._drop_writer()
                if time.monotonic() >= deadline:
                    raise UnavailableError(f"{method}: not written: PostgreSQL cannot be reached ({exc})") from exc
                time.sleep(0.1)

    def prepare_write(self) -> None:
        """Nothing to prepare on PostgreSQL (kept for the SQLite interface)."""

    def release_prepared(self) -> None:
        """Nothing prepared on PostgreSQL."""

    def writer(self) -> PgWriterConnection:
        if self._writer is not None and self._writer.broken:
            self._drop_writer()  # the server went away since (a batch's failure said so): connect again
        if self._writer is None:
            self._writer = _writer_connection(self)
        return self._writer

    @property
    def write_lock(self) -> threading.RLock:
        return self._write_lock

    def dispose(self) -> None:
        with self._write_lock:
            self._drop_writer()
        self.engine.dispose()



def _writer_connection(db: PostgresDatabase) -> PgWriterConnection:
    """The write connection: the batching one (few round trips per write, see pg_batching)."""
    from .pg_batching import BatchingWriterConnection

    return BatchingWriterConnection(db)
