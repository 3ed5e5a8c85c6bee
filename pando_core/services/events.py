"""In-process publish/subscribe for service events (created/updated/deleted and agent events)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("pando.events")


@dataclass(frozen=True)
class Event:
    topic: str  # "session.created", "message.updated", "agent.content_delta", ...
    payload: Any


class EventBroker:
    """Synchronous fan-out; a failing subscriber is logged and never breaks the publisher."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Callable[[Event], None]]] = []
        self._lock = threading.Lock()

    def subscribe(self, prefix: str, callback: Callable[[Event], None]) -> Callable[[], None]:
        entry = (prefix, callback)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def publish(self, topic: str, payload: Any) -> None:
        event = Event(topic, payload)
        with self._lock:
            targets = [cb for prefix, cb in self._subscribers if topic.startswith(prefix)]
        for callback in targets:
            try:
                callback(event)
            except Exception:  # noqa: BLE001
                log.exception("event subscriber failed for %s", topic)
