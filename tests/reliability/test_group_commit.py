"""Group commit on a real SQLite file: one transaction per batch; when a write of it fails, the
batch is applied again with one savepoint per write, so that only the failing one is undone."""

from __future__ import annotations

import concurrent.futures
import sys
import threading

import pytest
from reliability_kit import db_rows

from pando_core.db import Database, MethodRegistry, Repository, core_component, database_path, migrate, write
from pando_core.db.engine import WriteTx
from pando_core.errors import ConstraintError, NotFoundError, ValidationError
from pando_core.runtime.protocol import RpcError
from pando_core.runtime.write_coordinator import WriteCoordinator
from tests.support.sqlite_lock import another_writer_gets_in
from tests.support.waiting import wait_for

pytestmark = pytest.mark.reliability


@pytest.fixture
def db(tmp_path):
    database = Database(database_path(tmp_path))
    migrate(database, [core_component()])
    yield database
    database.dispose()


@pytest.fixture
def make_coordinator(db):
    """``make_coordinator(*extra_repositories, **options)``: a WriteCoordinator on ``db`` (closed at teardown)."""
    made: list[WriteCoordinator] = []

    def make(*extra_repositories, **options) -> WriteCoordinator:
        registry = MethodRegistry([*core_component().repositories, *extra_repositories])
        made.append(WriteCoordinator(db, registry, "primary", **options))
        return made[-1]

    yield make
    for coord in made:
        coord.close()


def _coordinator_frame(coord) -> str | None:
    frame = sys._current_frames().get(coord._thread.ident)
    return frame.f_code.co_name if frame is not None else None


def test_a_failing_write_does_not_sink_its_batch(db, make_coordinator, tmp_path):
    coord = make_coordinator()
    published = []
    db.on_commit(lambda changes, writer: published.append((writer, [c.as_dict() for c in changes])))
    coord.submit("sessions.create", {"id": "s0", "title": "t"}, ("a", 1)).result(10)
    # hold the writer: a first write parks the coordinator thread inside _apply, and the next
    # submissions queue up behind it and are applied together as one batch
    with db.write_lock:
        batches_before = coord.stats["batches"]
        blocker = coord.submit("sessions.create", {"id": "blocker", "title": "t"}, ("z", 1))
        wait_for(lambda: _coordinator_frame(coord) == "_apply", 5, "the coordinator to wait for the lock")
        futures = [
            coord.submit("sessions.create", {"id": "s1", "title": "t"}, ("a", 2)),
            coord.submit("sessions.create", {"id": "s0", "title": "dup"}, ("a", 3)),  # constraint
            coord.submit(
                "messages.create", {"session_id": "nope", "role": "user", "parts": []}, ("b", 1)
            ),  # not found
            coord.submit("sessions.create", {"id": "s2", "title": "t"}, ("a", 4)),
            coord.submit(
                "sessions.create", {"id": "s1", "title": "again"}, ("a", 2)
            ),  # same key: same answer
        ]
    concurrent.futures.wait([blocker, *futures], timeout=10)
    assert coord.stats["batches"] == batches_before + 2  # the blocker, then all five in one transaction
    assert futures[0].result()["id"] == "s1"
    with pytest.raises(ConstraintError):
        futures[1].result()
    with pytest.raises(NotFoundError):
        futures[2].result()
    assert futures[3].result()["id"] == "s2"
    assert futures[4].result() == futures[0].result()
    assert db_rows(tmp_path, "SELECT id, title FROM sessions WHERE id != 'blocker' ORDER BY id") == [
        ("s0", "t"),
        ("s1", "t"),
        ("s2", "t"),
    ]
    assert db_rows(
        tmp_path, "SELECT instance_id, seq, ok FROM applied_writes WHERE instance_id != 'z' ORDER BY 1, 2"
    ) == [
        ("a", 1, 1),
        ("a", 2, 1),
        ("a", 3, 0),
        ("a", 4, 1),
        ("b", 1, 0),
    ]
    # a retried failure returns the recorded error, and nothing is applied
    with pytest.raises(ConstraintError):
        coord.submit("sessions.create", {"id": "s0", "title": "dup"}, ("a", 3)).result(10)
    # change events only for what was committed, once each, after COMMIT; a batch's inserts by
    # one writer are announced together
    inserts = [c["ids"] for _, changes in published for c in changes if c["op"] == "insert"]
    assert inserts == [["s0"], ["blocker"], ["s1", "s2"]]
    assert coord.stats["duplicates"] == 2
    assert coord.stats["replays"] == 1  # the batch of five, applied again isolated after its first failure


def test_unexpected_errors_are_not_recorded(db, make_coordinator, tmp_path):
    coord = make_coordinator()
    with db.write_lock:
        blocker = coord.submit("sessions.create", {"id": "blocker", "title": "t"}, ("z", 1))
        wait_for(lambda: _coordinator_frame(coord) == "_apply", 5, "the coordinator to wait for the lock")
        bad = coord.submit("sessions.create", {"id": "s1", "title": {"not": "bindable"}}, ("a", 1))
        good = coord.submit("sessions.create", {"id": "s2", "title": "fine"}, ("a", 2))
    with pytest.raises(RpcError) as info:
        bad.result(10)
    assert info.value.kind == "app_error"
    assert good.result(10)["id"] == "s2" and blocker.result(10)["id"] == "blocker"
    # not a property of the request: not recorded, so a retry with the same key runs again
    assert db_rows(tmp_path, "SELECT instance_id, seq FROM applied_writes ORDER BY 1") == [("a", 2), ("z", 1)]
    assert db_rows(tmp_path, "SELECT id FROM sessions ORDER BY id") == [("blocker",), ("s2",)]
    coord.close()
    late = coord.submit("sessions.create", {"id": "s3", "title": "late"}, ("a", 3))
    with pytest.raises(RpcError, match="shutting down") as info:
        late.result(1)
    assert info.value.retryable


def test_old_write_keys_are_pruned_on_schedule(db, make_coordinator, tmp_path):
    with db.write() as tx:  # a key recorded two hours ago, by an earlier primary
        tx.raw.execute(
            "INSERT INTO applied_writes VALUES ('old', 1, 'sessions.create', 1, 'null', ?)",
            (tx.now_ms() - 7_200_000,),
        )
    coord = make_coordinator(prune_interval=0.05)
    coord.submit("sessions.create", {"id": "fresh", "title": "t"}, ("new", 1)).result(10)
    wait_for(lambda: coord.stats["pruned"] == 1, 5, "the scheduled prune")
    assert db_rows(tmp_path, "SELECT instance_id, seq FROM applied_writes") == [("new", 1)]
    # a key inside the retention window still answers a retry with its stored outcome
    again = coord.submit("sessions.create", {"id": "other", "title": "t"}, ("new", 1)).result(10)
    assert again["id"] == "fresh" and coord.stats["duplicates"] == 1
    assert coord.prune(older_than_ms=WriteTx.now_ms() + 1) == 1  # explicit cut-off: everything
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM applied_writes") == [(0,)]


class _HalfWrite(Repository):
    """A write that changes a row, then fails: nothing of it may stay."""

    name = "half"

    @write
    def rename_then_fail(self, tx, *, id: str, kind: str) -> None:
        tx.raw.execute("UPDATE sessions SET title = 'half-done' WHERE id = ?", (id,))
        if kind == "validation":
            raise ValidationError("refused after a change")
        raise RuntimeError("crashed after a change")


@pytest.mark.parametrize("kind, recorded", [("validation", True), ("crash", False)])
def test_a_lone_failing_write_leaves_nothing_behind(make_coordinator, tmp_path, kind, recorded):
    coord = make_coordinator(_HalfWrite)
    coord.submit("sessions.create", {"id": "s", "title": "kept"}, ("a", 1)).result(10)
    with pytest.raises(Exception) as info:  # noqa: PT011 - either kind, checked below
        coord.submit("half.rename_then_fail", {"id": "s", "kind": kind}, ("a", 2)).result(10)
    assert isinstance(info.value, ValidationError if recorded else RpcError)
    assert db_rows(tmp_path, "SELECT title FROM sessions") == [("kept",)]
    keys = db_rows(tmp_path, "SELECT seq, ok FROM applied_writes WHERE instance_id = 'a' ORDER BY seq")
    assert keys == ([(1, 1), (2, 0)] if recorded else [(1, 1)])
    # the transaction was begun again cleanly: the next lone write commits
    assert coord.submit("sessions.create", {"id": "t", "title": "next"}, ("a", 3)).result(10)["id"] == "t"
    assert db_rows(tmp_path, "SELECT id FROM sessions ORDER BY id") == [("s",), ("t",)]


class _FailsAtCommit(Repository):
    """A write whose every statement succeeds but whose COMMIT fails (a deferred foreign key)."""

    name = "late"

    @write
    def orphan_message(self, tx, *, id: str) -> dict:
        tx.raw.execute("PRAGMA defer_foreign_keys = ON")  # (reset when the transaction ends)
        tx.raw.execute(
            "INSERT INTO messages (id, session_id, role, parts, created_at, updated_at, seq)"
            " VALUES (?, 'no-such-session', 'user', '[]', 0, 0, 0)",
            (id,),
        )
        return {"id": id}


def test_a_lone_write_whose_commit_fails_is_answered_unavailable_and_leaves_nothing(make_coordinator, tmp_path):
    coord = make_coordinator(_FailsAtCommit)
    coord.submit("sessions.create", {"id": "s", "title": "t"}, ("a", 1)).result(10)
    with pytest.raises(RpcError) as info:
        coord.submit("late.orphan_message", {"id": "m"}, ("a", 2)).result(10)
    assert info.value.kind == "unavailable" and "FOREIGN KEY" in info.value.message
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM messages") == [(0,)]
    assert db_rows(tmp_path, "SELECT seq FROM applied_writes WHERE instance_id = 'a'") == [(1,)]
    # nothing was recorded, so the same key is applied (and fails) again rather than answered from a record
    with pytest.raises(RpcError, match="FOREIGN KEY"):
        coord.submit("late.orphan_message", {"id": "m"}, ("a", 2)).result(10)
    assert coord.submit("sessions.create", {"id": "t", "title": "t"}, ("a", 3)).result(10)["id"] == "t"
    assert db_rows(tmp_path, "SELECT seq FROM applied_writes WHERE instance_id = 'a' ORDER BY seq") == [(1,), (3,)]


class _Answers:
    """Where the coordinator answers a ``db.write`` from the bus (as the bus's Reply does)."""

    def __init__(self) -> None:
        self.results: list = []

    def result(self, value) -> None:  # noqa: ANN001
        self.results.append(value)

    def error(self, exc) -> None:  # noqa: ANN001
        self.results.append(exc)


def test_after_a_round_the_next_transaction_is_begun_until_the_bus_idles_or_closes(db, make_coordinator, tmp_path):
    """A round's writes leave the next round's BEGIN done (a lone write's latency without it);
    the bus's idle hook, or closing the coordinator (a fenced primary), gives SQLite's write lock back."""
    coord = make_coordinator()

    def round_of(*writes: tuple[str, int]) -> list:
        answers = _Answers()
        for sid, seq in writes:
            coord.handle_rpc({"method": "sessions.create", "params": {"id": sid, "title": "t"}, "key": ["a", seq]}, None, answers)
        coord.apply_round()
        coord.announce_round()
        return answers.results

    assert len(round_of(("s1", 1))) == 1
    assert db.writer().prepared and not another_writer_gets_in(database_path(tmp_path))
    assert len(round_of(("s2", 2), ("s3", 3))) == 2  # committed in the prepared transaction
    assert db_rows(tmp_path, "SELECT id FROM sessions ORDER BY id") == [("s1",), ("s2",), ("s3",)]
    coord.idle()
    assert not db.writer().prepared and another_writer_gets_in(database_path(tmp_path))
    round_of(("s4", 4))
    # while another thread holds the writer (a local write: it uses the prepared transaction),
    # the idle hook leaves it alone instead of waiting
    taken, done = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: (db.write_lock.acquire(), taken.set(), done.wait(10), db.write_lock.release()))
    holder.start()
    try:
        assert taken.wait(5)
        coord.idle()
        assert db.writer().prepared
    finally:
        done.set()
        holder.join(5)
    coord.close()
    assert not db.writer().prepared and another_writer_gets_in(database_path(tmp_path))
    coord.announce_round()  # a late round hook after close begins nothing
    assert not db.writer().prepared
