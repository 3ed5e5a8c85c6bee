"""Live updates: the instance's change feed, and the server's own events, as server-sent events.

The change feed (``App.changes``) hands over what every instance committed on its own thread; the
hub copies each event into the queue of every open ``/api/events`` stream, on the server's event
loop. A browser that falls behind loses nothing it cannot recover: a full queue is replaced by one
``resync`` event, after which the page reloads what it shows.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

QUEUE_LIMIT = 1000
KEEPALIVE_S = 15.0
_CLOSE = object()


class LiveHub:
    """Fan-out of events (dicts) from any thread to the streams open on one event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue] = set()
        self._lock = threading.Lock()
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # -- sources -----------------------------------------------------------------------------------

    def on_changes(self, changes: list[Any], resync: bool) -> None:
        """The change feed's listener (its thread): one event per table change, stamped."""
        stamp = time.time()
        if resync:
            self.publish({"type": "resync", "at": stamp})
        for change in changes:
            self.publish(
                {"type": "change", "table": change.table, "kind": change.kind, "ids": list(change.ids), "at": stamp}
            )

    def publish(self, event: dict[str, Any]) -> None:
        loop = self._loop
        if loop is None or self.closed:
            return
        try:
            loop.call_soon_threadsafe(self._fan_out, event)
        except RuntimeError:
            pass  # the loop is closed: the server is stopping

    def _fan_out(self, event: Any) -> None:
        with self._lock:
            queues = list(self._queues)
        for q in queues:
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                while not q.empty():
                    q.get_nowait()
                q.put_nowait({"type": "resync", "at": time.time()})

    def close(self) -> None:
        """Ends every open stream (the server is stopping)."""
        self.closed = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._fan_out, _CLOSE)
            except RuntimeError:
                pass

    # -- streams -----------------------------------------------------------------------------------

    async def stream(self, request: Any) -> AsyncIterator[str]:
        """SSE text for one client until it goes away or the server stops."""
        q: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        with self._lock:
            self._queues.add(q)
        try:
            yield "retry: 1000\n\n"
            while not self.closed:
                try:
                    event = await asyncio.wait_for(q.get(), KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                if event is _CLOSE:
                    return
                yield sse(event)
        finally:
            with self._lock:
                self._queues.discard(q)


def sse(event: dict[str, Any], name: str | None = None) -> str:
    """One server-sent event carrying *event* as JSON (``event: name`` when given)."""
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(event, default=str)}\n\n"
