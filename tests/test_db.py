"""SQLite engines, declared repositories, per-component migrations with rollback."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from pando_core.db import (
    Component,
    Database,
    Migration,
    MigrationError,
    Repository,
    core_component,
    migrate,
    open_local_store,
    read,
    write,
)
from pando_core.db.schema import metadata
from pando_core.errors import ConstraintError, NotFoundError, ValidationError
from pando_core.testing.pytest_plugin import database_backend
from tests.support.sqlite_lock import another_writer_gets_in

ON_POSTGRES = database_backend() == "postgres"
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="the SQLite engine's own behaviour (PANDO_TEST_DATABASE=postgres)")


class NoteRepository(Repository):
    name = "notes"

    @write
    def add(self, tx, *, text_value: str) -> dict:
        tx.conn.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": text_value})
        tx.changed("notes", "insert", text_value)
        return {"body": text_value}

    @read
    def all(self, tx) -> list:
        return [row[0] for row in tx.conn.execute(text("SELECT body FROM notes ORDER BY id"))]


NOTES = Component(
    "notes",
    [Migration(1, "create", ["CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT UNIQUE NOT NULL)"])],
    [NoteRepository],
)


@pytest.fixture
def db(pando_database):
    """SQLite by default; PostgreSQL with PANDO_TEST_DATABASE=postgres."""
    return pando_database


def _columns(db, table: str) -> set[str]:
    with db.read() as tx:
        if db.dialect == "sqlite":
            return {r[1] for r in tx.conn.exec_driver_sql(f"PRAGMA table_info({table})")}
        return {
            r[0]
            for r in tx.raw.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?", (table,))
        }


@sqlite_only
def test_pragmas_on_every_connection(db):
    with db.read() as tx:
        assert tx.conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert tx.conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert tx.conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_migrations_of_two_components_apply_in_order_and_are_idempotent(db):
    applied = migrate(db, [core_component(), NOTES])
    assert applied[0] == ("core", 1, "initial")
    assert applied[-1] == ("notes", 1, "create")
    assert migrate(db, [core_component(), NOTES]) == []
    with db.read() as tx:
        rows = tx.conn.exec_driver_sql("SELECT component, version FROM schema_migrations ORDER BY applied_at, component").all()
    core_versions = [m.version for m in core_component().migrations]
    assert [tuple(r) for r in rows] == [("core", v) for v in core_versions] + [("notes", 1)]


def test_a_failing_migration_rolls_back_and_names_the_step(db):
    migrate(db, [core_component()])
    broken = Component(
        "broken",
        [
            Migration(1, "ok", ["CREATE TABLE b1 (x INTEGER)"]),
            Migration(2, "half", ["CREATE TABLE b2 (x INTEGER)", "INSERT INTO b2 VALUES (1)", "THIS IS NOT SQL"]),
        ],
    )
    with pytest.raises(MigrationError) as info:
        migrate(db, [broken])
    assert "migration broken 2 (half) failed at step 3" in str(info.value)
    with db.read() as tx:
        versions = tx.conn.exec_driver_sql("SELECT version FROM schema_migrations WHERE component='broken'").all()
    assert db.has_table("b1") and not db.has_table("b2")  # step 1 committed, step 2 rolled back whole
    assert [v[0] for v in versions] == [1]


def test_applied_writes_keep_their_rows_when_rebuilt_without_rowid(db):
    core = core_component()
    migrate(db, [Component("core", [m for m in core.migrations if m.version <= 3])])
    with db.write() as tx:
        tx.raw.execute("INSERT INTO applied_writes VALUES ('i', 7, 'sessions.create', 1, '{}', 1)")
    assert migrate(db, [core])[0] == ("core", 4, "applied_writes_without_rowid")
    with db.read() as tx:
        assert tx.raw.execute("SELECT instance_id, seq, method, ok, result FROM applied_writes").fetchall() == [
            ("i", 7, "sessions.create", 1, "{}")
        ]
    if db.dialect == "sqlite":
        with db.read() as tx:
            ddl = tx.raw.execute("SELECT sql FROM sqlite_master WHERE name = 'applied_writes'").fetchone()[0]
        assert ddl.rstrip().endswith("WITHOUT ROWID")


def test_schema_matches_the_table_definitions(db):
    migrate(db, [core_component()])
    for table in metadata.tables.values():
        assert _columns(db, table.name) == {c.name for c in table.columns}, table.name


def test_repositories_declare_reads_and_writes(db):
    migrate(db, [core_component(), NOTES])
    store = open_local_store(db, [core_component(), NOTES])
    assert store.notes.methods["add"].kind == "write"
    assert store.notes.methods["all"].kind == "read"
    seen = []
    db.on_commit(lambda changes, writer: seen.extend(changes))
    store.notes.add(text_value="one")
    assert store.notes.all() == ["one"]
    assert seen[0].as_dict() == {"table": "notes", "op": "insert", "ids": ["one"]}
    with pytest.raises(ConstraintError):
        store.notes.add(text_value="one")
    with pytest.raises(ValidationError):
        store.notes.add(bogus=1)


def test_core_repositories(db):
    migrate(db, [core_component()])
    store = open_local_store(db, [core_component()])
    session = store.sessions.create(title="t")
    for i in range(5):
        store.messages.create(session_id=session["id"], role="user", parts=[{"type": "text", "data": {"text": str(i)}}])
    listed = store.messages.list(session_id=session["id"])
    assert [m["parts"][0]["data"]["text"] for m in listed] == ["0", "1", "2", "3", "4"]
    assert store.sessions.get(id=session["id"])["message_count"] == 5
    usage = store.sessions.add_usage(id=session["id"], prompt_tokens=10, completion_tokens=5, cost=0.5)
    usage = store.sessions.add_usage(id=session["id"], prompt_tokens=20, completion_tokens=1, cost=0.25)
    assert (usage["prompt_tokens"], usage["total_prompt_tokens"], usage["cost"]) == (20, 30, 0.75)
    first = store.files.record_change(session_id=session["id"], path="a.py", before="old", after="new")
    second = store.files.record_change(session_id=session["id"], path="a.py", before="new", after="newer")
    assert (first["version"], second["version"]) == ("v1", "v2")
    versions = store.files.versions(session_id=session["id"], path="a.py")
    assert [v["version"] for v in versions] == ["initial", "v1", "v2"]
    assert versions[0]["content"] == "old"
    with pytest.raises(NotFoundError):
        store.sessions.get(id="missing")
    store.sessions.delete(id=session["id"])
    assert store.messages.list(session_id=session["id"]) == []  # cascade


def test_a_message_is_returned_as_stored_and_refused_without_its_session(db):
    # PostgreSQL writes a message in one statement of its own (repositories._PG_CREATE_MESSAGE)
    migrate(db, [core_component()])
    store = open_local_store(db, [core_component()])
    session = store.sessions.create(title="t")
    finish = {"type": "finish", "data": {"time": 1234}}
    created = [
        store.messages.create(session_id=session["id"], role="user", parts=[{"type": "text", "text": "a"}]),
        store.messages.create(session_id=session["id"], role="assistant", parts=[finish], model="m1", id="given"),
    ]
    assert created[1]["id"] == "given" and created[1]["finished_at"] == 1234 and created[1]["model"] == "m1"
    assert created[0]["finished_at"] is None and created[0]["seq"] < created[1]["seq"]
    assert [store.messages.get(id=m["id"]) for m in created] == created
    count = store.sessions.get(id=session["id"])["message_count"]
    assert count == 2
    with pytest.raises(NotFoundError):
        store.messages.create(session_id="missing", role="user", parts=[], id="orphan")
    with pytest.raises(NotFoundError):
        store.messages.get(id="orphan")
    assert store.sessions.get(id=session["id"])["message_count"] == 2


def test_sqlalchemy_and_plain_sql_share_the_write_transaction(db):
    migrate(db, [core_component(), NOTES])
    store = open_local_store(db, [core_component(), NOTES])
    with pytest.raises(LookupError), db.write() as tx:
        tx.conn.execute(text("INSERT INTO notes (body) VALUES ('via sqlalchemy')"))
        tx.raw.execute("INSERT INTO notes (body) VALUES ('via dbapi')")
        raise LookupError("the write fails after both statements")
    assert store.notes.all() == []  # both statements rolled back together
    with db.write() as tx:
        tx.raw.execute("INSERT INTO notes (body) VALUES ('plain')")
    store.notes.add(text_value="sqlalchemy")
    with db.write() as tx:
        tx.conn.execute(text("INSERT INTO notes (body) VALUES ('both 1')"))
        tx.raw.execute("INSERT INTO notes (body) VALUES ('both 2')")
    assert store.notes.all() == ["plain", "sqlalchemy", "both 1", "both 2"]
    with db.write(), pytest.raises(RuntimeError, match="nested"), db.write():
        pass
    with pytest.raises(ConstraintError):  # a constraint from either path keeps its kind
        store.notes.add(text_value="plain")
    assert store.notes.all() == ["plain", "sqlalchemy", "both 1", "both 2"]


@sqlite_only
def test_a_prepared_write_transaction_serves_the_next_write_or_is_given_back(db):
    """Database.prepare_write begins the next write transaction ahead of time: it holds SQLite's
    write lock while idle (readers never wait), and the next write commits in it."""
    migrate(db, [core_component(), NOTES])
    store = open_local_store(db, [core_component(), NOTES])
    other = sqlite3.connect(str(db.path), isolation_level=None)  # a reader of our own

    def prepare() -> None:
        with db.write_lock:
            db.prepare_write()
        assert db.writer().prepared

    try:
        prepare()
        assert not another_writer_gets_in(db.path)
        assert other.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
        store.sessions.create(id="a", title="in the prepared transaction")
        assert not db.writer().prepared and another_writer_gets_in(db.path)
        assert other.execute("SELECT title FROM sessions").fetchall() == [("in the prepared transaction",)]
        prepare()
        store.notes.add(text_value="through SQLAlchemy")  # a write on tx.conn commits in it too
        assert not db.writer().prepared and another_writer_gets_in(db.path)
        assert other.execute("SELECT body FROM notes").fetchall() == [("through SQLAlchemy",)]
        prepare()
        with pytest.raises(ConstraintError):  # a failing write ends it as it ends any other
            store.sessions.create(id="a", title="again")
        assert not db.writer().prepared and another_writer_gets_in(db.path)
        prepare()
        db.release_prepared()
        assert not db.writer().prepared and another_writer_gets_in(db.path)
        prepare()
        db.writer().raw.execute("ROLLBACK")  # ended behind its back (plain SQL on tx.raw can)
        db.release_prepared()  # nothing left to give back: no error
        assert not db.writer().prepared
        prepare()
        with db.write(), pytest.raises(RuntimeError, match="nested"), db.write():
            pass  # a transaction in use is still not entered twice
        assert [s["id"] for s in store.sessions.list(include_empty=True)] == ["a"]
        prepare()
        db.dispose()  # gives it back with the connection
        assert another_writer_gets_in(db.path)
    finally:
        other.close()


@sqlite_only
def test_read_only_database_refuses_writes(db):
    migrate(db, [core_component()])
    ro = Database(db.path, readonly=True)
    store = open_local_store(ro, [core_component()])
    assert store.sessions.list() == []
    with pytest.raises(RuntimeError, match="read-only"):
        store.sessions.create(title="x")
    # and its connection is read-only at the SQLite level too, not only by pando's check
    with ro.read() as tx, pytest.raises(sqlite3.OperationalError, match="readonly"):
        tx.raw.execute("INSERT INTO sessions (id, title, created_at, updated_at, seq) VALUES ('x','x',1,1,1)")
    ro.dispose()


class _BindRepository(Repository):
    name = "bind_check"

    @write
    def mixed(self, tx, first, second=2, *, title: str, note: str | None = None, **extra) -> dict: ...

    @write
    def keywords(self, tx, *, title: str, note: str | None = None) -> dict: ...


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("keywords", (), {"title": "t"}),
        ("keywords", (), {"title": "t", "note": None}),
        ("keywords", (), {}),  # missing a required parameter
        ("keywords", (), {"title": "t", "colour": "red"}),  # unknown parameter
        ("keywords", ("t",), {}),  # keyword-only given by position
        ("mixed", (1,), {"title": "t"}),
        ("mixed", (), {"first": 1, "title": "t", "second": 3}),
        ("mixed", (), {"first": 1, "title": "t", "colour": "red"}),  # goes to **extra
        ("mixed", (), {"title": "t"}),
    ],
)
def test_method_arguments_bind_as_the_signature_says(method, args, kwargs):
    spec = _BindRepository.methods[method]

    def by_signature():
        bound = spec.signature.bind(None, None, *args, **kwargs).arguments
        params = {k: v for k, v in list(bound.items())[2:]}
        params.update(params.pop("extra", {}))
        return params

    try:
        expected = by_signature()
    except TypeError:
        with pytest.raises(ValidationError, match="bind_check"):
            spec.bind(args, kwargs)
    else:
        assert spec.bind(args, kwargs) == expected


def test_pipeline_sends_writes_in_batches_and_keeps_each_outcome(db):
    migrate(db, [core_component(), NOTES])
    store = open_local_store(db, [core_component(), NOTES], "me")
    batches: list[int] = []
    run_writes = store.executor.run_writes
    store.executor.run_writes = lambda calls: (batches.append(len(calls)), run_writes(calls))[1]
    commits: list[list[tuple]] = []
    db.on_commit(lambda changes, writer: commits.append([(c.table, c.op, c.ids, writer) for c in changes]))

    with pytest.raises(ConstraintError), store.pipeline(batch_size=3) as pipe:  # raised on leaving
        pending = [pipe.notes.add(text_value=f"n{i}") for i in range(4)]
        assert [p.done() for p in pending] == [True, True, True, False]  # the first three went together
        late = pipe.notes.add(text_value="n0")  # already there: fails on its own
    assert batches == [3, 2]
    # each batch is one transaction (one COMMIT, its changes announced together); the failed
    # write was undone alone
    assert commits == [[("notes", "insert", ["n0", "n1", "n2"], "me")], [("notes", "insert", ["n3"], "me")]]
    assert [p.result() for p in pending] == [{"body": f"n{i}"} for i in range(4)]
    assert isinstance(late.exception(), ConstraintError)
    with pytest.raises(ConstraintError):
        late.result()
    assert store.notes.all() == ["n0", "n1", "n2", "n3"]

    # asking for a result sends what is queued; leaving the block raises the first failure
    pipe = store.pipeline()
    first = pipe.notes.add(text_value="n4")
    assert not first.done() and first.result() == {"body": "n4"}
    with pytest.raises(ConstraintError), store.pipeline() as pipe:
        pipe.notes.add(text_value="n1")
        pipe.notes.add(text_value="n5")
    assert store.notes.all()[-2:] == ["n4", "n5"]
    # an error inside the block is what the caller sees; the writes issued before it still go
    with pytest.raises(KeyError), store.pipeline() as pipe:
        pipe.notes.add(text_value="n6")
        raise KeyError("caller's own error")
    assert store.notes.all()[-1] == "n6"
    # reads are not pipelined, unknown names are clear, the batch size is bounded
    with pytest.raises(TypeError, match="reads are not pipelined"):
        store.pipeline().notes.all()
    with pytest.raises(AttributeError):
        store.pipeline().nothing.add()
    with pytest.raises(ValueError):
        store.pipeline(batch_size=0)


@sqlite_only
def test_seq_is_counted_by_the_writer_and_continues_after_a_new_one(db):
    migrate(db, [core_component()])
    store = open_local_store(db, [core_component()], "me")
    first = [store.sessions.create(title=f"s{i}")["seq"] for i in range(3)]
    assert first == [1, 2, 3]
    db.dispose()  # the next primary opens a writer of its own: it reads max(seq) once, then counts
    store = open_local_store(db, [core_component()], "me")
    with pytest.raises(ConstraintError), db.write() as tx:  # a rolled-back insert leaves a gap, no reuse
        seq = tx.next_seq("sessions")
        tx.raw.execute("INSERT INTO sessions (id, title, message_count, prompt_tokens, completion_tokens,"
                       " total_prompt_tokens, total_completion_tokens, cost, created_at, updated_at, seq)"
                       " VALUES ('x', 't', 0, 0, 0, 0, 0, 0, 0, 0, ?)", (seq,))
        raise ConstraintError("undo it")
    assert seq == 4
    assert [store.sessions.create(title=f"t{i}")["seq"] for i in range(2)] == [5, 6]
    with db.read() as tx:
        indexes = {r[0] for r in tx.conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE tbl_name = 'sessions' AND type = 'index'")}
    assert "idx_sessions_seq" not in indexes and "idx_sessions_order" not in indexes
