"""What a secondary takes from the primary's bus, and who hears it.

A secondary always takes heartbeats, promotion/shutdown notices and interrupt requests; change
events (``db.*``) only once a listener asks for them (:meth:`BusSubscriptions.on_event`). Change
events are numbered: a gap means some were lost, and the listeners get a ``state.resync`` event
with the primary's state instead.

In team mode (the database is PostgreSQL, written directly by every instance on every machine)
change events come from the database's NOTIFY instead (:class:`~.team.TeamChanges`, started when
the first listener of changes asks), on every instance whatever its role, and the bus carries
none: the local primary's commits are only some of the team's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import protocol as P
from .client import Client
from .roles import SECONDARY

log = logging.getLogger("pando.runtime")

# what a secondary always takes from the bus: heartbeats, promotion/shutdown notices, interrupts
BASE_EVENT_PREFIXES = (P.INSTANCE_PREFIX, P.SESSION_INTERRUPT)


def _takes_changes(prefix: str) -> bool:
    """Whether a subscription to *prefix* takes change events (``db.*``)."""
    return prefix.startswith(P.DB_PREFIX) or P.DB_PREFIX.startswith(prefix)


class BusSubscriptions:
    """The secondary side of a `~.bootstrap.Runtime`'s bus events (a mixin of it: the
    subscription state lives on the runtime and changes with its client)."""

    def on_event(self, callback: Callable[[P.Event], None], prefix: str = "") -> None:
        """``callback(event)`` for the primary's bus events whose topic starts with *prefix*
        (``""``: all), on a secondary, on the client's dispatcher thread.

        A secondary takes change events (``db.*``) from the primary only once a listener asks
        for them: it reads the shared database itself, and every event taken costs it a wake-up
        per write anywhere. Events published before the subscription reaches the primary (well
        under a millisecond) are not seen; a listener that starts while changes are being made
        may get a ``state.resync`` first. A primary's own events are not delivered here.
        """
        with self.state_lock:
            self._event_callbacks.append((prefix, callback))
            if self.team and _takes_changes(prefix):
                self._start_team_changes()
            client = self.client if self.role == SECONDARY else None
            if client is not None:
                self._subscribe(client, prefix)

    @property
    def team(self) -> bool:
        """Team mode: the database is shared by instances that all write it (PostgreSQL)."""
        return bool(getattr(self.db, "shared", False))

    def _start_team_changes(self) -> None:
        """Listen to the database's change notifications (once; caller holds ``state_lock``)."""
        if getattr(self, "team_changes", None) is not None:
            return
        from .team import TeamChanges

        db = self.db
        self.team_changes = TeamChanges(self, db.url, getattr(db, "password", None)).start()

    def _stop_team_changes(self) -> None:
        changes, self.team_changes = getattr(self, "team_changes", None), None
        if changes is not None:
            changes.close()

    def _subscribe_all(self, client: Client) -> None:
        """Subscribe a new client to what this instance and its listeners need."""
        self._subscribed = []
        self._tracking_changes = False
        self._last_change_seq = None
        for prefix in (*BASE_EVENT_PREFIXES, *(prefix for prefix, _ in self._event_callbacks)):
            self._subscribe(client, prefix)

    def _subscribe(self, client: Client, prefix: str) -> None:
        """Take the topics starting with *prefix* too (caller holds ``state_lock``)."""
        if prefix.startswith(P.DB_PREFIX):
            if self.team:
                return  # changes come by NOTIFY
            prefix = P.DB_PREFIX  # every change, so change_seq has no gaps that are only other tables
        if any(prefix.startswith(taken) for taken in self._subscribed):
            return
        self._subscribed.append(prefix)
        if not self._tracking_changes and _takes_changes(prefix) and not self.team:
            self._tracking_changes = True
            self._last_change_seq = None  # the first change event or heartbeat sets the baseline
        client.subscribe(prefix, self._on_bus_event, inline=True)

    def _on_bus_event(self, event: P.Event) -> None:
        # On the client's I/O thread (inline): quick bookkeeping only; callbacks run on its
        # dispatcher thread, and only when someone listens.
        if event is self._last_event:  # the same event, matched by a second prefix
            return
        self._last_event = event
        topic = event.topic
        if topic.startswith(P.DB_PREFIX):
            if self.team:
                return  # the local primary's commits: heard by NOTIFY like everyone's
            self._check_change_seq(event, event.payload, heartbeat=False)
        elif topic == P.INSTANCE_HEARTBEAT:
            if self._tracking_changes:
                self._check_change_seq(event, event.payload, heartbeat=True)
        elif topic in (P.INSTANCE_SHUTDOWN, P.INSTANCE_PROMOTED) and self.watcher is not None:
            self.watcher.poke()
        interrupt = topic == P.SESSION_INTERRUPT and self._interrupt_callbacks
        client = self.client
        if client is not None and (interrupt or any(topic.startswith(p) for p, _ in self._event_callbacks)):
            client.defer(self._dispatch_event, event)

    def _check_change_seq(self, event: P.Event, payload: Any, *, heartbeat: bool) -> None:
        """Change events are numbered (``change_seq``) and heartbeats carry the latest number: a
        number skipped, or a heartbeat ahead of the last change seen, means changes were lost."""
        change_seq = payload.get("change_seq") if isinstance(payload, dict) else None
        if not isinstance(change_seq, int):
            return
        last = self._last_change_seq
        if last is not None and event.epoch == self._last_change_epoch and self.client is not None:
            if change_seq > (last if heartbeat else last + 1):
                self._resync(event)
        if last is None or event.epoch != self._last_change_epoch or change_seq > last:
            self._last_change_seq = change_seq
            self._last_change_epoch = event.epoch

    def _dispatch_event(self, event: P.Event) -> None:
        """The client's dispatcher thread: interrupt requests and event listeners."""
        if event.topic == P.SESSION_INTERRUPT and isinstance(event.payload, dict):
            if isinstance(event.payload.get("session_id"), str):
                self._run_interrupt_callbacks(event.payload["session_id"])
        resync = event.topic == P.STATE_RESYNC  # lost changes: for those who take changes
        for prefix, callback in list(self._event_callbacks):
            if not (_takes_changes(prefix) if resync else event.topic.startswith(prefix)):
                continue
            try:
                callback(event)
            except Exception:  # noqa: BLE001
                log.exception("runtime event callback failed")

    def _resync(self, seen: P.Event) -> None:
        """A gap in event sequence numbers: change events were lost.

        Secondaries read the shared database directly, so nothing cached here is stale; what needs
        to know is whoever listens to our events. Ask the primary for its state without blocking the
        event thread, and hand it to the listeners as a ``state.resync`` event.
        """
        self.resyncs += 1

        client = self.client

        def deliver(done) -> None:  # noqa: ANN001 - on the client's I/O thread: hand it over
            if done.exception() is not None:
                log.info("state.sync failed; listeners will hear the next events only")
                return
            event = P.Event(P.STATE_RESYNC, seen.seq, seen.epoch, seen.instance_id, P.now_ms(), done.result())
            client.defer(self._dispatch_event, event)

        client.call_async("state.sync", {}, timeout=2.0).add_done_callback(deliver)
