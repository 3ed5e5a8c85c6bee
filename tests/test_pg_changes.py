"""Team-mode change events: the NOTIFY payload and the LISTEN side, against a real PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from pando_core.db.engine import Change
from pando_core.db.pg_changes import (
    MAX_PAYLOAD_BYTES,
    ChangeListener,
    decode_payload,
    encode_changes,
    libpq_conninfo,
    send_changes,
)
from tests.support.waiting import hold_for, wait_for

psycopg = pytest.importorskip("psycopg")


def test_payload_round_trip():
    changes = [Change("messages", "insert", ["m1", "m2"]), Change("sessions", "update", ["s1"])]
    payload = encode_changes(changes, "inst-a")
    assert " " not in payload  # compact
    writer, decoded = decode_payload(payload)
    assert writer == "inst-a"
    assert decoded == changes


def test_large_change_set_becomes_resync():
    changes = [Change("messages", "insert", [f"message-{i:06d}" for i in range(2000)])]
    payload = encode_changes(changes, "inst-a")
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert decode_payload(payload) == ("inst-a", None)
    # multi-byte ids count in bytes, not characters
    wide = [Change("files", "insert", ["é" * 1000 for _ in range(4)])]
    assert decode_payload(encode_changes(wide, "w"))[1] is None


@pytest.mark.parametrize("payload", ["", "not json", "[1]", '{"w": "x", "c": [["t"]]}', '{"w": "x"}'])
def test_unreadable_payloads_mean_resync(payload):
    assert decode_payload(payload)[1] is None


def test_libpq_conninfo():
    assert libpq_conninfo("postgresql+psycopg://u@h:5/db") == "postgresql://u@h:5/db"
    assert libpq_conninfo("host=h port=5") == "host=h port=5"


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[list[Change], str]] = []
        self.resyncs = 0
        self.lock = threading.Lock()

    def on_changes(self, changes, writer) -> None:
        with self.lock:
            self.changes.append((changes, writer))

    def on_resync(self) -> None:
        with self.lock:
            self.resyncs += 1


@pytest.fixture
def listening(postgres_url):
    recorder = Recorder()
    listener = ChangeListener(postgres_url, recorder.on_changes, recorder.on_resync).start()
    yield listener, recorder
    listener.close()


def _writer(postgres_url):
    return psycopg.connect(libpq_conninfo(postgres_url))


def test_notify_in_committed_transaction_arrives(postgres_url, listening):
    listener, recorder = listening
    with _writer(postgres_url) as conn:
        send_changes(conn, [Change("messages", "insert", ["m1"])], "inst-a")
        hold_for(lambda: not recorder.changes, 0.2, "nothing heard before commit")
        conn.commit()
    wait_for(lambda: recorder.changes, 3, "the notification")
    assert recorder.changes == [([Change("messages", "insert", ["m1"])], "inst-a")]
    assert recorder.resyncs == 0


def test_notify_in_rolled_back_transaction_does_not(postgres_url, listening):
    listener, recorder = listening
    with _writer(postgres_url) as conn:
        send_changes(conn, [Change("messages", "insert", ["lost"])], "inst-a")
        conn.rollback()
        send_changes(conn, [Change("messages", "insert", ["kept"])], "inst-a")
        conn.commit()
    wait_for(lambda: recorder.changes, 3, "the committed notification")
    hold_for(lambda: len(recorder.changes) == 1, 0.3, "only the committed one")
    assert recorder.changes[0][0][0].ids == ["kept"]


def test_big_change_set_arrives_as_resync(postgres_url, listening):
    listener, recorder = listening
    with _writer(postgres_url) as conn:
        send_changes(conn, [Change("messages", "insert", [f"id-{i}" for i in range(3000)])], "inst-a")
        conn.commit()
    wait_for(lambda: recorder.resyncs == 1, 3, "a resync")
    assert recorder.changes == []


def test_terminated_backend_reconnects_and_resyncs(postgres_url, listening):
    listener, recorder = listening
    old_pid = listener.backend_pid
    assert old_pid
    with _writer(postgres_url) as conn:
        conn.autocommit = True
        assert conn.execute("SELECT pg_terminate_backend(%s)", (old_pid,)).fetchone()[0]
    wait_for(lambda: recorder.resyncs == 1, 5, "the resync after reconnecting")
    assert listener.reconnects == 1
    assert listener.backend_pid not in (None, old_pid)
    with _writer(postgres_url) as conn:  # and it hears new changes on the new connection
        send_changes(conn, [Change("sessions", "update", ["s9"])], "inst-b")
        conn.commit()
    wait_for(lambda: recorder.changes, 3, "a notification after the reconnect")
    assert recorder.changes[-1] == ([Change("sessions", "update", ["s9"])], "inst-b")


def test_close_returns_promptly(postgres_url):
    recorder = Recorder()
    listener = ChangeListener(postgres_url, recorder.on_changes, recorder.on_resync).start()
    time.sleep(0.05)  # parked in its wait on the socket
    started = time.monotonic()
    listener.close()
    assert time.monotonic() - started < 1.0
    assert not listener.connected


def test_unreachable_server_is_an_error_at_start(postgres_server):
    from pando_core.testing.postgres import free_port

    listener = ChangeListener(f"postgresql://postgres@127.0.0.1:{free_port()}/x", lambda *a: None, lambda: None)
    with pytest.raises(psycopg.OperationalError):
        listener.start()


def test_a_listener_started_while_the_server_is_away_connects_later(postgres_url, postgres_server):
    """``start(require=False)`` keeps trying in the background and resyncs once connected (here
    the database it names is created only after the start)."""
    import re

    name = re.sub(r".*/", "", postgres_url) + "_later"
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    recorder = Recorder()
    listener = ChangeListener(url, recorder.on_changes, recorder.on_resync).start(require=False)
    try:
        assert not listener.connected
        postgres_server.create_database(name)
        wait_for(lambda: recorder.resyncs == 1, 10, "the resync once connected")
        with _writer(url) as conn:
            send_changes(conn, [Change("t", "insert", ["1"])], "w")
            conn.commit()
        wait_for(lambda: recorder.changes, 3, "a notification")
    finally:
        listener.close()
