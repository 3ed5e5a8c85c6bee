"""Group commit on a real SQLite file: one transaction per batch, one savepoint per write."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import sys

import pytest
from reliability_kit import wait_for

from pando_core.db import Database, MethodRegistry, Repository, core_component, migrate, write
from pando_core.db.engine import WriteTx
from pando_core.errors import ConstraintError, NotFoundError, ValidationError
from pando_core.runtime.protocol import RpcError
from pando_core.runtime.writes import WriteCoordinator


@pytest.fixture
def coordinator(tmp_path):
    db = Database(tmp_path / "pando.db")
    components = [core_component()]
    migrate(db, components)
    coord = WriteCoordinator(db, MethodRegistry(r for c in components for r in c.repositories), "primary")
    yield coord, db, tmp_path / "pando.db"
    coord.close()
    db.dispose()


def _coordinator_frame(coord) -> str | None:
    frame = sys._current_frames().get(coord._thread.ident)
    return frame.f_code.co_name if frame is not None else None


def _rows(path, sql):
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_failing_write_does_not_sink_its_batch(coordinator):
    coord, db, path = coordinator
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
    assert _rows(path, "SELECT id, title FROM sessions WHERE id != 'blocker' ORDER BY id") == [
        ("s0", "t"),
        ("s1", "t"),
        ("s2", "t"),
    ]
    assert _rows(
        path, "SELECT instance_id, seq, ok FROM applied_writes WHERE instance_id != 'z' ORDER BY 1, 2"
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


def test_unexpected_errors_are_not_recorded(coordinator):
    coord, db, path = coordinator
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
    assert _rows(path, "SELECT instance_id, seq FROM applied_writes ORDER BY 1") == [("a", 2), ("z", 1)]
    assert _rows(path, "SELECT id FROM sessions ORDER BY id") == [("blocker",), ("s2",)]
    coord.close()
    late = coord.submit("sessions.create", {"id": "s3", "title": "late"}, ("a", 3))
    with pytest.raises(RpcError, match="shutting down") as info:
        late.result(1)
    assert info.value.retryable


def test_old_write_keys_are_pruned_on_schedule(tmp_path):
    db = Database(tmp_path / "pando.db")
    components = [core_component()]
    migrate(db, components)
    registry = MethodRegistry(r for c in components for r in c.repositories)
    with db.write() as tx:  # a key recorded two hours ago, by an earlier primary
        tx.raw.execute(
            "INSERT INTO applied_writes VALUES ('old', 1, 'sessions.create', 1, 'null', ?)",
            (tx.now_ms() - 7_200_000,),
        )
    coord = WriteCoordinator(db, registry, "primary", prune_interval=0.05)
    try:
        coord.submit("sessions.create", {"id": "fresh", "title": "t"}, ("new", 1)).result(10)
        wait_for(lambda: coord.stats["pruned"] == 1, 5, "the scheduled prune")
        path = tmp_path / "pando.db"
        assert _rows(path, "SELECT instance_id, seq FROM applied_writes") == [("new", 1)]
        # a key inside the retention window still answers a retry with its stored outcome
        again = coord.submit("sessions.create", {"id": "other", "title": "t"}, ("new", 1)).result(10)
        assert again["id"] == "fresh" and coord.stats["duplicates"] == 1
        assert coord.prune(older_than_ms=WriteTx.now_ms() + 1) == 1  # explicit cut-off: everything
        assert _rows(path, "SELECT COUNT(*) FROM applied_writes") == [(0,)]
    finally:
        coord.close()
        db.dispose()


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
def test_a_lone_failing_write_leaves_nothing_behind(tmp_path, kind, recorded):
    db = Database(tmp_path / "pando.db")
    components = [core_component()]
    migrate(db, components)
    coord = WriteCoordinator(db, MethodRegistry([*components[0].repositories, _HalfWrite]), "primary")
    try:
        coord.submit("sessions.create", {"id": "s", "title": "kept"}, ("a", 1)).result(10)
        with pytest.raises(Exception) as info:  # noqa: PT011 - either kind, checked below
            coord.submit("half.rename_then_fail", {"id": "s", "kind": kind}, ("a", 2)).result(10)
        assert isinstance(info.value, ValidationError if recorded else RpcError)
        path = tmp_path / "pando.db"
        assert _rows(path, "SELECT title FROM sessions") == [("kept",)]
        keys = _rows(path, "SELECT seq, ok FROM applied_writes WHERE instance_id = 'a' ORDER BY seq")
        assert keys == ([(1, 1), (2, 0)] if recorded else [(1, 1)])
        # the transaction was begun again cleanly: the next lone write commits
        assert coord.submit("sessions.create", {"id": "t", "title": "next"}, ("a", 3)).result(10)["id"] == "t"
        assert _rows(path, "SELECT id FROM sessions ORDER BY id") == [("s",), ("t",)]
    finally:
        coord.close()
        db.dispose()
