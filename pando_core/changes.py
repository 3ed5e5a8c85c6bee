"""Changes from anywhere: what every instance committed, handed to ``pando_changes_committed``.

On the primary the feed listens to its database's commits, which include the writes proxied from
every secondary; on a secondary it listens to the primary's change events (``db.<table>.<kind>``).
Either way the hook runs on the feed's own thread, so a slow plugin never delays a write or the
bus, and the commits that arrived while it ran are handed over together, in order.

The feed also tells the instance running the services (``app.runs_services``: the primary, or in
team mode the holder of the team lease) when a session ended on another instance (a ``sessions``
change of kind ``ended``), so that ``pando_session_ended`` reaches it for every instance's sessions. In team mode (PostgreSQL, every instance writes directly) every instance listens to its
own commits and, for everyone else's, to the database's change notifications (the runtime's
change events there), whatever its local role. It is attached only when a plugin implements one of those two hooks, or something in
the process listens (``add_listener``: ``pando serve`` pushes changes to browsers): otherwise no
commit pays for it.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("pando.changes")

SESSION_ENDED = "ended"  # the sessions change kind that SessionRepository.end records
_STOP = object()


@dataclass(frozen=True, slots=True)
class CommittedChange:
    """Rows of one table changed the same way by one commit: ``table``, ``kind`` (insert, update,
    delete, or a repository's own kind such as ``ended``), ``ids`` and the ``writer`` instance."""

    table: str
    kind: str
    ids: tuple[str, ...]
    writer: str


class ChangeFeed:
    """Feeds ``pando_changes_committed`` (and remote session ends) from commits or change events."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.delivered = 0  # changes handed to the hook (for tests and `pando status`)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._attached_db: Any = None
        self._secondary_listening = False
        self._lock = threading.Lock()
        self._listeners: list[Any] = []

    @property
    def wanted(self) -> bool:
        hooks = self.app.plugins.hooks
        return bool(self._listeners) or hooks.pando_changes_committed.implemented or hooks.pando_session_ended.implemented

    def add_listener(self, listener: Any) -> None:
        """``listener(changes, resync)`` on the feed's thread for every batch, like the hook (an
        in-process subscriber such as the web server); listening starts now if it had not."""
        self._listeners.append(listener)
        self.attach()

    def remove_listener(self, listener: Any) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- sources -----------------------------------------------------------------------------------

    def attach(self) -> None:
        """Listen where this instance's role says; called at start and after a promotion."""
        runtime = self.app.runtime
        if runtime is None or not self.wanted:
            return
        with self._lock:
            if getattr(runtime, "team", False):
                self._attach_team(runtime)
            elif runtime.role == "primary":
                db = runtime.db
                if db is not None and db is not self._attached_db:
                    db.on_commit(self._committed)
                    self._attached_db = db
            elif not self._secondary_listening:
                runtime.on_event(self._event, "db.")
                self._secondary_listening = True
            self._start_thread()

    def _attach_team(self, runtime: Any) -> None:
        db = runtime.db
        if db is not None and db is not self._attached_db:
            db.on_commit(self._committed)  # this instance's own writes, at once
            self._attached_db = db
        if not self._secondary_listening:
            runtime.on_event(self._event, "db.")  # everyone else's, by NOTIFY
            self._secondary_listening = True
        self._start_thread()

    def _team(self) -> bool:
        return bool(getattr(self.app.runtime, "team", False))

    def _committed(self, changes: list[Any], writer: str) -> None:
        """The primary's commit listener (on the writing thread: hand over and return); in team
        mode every instance's, for its own writes."""
        if self.app.role != "primary" and not self._team():
            return  # a listener of a database this instance no longer writes
        writer = writer or self.app.instance_id
        self._queue.put([CommittedChange(c.table, c.op, tuple(c.ids), writer) for c in changes])

    def _event(self, event: Any) -> None:
        """A secondary's listener for the primary's change events (on the client's dispatcher); in
        team mode every instance's, for the notifications of other instances' commits."""
        if self._team():
            payload = event.payload if isinstance(event.payload, dict) else {}
            if event.topic != "state.resync" and payload.get("writer") == self.app.instance_id:
                return  # our own write: _committed had it already
        elif self.app.role != "secondary":
            return
        if event.topic == "state.resync":
            self._queue.put(None)
            return
        parts = event.topic.split(".", 2)
        payload = event.payload if isinstance(event.payload, dict) else {}
        if len(parts) != 3:
            return
        ids = tuple(str(i) for i in payload.get("ids") or ())
        self._queue.put([CommittedChange(parts[1], parts[2], ids, str(payload.get("writer") or ""))])

    # -- delivery ----------------------------------------------------------------------------------

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._deliver_loop, name="pando-change-feed", daemon=True)
            self._thread.start()

    def _deliver_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch: list[CommittedChange] = []
            resync = item is None
            if item is not None:
                batch.extend(item)
            while True:  # what arrived meanwhile goes in the same call, in order
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._deliver(batch, resync)
                    return
                if more is None:
                    resync = True
                else:
                    batch.extend(more)
            self._deliver(batch, resync)

    def _deliver(self, batch: list[CommittedChange], resync: bool) -> None:
        app = self.app
        hooks = app.plugins.hooks
        try:
            if resync:
                hooks.pando_changes_committed(app=app, changes=[], resync=True)
            if batch:
                hooks.pando_changes_committed(app=app, changes=batch, resync=False)
                self.delivered += len(batch)
            if app.runs_services:  # where the services run, every instance's session ends arrive
                self._relay_session_ends(batch)
        except Exception:  # noqa: BLE001 - strict mode re-raised; the feed keeps going
            log.exception("delivering committed changes failed")
        for listener in list(self._listeners):
            try:
                listener(batch, resync)
            except Exception:  # noqa: BLE001 - a listener's failure is its own
                log.exception("a change listener failed")

    def _relay_session_ends(self, batch: list[CommittedChange]) -> None:
        """``pando_session_ended`` where the services run (the primary; in team mode the lease
        holder) for sessions another instance ended."""
        app = self.app
        for change in batch:
            if change.table != "sessions" or change.kind != SESSION_ENDED or change.writer == app.instance_id:
                continue
            for session_id in change.ids:
                try:
                    session = app.store.sessions.get(id=session_id)
                except Exception:  # noqa: BLE001 - deleted since
                    continue
                app.plugins.hooks.pando_session_ended(app=app, session=session, origin=change.writer)

    def close(self, timeout: float = 2.0) -> None:
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        if thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
