"""Change events in team mode: what a commit on PostgreSQL tells every other instance.

A writer on PostgreSQL sends, inside each write transaction that recorded changes, one
``pg_notify('pando_changes', payload)``: the server delivers it at COMMIT and only if the
transaction commits, so a listener never hears of a write that did not happen. The payload is
compact JSON, ``{"w": writer, "c": [[table, op, [id, ...]], ...]}``; PostgreSQL caps a payload at
8000 bytes, so a larger change set is sent as ``{"w": writer, "resync": true}`` and listeners
treat it as they treat a gap on the bus: something changed, read again.

:class:`ChangeListener` is the receiving end: one thread on its own connection doing ``LISTEN``,
waiting on the socket (never polling), handing each notification to ``on_changes``. A dropped
connection may have lost notifications, so after reconnecting (with backoff) it calls
``on_resync``, as a secondary does after a gap in the bus's change sequence.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from .engine import Change

log = logging.getLogger("pando.db.changes")

CHANNEL = "pando_changes"
MAX_PAYLOAD_BYTES = 7900  # PostgreSQL refuses payloads of 8000 bytes or more
WAIT_SLICE_S = 0.2  # longest wait on the socket before looking at close(): bounds close()
RECONNECT_BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

_COMPACT = {"separators": (",", ":"), "ensure_ascii": False}


def encode_changes(changes: list[Change], writer: str) -> str:
    """The NOTIFY payload announcing *changes* by *writer* (a resync payload when too large)."""
    payload = json.dumps({"w": writer, "c": [[c.table, c.op, list(c.ids)] for c in changes]}, **_COMPACT)
    if len(payload) > MAX_PAYLOAD_BYTES // 4 and len(payload.encode()) > MAX_PAYLOAD_BYTES:
        return resync_payload(writer)
    return payload


def resync_payload(writer: str) -> str:
    return json.dumps({"w": writer, "resync": True}, **_COMPACT)


def decode_payload(payload: str) -> tuple[str, list[Change] | None]:
    """``(writer, changes)`` from a payload; ``changes`` is None when listeners must resync (the
    writer said so, or the payload is not one we understand: better read again than miss it)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return "", None
    if not isinstance(body, dict):
        return "", None
    writer = body.get("w")
    writer = writer if isinstance(writer, str) else ""
    entries = body.get("c")
    if body.get("resync") or not isinstance(entries, list):
        return writer, None
    changes = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and isinstance(entry[1], str)):
            return writer, None
        ids = entry[2] if isinstance(entry[2], list) else []
        changes.append(Change(entry[0], entry[1], [str(i) for i in ids]))
    return writer, changes


def close_quietly(conn: Any) -> None:
    """Close a psycopg connection that may already be broken (None: nothing to close)."""
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - already broken
            pass


def libpq_conninfo(url: str) -> str:
    """A libpq connection string or URI from a SQLAlchemy URL (``postgresql+psycopg://`` →
    ``postgresql://``); a plain conninfo is returned as it is."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.startswith("postgresql+"):
        return "postgresql://" + rest
    return url


class ChangeListener:
    """``LISTEN pando_changes`` on a dedicated connection, on a thread of its own.

    ``on_changes(changes, writer)`` runs on that thread for every notification (keep it quick: hand
    over and return); ``on_resync()`` for a resync payload and after every reconnect. :meth:`start`
    connects before returning (so a NOTIFY committed after it is heard) and raises if it cannot.
    """

    def __init__(
        self,
        dsn: str,
        on_changes: Callable[[list[Change], str], None],
        on_resync: Callable[[], None],
        *,
        channel: str = CHANNEL,
        connect_timeout: float = 5.0,
        password: str | None = None,
    ) -> None:
        self.dsn = libpq_conninfo(dsn)
        self.password = password or None
        self.channel = channel
        self.on_changes = on_changes
        self.on_resync = on_resync
        self.connect_timeout = connect_timeout
        self.received = 0  # notifications handled (for tests and status)
        self.reconnects = 0
        self._conn: Any = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening connection (None while disconnected)."""
        conn = self._conn
        try:
            return conn.info.backend_pid if conn is not None and not conn.closed else None
        except Exception:  # noqa: BLE001 - closed under us
            return None

    @property
    def connected(self) -> bool:
        return self.backend_pid is not None

    def start(self, *, require: bool = True) -> ChangeListener:
        """Connect and listen. ``require=False``: if the server cannot be reached now, keep
        trying in the background (and resync once connected) instead of raising."""
        try:
            self._conn = self._connect()
        except Exception as exc:
            if require:
                raise
            log.warning("change listener cannot reach the database yet (%s); retrying", exc)
        self._thread = threading.Thread(target=self._run, name="pando-pg-listen", daemon=True)
        self._thread.start()
        return self

    def _connect(self) -> Any:
        import psycopg

        extra = {"password": self.password} if self.password else {}
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=max(1, int(self.connect_timeout)), **extra)
        try:
            conn.execute(f'LISTEN "{self.channel}"')
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self) -> None:
        import psycopg

        while not self._closing.is_set():
            conn = self._conn
            try:
                if conn is None:  # not connected at start
                    raise psycopg.OperationalError("not connected")
                for notify in conn.notifies(timeout=WAIT_SLICE_S):
                    self._handle(notify.payload)
                    if self._closing.is_set():
                        break
            except psycopg.Error as exc:
                if self._closing.is_set():
                    break
                log.info("change listener lost its connection (%s); reconnecting", exc)
                self._drop()
                if not self._reconnect():
                    break
                self.reconnects += 1
                self._call(self.on_resync)
        self._drop()

    def _reconnect(self) -> bool:
        """Connect again, backing off; False when closed meanwhile."""
        attempt = 0
        while not self._closing.is_set():
            try:
                self._conn = self._connect()
                return True
            except Exception as exc:  # noqa: BLE001 - the server may be restarting
                delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
                attempt += 1
                log.debug("change listener reconnect failed (%s); retrying in %.2fs", exc, delay)
                self._closing.wait(delay)
        return False

    def _handle(self, payload: str) -> None:
        self.received += 1
        writer, changes = decode_payload(payload)
        if changes is None:
            self._call(self.on_resync)
        elif changes:
            self._call(self.on_changes, changes, writer)

    @staticmethod
    def _call(callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a listener's failure must not stop the listening
            log.exception("change listener callback failed")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        close_quietly(conn)

    def close(self, timeout: float = 1.0) -> None:
        """Stop listening: returns within about :data:`WAIT_SLICE_S` (at most *timeout*)."""
        self._closing.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        if thread is None or not thread.is_alive():
            self._drop()


def notify_sql() -> str:
    """The statement a writer runs inside its transaction, with the payload as its one parameter."""
    return f"SELECT pg_notify('{CHANNEL}', %s)"


def send_changes(conn: Any, changes: list[Change], writer: str) -> None:
    """Announce *changes* on the psycopg connection *conn*, inside its open transaction."""
    conn.execute(notify_sql(), (encode_changes(changes, writer),))

