"""The batching PostgreSQL writer (pando_core/db/pg_batching.py) keeps every write's semantics:
errors of queued statements fail their write, a failed write of a batch is undone alone, row
counts and SQLAlchemy statements work, NOTIFY goes out only at commit, a dropped connection is
retried without applying twice. Against a real server."""

from __future__ import annotations

import uuid

import pytest

from pando_core.db import LocalExecutor, MethodRegistry, Store, core_component, migrate
from pando_core.db.pg_batching import BatchingWriterConnection
from pando_core.db.pg_changes import ChangeListener, libpq_conninfo
from pando_core.db.settings import DatabaseSettings, open_database
from pando_core.errors import ConstraintError, NotFoundError
from tests.support.waiting import hold_for, wait_for

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def pg(postgres_url, tmp_path):
    instance = uuid.uuid4().hex[:12]
    db = open_database(tmp_path, DatabaseSettings(postgres_url), writer_id=instance)
    component = core_component()
    migrate(db, [component])
    store = Store(MethodRegistry(component.repositories), LocalExecutor(db, instance))
    yield db, store
    db.dispose()


def _count(url: str, sql: str, params=()) -> int:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_the_writer_is_the_batching_one(pg):
    db, _ = pg
    assert isinstance(db.writer(), BatchingWriterConnection)


def test_seq_values_come_from_the_server_sequence(pg):
    db, store = pg
    values = [store.sessions.create(title=f"s{i}")["seq"] for i in range(20)]
    assert values == sorted(set(values))
    with db.read() as tx:
        assert tx.raw.execute("SELECT last_value FROM pando_seq").fetchone()[0] == values[-1]


def test_writes_and_their_errors(pg, postgres_url):
    db, store = pg
    session = store.sessions.create(title="s")
    first = store.messages.create(session_id=session["id"], role="user", parts=[{"type": "text", "text": "a"}])
    second = store.messages.create(session_id=session["id"], role="assistant", parts=[])
    assert first["seq"] < second["seq"]
    assert [m["id"] for m in store.messages.list(session_id=session["id"])] == [first["id"], second["id"]]
    assert store.sessions.get(id=session["id"])["message_count"] == 2
    with pytest.raises(NotFoundError):
        store.messages.create(session_id="nope", role="user", parts=[])
    with pytest.raises(ConstraintError):  # the duplicate INSERT is queued: its error comes at COMMIT
        store.sessions.create(id=session["id"], title="again")
    with pytest.raises(NotFoundError):  # a row count read through SQLAlchemy
        store.sessions.delete(id="nope")
    store.sessions.delete(id=session["id"])
    assert _count(postgres_url, "SELECT count(*) FROM sessions") == 0
    assert _count(postgres_url, "SELECT count(*) FROM messages") == 0
    after = store.sessions.create(title="after the errors")  # the connection is usable again
    assert store.sessions.get(id=after["id"])["title"] == "after the errors"


def test_a_failed_write_of_a_batch_is_undone_alone(pg, postgres_url):
    db, store = pg
    taken = store.sessions.create(title="taken")
    pipe = store.pipeline(batch_size=8)
    ok_before = pipe.sessions.create(id="b1", title="b1")
    duplicate = pipe.sessions.create(id=taken["id"], title="dup")
    ok_after = pipe.sessions.create(id="b2", title="b2")
    pipe.flush()
    assert ok_before.result()["id"] == "b1" and ok_after.result()["id"] == "b2"
    assert isinstance(duplicate.exception(), ConstraintError)
    assert _count(postgres_url, "SELECT count(*) FROM sessions WHERE id IN ('b1', 'b2')") == 2


def test_notify_only_at_commit_and_only_if_it_commits(pg, postgres_url):
    db, store = pg
    heard = []
    listener = ChangeListener(postgres_url, lambda changes, writer: heard.append(changes), lambda: None).start()
    try:
        with pytest.raises(ConstraintError):
            store.sessions.create(id="dup", title="x") and store.sessions.create(id="dup", title="x")
        wait_for(lambda: len(heard) == 1, 3, "the committed write's notification")
        hold_for(lambda: len(heard) == 1, 0.3, "nothing for the failed write")
        assert heard[0][0].ids == ["dup"]
    finally:
        listener.close()


def test_a_dropped_connection_is_retried_once_and_applied_once(pg, postgres_url):
    db, store = pg
    session = store.sessions.create(title="s")
    pid = db.writer().conn.info.backend_pid
    with psycopg.connect(libpq_conninfo(postgres_url), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    message = store.messages.create(session_id=session["id"], role="user", parts=[])
    assert _count(postgres_url, "SELECT count(*) FROM messages WHERE id = %s", (message["id"],)) == 1
    assert store.sessions.get(id=session["id"])["message_count"] == 1


def test_a_message_write_carries_its_key_and_notify_and_a_batch_of_them_keeps_each_outcome(pg, postgres_url):
    # messages.create sends the write key and the NOTIFY in its own statement (execute_finishing);
    # in a batch (savepoints) they go at COMMIT instead
    db, store = pg
    session = store.sessions.create(title="s")
    heard = []
    listener = ChangeListener(postgres_url, lambda changes, writer: heard.append(changes), lambda: None).start()
    try:
        message = store.messages.create(session_id=session["id"], role="user", parts=[])
        assert db._recorded(db._key_seq, "messages.create")  # the key committed with the message
        wait_for(lambda: len(heard) == 1, 3, "the message's notification")
        hold_for(lambda: len(heard) == 1, 0.3, "one notification for the write")
        assert {(c.table, c.op, tuple(c.ids)) for c in heard[0]} == {
            ("messages", "insert", (message["id"],)),
            ("sessions", "update", (session["id"],)),
        }
        pipe = store.pipeline(batch_size=8)
        first = pipe.messages.create(session_id=session["id"], role="user", parts=[], id="p1")
        orphan = pipe.messages.create(session_id="missing", role="user", parts=[], id="p2")
        last = pipe.messages.create(session_id=session["id"], role="user", parts=[], id="p3")
        pipe.flush()
        assert first.result()["seq"] < last.result()["seq"]
        assert isinstance(orphan.exception(), NotFoundError)
        assert db._recorded(db._key_seq, "batch")
        assert _count(postgres_url, "SELECT count(*) FROM messages WHERE id IN ('p1', 'p2', 'p3')") == 2
        assert store.sessions.get(id=session["id"])["message_count"] == 3
        wait_for(lambda: len(heard) == 2, 3, "the batch's notification")
        assert {i for c in heard[1] if c.table == "messages" for i in c.ids} == {"p1", "p3"}
    finally:
        listener.close()
