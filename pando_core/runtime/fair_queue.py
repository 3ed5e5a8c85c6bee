"""The bus's queue of requests waiting for a worker thread: bounded by bytes, fair between clients.

One client flooding the primary (thousands of ``state.sync``, a hundred 15 MB requests) must not
hold the primary's memory or starve the other clients. So:

* the queue holds at most ``max_requests`` requests and ``max_bytes`` bytes of them (the size of
  the message each came in), and one client at most ``client_max_requests`` and
  ``client_max_bytes`` of that: past a bound the request is refused at once (the bus answers
  ``unavailable``, "busy", which a caller may retry), before it costs a worker anything;
* workers take requests client by client in turn (round robin), and one client keeps at most
  ``client_running`` workers busy at a time, so another client's request waits for at most one
  request of each other client, not for the whole backlog of a heavy one.

A "client" is the caller's instance id when it sent one (a secondary may use several sockets),
else its socket's routing id.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["FairQueue"]


class _Client:
    __slots__ = ("jobs", "held", "held_bytes", "running")

    def __init__(self) -> None:
        self.jobs: deque[tuple[Any, int]] = deque()  # (job, size), in arrival order
        self.held = 0  # queued + running (+ answered later, for handlers returning a future)
        self.held_bytes = 0
        self.running = 0  # on a worker right now


class FairQueue:
    """Thread-safe. :meth:`offer` (False = busy), :meth:`take` (a worker blocks for a job),
    :meth:`ran` (the worker is free again), :meth:`release` (the request is answered)."""

    def __init__(
        self,
        *,
        max_requests: int,
        max_bytes: int,
        client_max_requests: int,
        client_max_bytes: int,
        client_running: int,
    ) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.client_max_requests = client_max_requests
        self.client_max_bytes = client_max_bytes
        self.client_running = max(1, client_running)
        self._cond = threading.Condition(threading.Lock())
        self._clients: dict[Any, _Client] = {}
        self._turns: deque[Any] = deque()  # clients with a queued job and a free worker slot
        self._in_turns: set[Any] = set()
        self._closed = False
        self.requests = 0  # held, all clients
        self.bytes = 0

    def offer(self, client: Any, job: Any, size: int) -> bool:
        """Queue *job* (its request was *size* bytes) for *client*; False when a bound is
        reached (nothing queued)."""
        with self._cond:
            state = self._clients.get(client)
            if state is None:
                state = self._clients[client] = _Client()
            if (
                self._closed
                or self.requests >= self.max_requests
                or (self.bytes and self.bytes + size > self.max_bytes)  # one request alone always fits
                or state.held >= self.client_max_requests
                or (state.held and state.held_bytes + size > self.client_max_bytes)
            ):
                if not state.held:
                    del self._clients[client]
                return False
            state.jobs.append((job, size))
            state.held += 1
            state.held_bytes += size
            self.requests += 1
            self.bytes += size
            self._give_turn(client, state)
            return True

    def take(self) -> Any:
        """The next job, client by client in turn; blocks until there is one. None once closed."""
        with self._cond:
            while not self._turns:
                if self._closed:
                    return None
                self._cond.wait()
            client = self._turns.popleft()
            self._in_turns.discard(client)
            state = self._clients[client]
            job, _ = state.jobs.popleft()
            state.running += 1
            self._give_turn(client, state)  # to the back of the line, if it has more
            return job

    def ran(self, client: Any) -> None:
        """A worker finished running *client*'s job (its answer may come later)."""
        with self._cond:
            state = self._clients.get(client)
            if state is not None:
                state.running -= 1
                self._give_turn(client, state)

    def release(self, client: Any, size: int) -> None:
        """*client*'s request of *size* bytes is answered: it no longer counts."""
        with self._cond:
            self.requests -= 1
            self.bytes -= size
            state = self._clients.get(client)
            if state is None:
                return
            state.held -= 1
            state.held_bytes -= size
            if state.held <= 0 and state.running <= 0 and not state.jobs:
                del self._clients[client]

    def close(self) -> None:
        """Stop: every waiting or later :meth:`take` returns None (queued jobs are abandoned)."""
        with self._cond:
            self._closed = True
            self._turns.clear()
            self._in_turns.clear()
            self._cond.notify_all()

    def _give_turn(self, client: Any, state: _Client) -> None:
        if state.jobs and state.running < self.client_running and client not in self._in_turns:
            self._turns.append(client)
            self._in_turns.add(client)
            self._cond.notify()
