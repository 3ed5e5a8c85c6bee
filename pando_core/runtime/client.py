"""A secondary's connection to the primary's bus: SUB (events) + DEALER (JSON-RPC 2.0).

Threading model
    * One I/O thread owns the SUB socket and the shared DEALER.  Callers hand it requests through
      a locked command queue plus a wake-up byte on a ``socket.socketpair``; it sends, receives,
      matches replies to requests by id and enforces deadlines.
    * Any number of threads may have calls in flight at once over the shared DEALER; each reply
      is matched to its caller by request id.  A reply that arrives after its call timed out (or
      for an unknown id) is dropped quietly.
    * A blocking :meth:`Client.call` takes a *direct lane* instead: a DEALER of a small pool that
      the calling thread borrows, sends on and polls itself, so the call costs one round trip
      and no thread hand-offs (the hand-offs cost more than the round trip itself).  With more
      than ``MAX_DIRECT_LANES`` blocking calls at once, the others use the I/O thread.
    * Event callbacks run on one dispatcher thread per client, in arrival order — never on the
      I/O thread.  The completion of a future returned by :meth:`Client.call_async` happens on
      the I/O thread: do not block in ``add_done_callback`` functions (``call()`` from the I/O
      thread raises RuntimeError instead of deadlocking).

Deadlines
    ``call(..., timeout=t)`` raises :class:`RpcTimeout` after *t* seconds.  ``RpcTimeout.sent``
    is False when the request never left (no primary connected during the whole wait: nothing
    was applied, safe to retry) and True when the outcome is unknown (retry with the same
    idempotency key).  The remaining time is sent as ``meta.timeout_ms`` so the bus skips work
    nobody waits for any more.

Failover
    :meth:`Client.reconnect` re-points every socket (new sockets, same routing identity,
    subscriptions re-applied).  Calls not sent yet go to the new primary.  Calls already sent
    can get no reply any more (it would come on the old socket): they fail at once with
    :class:`CallInterrupted` (an ``RpcTimeout`` with ``sent=True``), and the caller re-sends them
    with the same idempotency key.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import itertools
import logging
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from . import protocol as P
from .auth import ClientAuth
from .endpoints import Endpoints
from .protocol import CallInterrupted, Event, RpcError, RpcTimeout
from .sockets import Wakeup, recv_frames, send_frames, spin_poll

__all__ = ["CallInterrupted", "Client", "ClientClosed", "RpcError", "RpcTimeout", "Subscription"]

log = logging.getLogger(__name__)

EventCallback = Callable[[Event], Any]


class ClientClosed(RpcError):
    """The client was closed (pending calls fail with this; it is never retryable by itself)."""

    def __init__(self, message: str = "client closed") -> None:
        super().__init__(P.UNAVAILABLE, message, kind=P.KIND_CLOSED)


class Subscription:
    """Handle returned by :meth:`Client.subscribe`; ``cancel()`` stops delivery."""

    __slots__ = ("prefix", "callback", "inline", "_client", "_active", "_prefix_b")

    def __init__(self, client: Client, prefix: str, callback: EventCallback, inline: bool = False) -> None:
        self.prefix = prefix
        self.inline = inline
        self._prefix_b = prefix.encode("utf-8")
        self.callback = callback
        self._client = client
        self._active = True

    @property
    def active(self) -> bool:
        return self._active

    def cancel(self) -> None:
        self._client.unsubscribe(self)

    def __repr__(self) -> str:
        return f"Subscription({self.prefix!r}, active={self._active})"


@dataclass(slots=True)
class _Call:
    id: str
    method: str
    data: bytes
    deadline: float
    future: concurrent.futures.Future
    sent: bool = False


MAX_DIRECT_LANES = 32
SPIN_SECONDS = 0.0005
"""How long a lane call that is the only one in flight polls for its reply without sleeping
before it blocks: waking a sleeping thread costs more than a write's whole round trip here."""


class _Lane:
    """One direct-lane DEALER, used by one borrowing thread at a time."""

    __slots__ = ("number", "socket", "generation", "out_poller", "in_poller")

    def __init__(self, number: int) -> None:
        self.number = number
        self.socket: zmq.Socket | None = None
        self.generation = -1
        self.out_poller: zmq.Poller | None = None
        self.in_poller: zmq.Poller | None = None

    def close(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(Exception):
                self.socket.close(linger=0)
        self.socket = self.out_poller = self.in_poller = None


class _Regenerate(Exception):
    """The connection generation changed before a direct-lane request was sent."""


def _decoded(frames: list[bytes]) -> Any:
    """The JSON of a message read off a DEALER, or None (logged) when it is not JSON (None is
    no valid reply either)."""
    try:
        return P.decode_json(frames[-1])
    except P.ProtocolError as exc:
        log.debug("dropping malformed reply: %s", exc)
        return None


def _response(obj: Any) -> P.Response | None:
    """A decoded reply as a response, or None (logged) when it is not a valid one (None: a
    message :func:`_decoded` already dropped)."""
    if obj is None:
        return None
    try:
        return P.parse_response(obj)
    except P.ProtocolError as exc:
        log.debug("dropping malformed reply: %s", exc)
        return None


def _settle(fut: concurrent.futures.Future, result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)


class Client:
    """Client of a primary's :class:`~pando_core.runtime.bus.Bus`.  Thread-safe.

    :param endpoints: the primary's endpoints (``Endpoints`` or its dict from ``primary.json``).
    :param instance_id: this process's instance id (sent as ``meta.instance_id``; also part of
        the DEALER routing identity, which is unique per Client object).
    :param auth: :class:`ClientAuth` matching the primary's mechanism (default none).
    :param default_timeout: seconds for calls that pass no timeout.
    :param max_message_bytes: requests above this raise ``RpcError(kind="too_large")`` locally.
    """

    def __init__(
        self,
        endpoints: Endpoints | Mapping[str, Any],
        instance_id: str,
        auth: ClientAuth | None = None,
        *,
        default_timeout: float = 10.0,
        max_message_bytes: int = P.DEFAULT_MAX_MESSAGE_BYTES,
        hwm: int = 10_000,
        reconnect_interval: float = 0.025,
        reconnect_interval_max: float = 1.0,
        max_pending_events: int = 100_000,
    ) -> None:
        if not isinstance(endpoints, Endpoints):
            endpoints = Endpoints.from_dict(endpoints)
        self._endpoints = endpoints.validate()
        self.instance_id = str(instance_id)
        self._auth = auth or ClientAuth()
        self.default_timeout = float(default_timeout)
        self.max_message_bytes = int(max_message_bytes)
        self._hwm = int(hwm)
        self._reconnect_ivl = max(1, int(reconnect_interval * 1000))
        self._reconnect_ivl_max = max(self._reconnect_ivl, int(reconnect_interval_max * 1000))
        self.max_pending_events = int(max_pending_events)
        self._identity = ("c-" + self.instance_id[:64] + "-" + secrets.token_hex(4)).encode(
            "utf-8", "replace"
        )
        self._id_prefix = secrets.token_hex(3) + "-"
        self._ids = itertools.count(1)

        self._lock = threading.Lock()
        self._cmds: deque[tuple] = deque()
        self._pending: dict[str, _Call] = {}
        self._subs: list[Subscription] = []
        self._prefix_refs: dict[bytes, int] = {}
        self._wake_pending = False
        self._closed = False
        self._wakeup = Wakeup()

        # direct lanes (guarded by _lock); the latch of the current connection generation is
        # signalled (and replaced) when the sockets are replaced
        self._free_lanes: list[_Lane] = []
        self._lanes_made = 0
        self._lanes_busy = 0
        self._lanes_returned = threading.Condition(self._lock)
        self._generation = 0
        self._latch = Wakeup()
        self._old_latches: list[Wakeup] = []

        self._events: queue.SimpleQueue = queue.SimpleQueue()  # (targets, event) for the dispatcher
        self.last_event_at: float | None = None
        """``time.monotonic()`` of the last valid event received (any topic)."""
        self.last_heartbeat: Event | None = None
        """The last ``instance.heartbeat`` event received (check its instance_id/epoch)."""
        self.last_heartbeat_at: float | None = None
        """``time.monotonic()`` when :attr:`last_heartbeat` arrived."""
        self._stats = {
            "calls": 0,
            "replies": 0,
            "timeouts": 0,
            "late_replies": 0,
            "events": 0,
            "events_dropped": 0,
            "bad_events": 0,
        }

        self._ctx = zmq.Context()
        self._sub: zmq.Socket | None = None
        self._dealer: zmq.Socket | None = None
        try:
            self._open_sockets()
        except BaseException:
            self._close_sockets()
            self._ctx.term()
            self._wakeup.close()
            raise
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="pando-client-events", daemon=True
        )
        self._dispatcher.start()
        self._io = threading.Thread(target=self._io_loop, name="pando-client-io", daemon=True)
        self._io.start()

    # ------------------------------------------------------------------------------------
    # properties

    @property
    def endpoints(self) -> Endpoints:
        return self._endpoints

    @property
    def auth(self) -> ClientAuth:
        return self._auth

    @property
    def closed(self) -> bool:
        return self._closed

    def in_flight(self) -> int:
        """Number of calls waiting for a reply."""
        with self._lock:
            return len(self._pending)

    def stats(self) -> dict[str, int]:
        with self._lock:
            d = dict(self._stats)
            d["in_flight"] = len(self._pending)
        return d

    # ------------------------------------------------------------------------------------
    # sockets (I/O thread only, except during __init__)

    def _open_sockets(self) -> None:
        ep = self._endpoints
        sub = self._sub = self._ctx.socket(zmq.SUB)
        sub.linger = 0
        self._configure(sub)
        # liveness topics always; user prefixes on top
        sub.setsockopt(zmq.SUBSCRIBE, P.INSTANCE_PREFIX.encode())
        for prefix in self._prefix_refs:
            sub.setsockopt(zmq.SUBSCRIBE, prefix)
        sub.connect(ep.pub)
        self._dealer = self._new_dealer(self._identity)

    def _new_dealer(self, identity: bytes) -> zmq.Socket:
        dealer = self._ctx.socket(zmq.DEALER)
        try:
            dealer.linger = 0
            dealer.setsockopt(zmq.IMMEDIATE, 1)
            dealer.setsockopt(zmq.ROUTING_ID, identity)
            dealer.sndhwm = self._hwm
            dealer.setsockopt(zmq.HEARTBEAT_IVL, 1000)
            dealer.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
            self._configure(dealer)
            dealer.connect(self._endpoints.rpc)
        except BaseException:
            dealer.close(linger=0)
            raise
        return dealer

    def _configure(self, sock: zmq.Socket) -> None:
        """Options both sockets share: receive limits, reconnect pacing, credentials."""
        sock.rcvhwm = self._hwm
        sock.setsockopt(zmq.MAXMSGSIZE, P.zmq_max_msgsize(self.max_message_bytes))
        sock.setsockopt(zmq.RECONNECT_IVL, self._reconnect_ivl)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, self._reconnect_ivl_max)
        self._auth.apply(sock)

    def _close_sockets(self) -> None:
        for s in (self._sub, self._dealer):
            if s is not None:
                with contextlib.suppress(Exception):
                    s.close(linger=0)
        self._sub = self._dealer = None

    # ------------------------------------------------------------------------------------
    # command queue

    def _command(self, cmd: tuple, call: _Call | None = None) -> None:
        """Hand *cmd* to the I/O thread (registering *call* as pending in the same step)."""
        with self._lock:
            if self._closed:
                raise ClientClosed()
            if call is not None:
                self._pending[call.id] = call
                self._stats["calls"] += 1
            self._cmds.append(cmd)
            wake = not self._wake_pending
            self._wake_pending = True
        if wake:
            self._wakeup.signal()

    # ------------------------------------------------------------------------------------
    # RPC

    def call_async(
        self, method: str, params: Any = None, timeout: float | None = None
    ) -> concurrent.futures.Future:
        """Send a request; the future resolves to the result or fails with RpcError/RpcTimeout/
        ClientClosed.  Encoding errors (TypeError/ValueError) and oversized requests
        (``RpcError(kind="too_large")``) raise immediately."""
        timeout = self.default_timeout if timeout is None else float(timeout)
        rid, data = self._encode_call(method, params, timeout)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        deadline = time.monotonic() + timeout
        self._command(("send", rid, deadline), _Call(rid, method, data, deadline, fut))
        return fut

    def _meta(self, timeout: float) -> dict[str, Any]:
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        return {
            "instance_id": self.instance_id,
            "timeout_ms": int(timeout * 1000),
            # absolute too: the bus may read the request late (same host, same wall clock)
            "deadline_at_ms": int((time.time() + timeout) * 1000),
            **self._auth.request_meta(),
        }

    def _encode_call(self, method: str, params: Any, timeout: float) -> tuple[str, bytes]:
        rid = f"{self._id_prefix}{next(self._ids)}"
        data = P.encode_request(rid, method, params, self._meta(timeout))
        if len(data) > self.max_message_bytes:
            raise RpcError(
                P.TOO_LARGE, f"request of {len(data)} bytes exceeds the {self.max_message_bytes}-byte cap"
            )
        return rid, data

    def _encode_batch(self, calls: Sequence[tuple[str, Any]], timeout: float) -> tuple[list[str], bytes]:
        """The requests of a batch as one JSON array, each as :func:`P.encode_request` writes it;
        their shared ``meta`` is encoded once."""
        meta = P.encode_json(self._meta(timeout))
        rids = [f"{self._id_prefix}{next(self._ids)}" for _ in calls]
        parts = [
            P.encode_request(rid, method, params, encoded_meta=meta)
            for rid, (method, params) in zip(rids, calls, strict=True)
        ]
        return rids, b"[" + b",".join(parts) + b"]"

    def call(self, method: str, params: Any = None, timeout: float | None = None) -> Any:
        """Blocking call; returns the result, raises RpcError (kind preserved), RpcTimeout after
        *timeout* seconds (default :attr:`default_timeout`) or ClientClosed."""
        if threading.current_thread() is self._io:
            raise RuntimeError(
                "Client.call() must not be used from the client's I/O thread (future callbacks)"
            )
        timeout = self.default_timeout if timeout is None else float(timeout)
        lane = self._borrow_lane()
        if lane is not None:
            try:
                return self._call_direct(lane, method, params, timeout)
            finally:
                self._return_lane(lane)
        fut = self.call_async(method, params, timeout)
        try:
            return fut.result(timeout + 5.0)  # the I/O thread enforces the deadline; this is a backstop
        except concurrent.futures.TimeoutError:
            raise RpcTimeout(f"{method}: no reply within {timeout:.3g}s", sent=True) from None

    # ------------------------------------------------------------------------------------
    # direct lanes (a lane is used only by the thread that borrowed it)

    def _borrow_lane(self) -> _Lane | None:
        with self._lock:
            if self._closed:
                raise ClientClosed()
            if self._free_lanes:
                lane = self._free_lanes.pop()
            elif self._lanes_made < MAX_DIRECT_LANES:
                self._lanes_made += 1
                lane = _Lane(self._lanes_made)
            else:
                return None
            self._lanes_busy += 1
            return lane

    def _return_lane(self, lane: _Lane) -> None:
        with self._lock:
            self._lanes_busy -= 1
            if self._closed:
                lane.close()
                self._lanes_returned.notify_all()
                return
            self._free_lanes.append(lane)
            stale = []
            if not self._lanes_busy and self._old_latches:  # nobody polls them any more
                stale, self._old_latches = self._old_latches, []
        for old in stale:
            old.close()

    def call_batch(self, calls: Sequence[tuple[str, Any]], timeout: float | None = None) -> list[Any]:
        """Send several requests as one JSON-RPC batch message and wait for every answer.

        Returns a list in the order of *calls*: each request's result, or the :class:`RpcError`
        it failed with (kind preserved). Raises RpcTimeout, CallInterrupted or ClientClosed for
        the batch as a whole, and RpcError when the bus refused the whole batch (too large, too
        many requests). One message each way instead of one per request: the way to keep many
        requests in flight from one thread."""
        if not calls:
            return []
        if threading.current_thread() is self._io:
            raise RuntimeError("Client.call_batch() must not be used from the client's I/O thread")
        timeout = self.default_timeout if timeout is None else float(timeout)
        lane = self._borrow_lane()
        if lane is None:  # every lane busy: the requests go one by one through the I/O thread
            return self._gather([self.call_async(method, params, timeout) for method, params in calls], timeout)
        try:
            rids, data = self._encode_batch(calls, timeout)
            if len(data) > self.max_message_bytes:
                raise RpcError(P.TOO_LARGE, f"batch of {len(data)} bytes exceeds the {self.max_message_bytes}-byte cap")
            ours = set(rids)

            def accept(obj: Any) -> Any:
                if type(obj) is list:  # our answers (a batch timed out earlier on this lane has other ids)
                    return obj if obj and type(obj[0]) is dict and obj[0].get("id") in ours else None
                if type(obj) is dict and obj.get("id") is None and "error" in obj:  # the batch refused whole
                    return obj
                return None

            with self._lock:
                self._stats["calls"] += len(calls)
            reply = self._exchange(lane, data, timeout, f"batch of {len(calls)} ({calls[0][0]}, ...)", accept, spin=False)
        finally:
            self._return_lane(lane)
        if type(reply) is dict:
            refusal = _response(reply)
            raise refusal.error if refusal is not None and refusal.error else RpcError(P.INTERNAL_ERROR, "the batch was refused")
        answers = {r.id: r for r in map(_response, reply) if r is not None}
        with self._lock:
            self._stats["replies"] += len(answers)
        results: list[Any] = []
        for rid in rids:
            response = answers.get(rid)
            if response is None:
                results.append(RpcError(P.INTERNAL_ERROR, "the batch reply has no answer for this request"))
            else:
                results.append(response.result if response.error is None else response.error)
        return results

    @staticmethod
    def _gather(futures: list[concurrent.futures.Future], timeout: float) -> list[Any]:
        results: list[Any] = []
        for future in futures:
            try:
                results.append(future.result(timeout + 5.0))  # the I/O thread enforces the deadline
            except RpcError as exc:
                results.append(exc)
            except concurrent.futures.TimeoutError:
                results.append(RpcTimeout("no reply within the deadline", sent=True))
        return results

    def _call_direct(self, lane: _Lane, method: str, params: Any, timeout: float) -> Any:
        rid, data = self._encode_call(method, params, timeout)

        def accept(obj: Any) -> P.Response | None:
            if type(obj) is not dict or obj.get("id") != rid:
                return None  # a late reply to an earlier call of this lane that timed out
            return _response(obj)

        with self._lock:
            self._stats["calls"] += 1
        resp = self._exchange(lane, data, timeout, method, accept)
        with self._lock:
            self._stats["replies"] += 1
        if resp.error is not None:
            raise resp.error
        return resp.result

    def _exchange(
        self, lane: _Lane, data: bytes, timeout: float, label: str, accept: Callable[[Any], Any], spin: bool = True
    ) -> Any:
        """Send *data* on the borrowed *lane* and wait for the reply that *accept* (given the
        decoded JSON) turns into something other than None; that is returned. *spin*: a reply
        due within :data:`SPIN_SECONDS` is worth polling for (a lone call when no other lane
        is busy); a batch's reply takes longer, and the spin would only take a core from the
        primary."""
        deadline = time.monotonic() + timeout
        sent = False
        while not sent:
            with self._lock:
                if self._closed:
                    raise ClientClosed()
                generation, latch = self._generation, self._latch
            dealer, out_poller, in_poller = self._lane_socket(lane, generation, latch)
            try:
                while not sent:
                    try:
                        send_frames(dealer, [data])
                        sent = True
                    except zmq.Again:  # not connected yet (IMMEDIATE) or queue full
                        self._wait_direct(out_poller, latch, deadline, label, sent)
            except _Regenerate:  # reconnected before the request left: send it on the new socket
                continue
        spin = spin and self._lanes_busy == 1  # alone: the bounded spin costs nobody else a core
        while True:
            ready = spin_poll(in_poller, time.perf_counter() + SPIN_SECONDS) if spin else None
            spin = False
            if not (ready and len(ready) == 1 and ready[0][0] is dealer):  # a reply alone needs no second poll
                self._wait_direct(in_poller, latch, deadline, label, sent)
            try:
                frames = recv_frames(dealer)
            except zmq.Again:
                continue
            obj = _decoded(frames)
            if obj is None:
                continue
            answer = accept(obj)
            if answer is not None:
                return answer
            with self._lock:
                self._stats["late_replies"] += 1

    def _wait_direct(self, poller: zmq.Poller, latch: Wakeup, deadline: float, method: str, sent: bool) -> None:
        """Block until *dealer* is ready (as *poller* asks), the connection generation changes,
        or the deadline passes."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            with self._lock:
                self._stats["timeouts"] += 1
            what = "no reply" if sent else "not sent (no primary connected)"
            raise RpcTimeout(f"{method}: {what} within the deadline", sent=sent)
        events = dict(poller.poll(int(remaining * 1000) + 1))
        if latch.fd in events:
            if self._closed:
                raise ClientClosed()
            if sent:
                raise CallInterrupted(method)
            raise _Regenerate()

    def _lane_socket(self, lane: _Lane, generation: int, latch: Wakeup) -> tuple[zmq.Socket, zmq.Poller, zmq.Poller]:
        """The lane's DEALER for the current connection generation (re-created after a
        reconnect), with its send and receive pollers (each also watching the latch)."""
        if lane.socket is None or lane.generation != generation:
            lane.close()
            lane.socket = self._new_dealer(self._identity + b"-d%d" % lane.number)
            lane.generation = generation
            lane.out_poller, lane.in_poller = zmq.Poller(), zmq.Poller()
            lane.out_poller.register(lane.socket, zmq.POLLOUT)
            lane.in_poller.register(lane.socket, zmq.POLLIN)
            for poller in (lane.out_poller, lane.in_poller):
                poller.register(latch.fd, zmq.POLLIN)
        return lane.socket, lane.out_poller, lane.in_poller

    def notify(self, method: str, params: Any = None) -> None:
        """Send a JSON-RPC notification (no id, no reply, best effort)."""
        meta = {"instance_id": self.instance_id, **self._auth.request_meta()}
        data = P.encode_request(None, method, params, meta)
        if len(data) > self.max_message_bytes:
            raise RpcError(P.TOO_LARGE, "notification exceeds the size cap")
        self._command(("notify", data, time.monotonic() + self.default_timeout))

    def ping(self, timeout: float = 2.0) -> dict[str, Any]:
        """``instance.ping`` → ``{"status", "instance_id", "epoch", "pid", "ts", ...}``."""
        return self.call(P.METHOD_PING, None, timeout)

    # ------------------------------------------------------------------------------------
    # events

    def subscribe(self, prefix: str, callback: EventCallback, *, inline: bool = False) -> Subscription:
        """Deliver every event whose frame starts with *prefix* (``""`` = all; use
        :func:`protocol.exact_topic` for one exact topic) to ``callback(event)`` on this client's
        dispatcher thread, in arrival order.  Exceptions in callbacks are logged and ignored.

        ``inline=True`` runs the callback on the I/O thread as the event is read, sparing a thread
        hand-off per event: only for quick bookkeeping that never blocks or calls :meth:`call`
        (hand slower work to the dispatcher with :meth:`defer`).

        The subscription reaches the publisher asynchronously (ZeroMQ "slow joiner"): events
        published right after this call may be missed, and events are best-effort anyway.  State
        must be caught up with a snapshot RPC, using ``Event.seq`` to discard what it covers."""
        if not isinstance(prefix, str) or "\0" in prefix.rstrip("\0"):
            raise ValueError("prefix must be a string (a trailing NUL selects an exact topic)")
        if not callable(callback):
            raise TypeError("callback must be callable")
        sub = Subscription(self, prefix, callback, inline)
        with self._lock:
            if self._closed:
                raise ClientClosed()
            self._subs = [*self._subs, sub]
        self._command(("sub", prefix.encode("utf-8")))
        return sub

    def defer(self, callback: Callable[[Event], Any], event: Event) -> None:
        """Run ``callback(event)`` on the dispatcher thread, after the events queued before it."""
        self._events.put((callback, event))

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to *sub* (idempotent)."""
        with self._lock:
            if not sub._active:
                return
            sub._active = False
            self._subs = [s for s in self._subs if s is not sub]
        with contextlib.suppress(ClientClosed):
            self._command(("unsub", sub.prefix.encode("utf-8")))

    # ------------------------------------------------------------------------------------
    # failover / lifecycle

    def reconnect(
        self, endpoints: Endpoints | Mapping[str, Any], auth: ClientAuth | None = None, timeout: float = 5.0
    ) -> None:
        """Re-point every socket at *endpoints* (and optionally new *auth*, e.g. the new primary's
        server key).  Returns once the new sockets are connected-to (the connection itself
        completes asynchronously).  Calls already sent fail with :class:`CallInterrupted`; unsent
        ones go to the new primary."""
        if not isinstance(endpoints, Endpoints):
            endpoints = Endpoints.from_dict(endpoints)
        endpoints.validate()
        if threading.current_thread() is self._io:
            raise RuntimeError("reconnect() must not be called from the client's I/O thread")
        previous = self._retarget(endpoints, auth)
        done = threading.Event()
        box: list[BaseException] = []
        self._command(("reconnect", done, box, previous))
        if not done.wait(timeout):
            raise TimeoutError("reconnect was not processed in time")
        if box:
            raise box[0]

    def _retarget(self, endpoints: Endpoints, auth: ClientAuth | None) -> tuple[Endpoints, ClientAuth]:
        """Point new sockets at *endpoints* and start a new connection generation: a direct-lane
        call waiting on the old connection gives up at once, and each lane re-creates its socket
        on next use. Returns the previous target."""
        with self._lock:
            if self._closed:
                raise ClientClosed()
            previous = (self._endpoints, self._auth)
            self._endpoints, self._auth = endpoints, auth or self._auth
            self._generation += 1
            replaced, self._latch = self._latch, Wakeup()
            self._old_latches.append(replaced)
        replaced.signal()
        return previous

    def close(self, timeout: float = 5.0) -> None:
        """Close sockets, fail pending calls with ClientClosed, stop threads.  Idempotent."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
            latch = self._latch
        latch.signal()  # direct-lane calls in progress give up (ClientClosed)
        # the context terminates only once every socket is closed, the lanes' too: close the
        # free ones, wait for the borrowed ones to come back (their borrowers close them)
        with self._lock:
            for lane in self._free_lanes:
                lane.close()
            self._free_lanes.clear()
            if not self._lanes_returned.wait_for(lambda: not self._lanes_busy, max(0.1, timeout / 2)):
                log.error("a direct-lane call did not end within %.1fs; closing anyway", timeout / 2)
            latches, self._old_latches = [*self._old_latches, self._latch], []
        for old in latches:
            old.close()
        with self._lock:
            self._cmds.append(("stop",))
        self._wakeup.signal()
        me = threading.current_thread()
        if me is not self._io:  # close() may run in a future callback on the I/O thread
            self._io.join(max(0.0, deadline - time.monotonic()))
            if self._io.is_alive():
                log.error("client I/O thread did not stop within %.1fs", timeout)
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for call in pending:
            _settle(call.future, exc=ClientClosed())
        self._events.put(None)
        if me is not self._dispatcher:
            self._dispatcher.join(max(0.0, min(1.0, deadline - time.monotonic())))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self._endpoints.rpc!r}, instance_id={self.instance_id!r}, closed={self._closed})"

    # ------------------------------------------------------------------------------------
    # I/O thread

    def _io_loop(self) -> None:
        wakeup = self._wakeup
        poller = zmq.Poller()
        poller.register(wakeup.fd, zmq.POLLIN)
        poller.register(self._sub, zmq.POLLIN)
        poller.register(self._dealer, zmq.POLLIN)
        backlog: deque[str | tuple] = deque()  # request ids (or raw notifications) not yet sent
        deadlines: list[tuple[float, str]] = []
        want_out = False
        try:
            while True:
                timeout: int | None = None
                if deadlines:
                    timeout = max(0, int((deadlines[0][0] - time.monotonic()) * 1000) + 1)
                events = dict(poller.poll(timeout))  # pyzmq retries EINTR itself
                if wakeup.fd in events:
                    wakeup.drain()
                with self._lock:
                    self._wake_pending = False
                    cmds = self._cmds
                    self._cmds = deque()
                stop = False
                for cmd in cmds:
                    kind = cmd[0]
                    if kind == "send":
                        backlog.append(cmd[1])
                        heapq.heappush(deadlines, (cmd[2], cmd[1]))
                    elif kind == "notify":
                        backlog.append((cmd[1], cmd[2]))
                    elif kind == "sub":
                        self._add_prefix(cmd[1])
                    elif kind == "unsub":
                        self._remove_prefix(cmd[1])
                    elif kind == "reconnect":
                        poller.unregister(self._sub)
                        poller.unregister(self._dealer)
                        want_out = False
                        self._do_reconnect(cmd[2], cmd[3])
                        poller.register(self._sub, zmq.POLLIN)
                        poller.register(self._dealer, zmq.POLLIN)
                        cmd[1].set()
                    elif kind == "stop":
                        stop = True
                if stop:
                    break
                if self._dealer in events:
                    self._recv_replies()
                if self._sub in events:
                    self._recv_events()
                if backlog:
                    self._send_backlog(backlog)
                self._expire(deadlines)
                need_out = bool(backlog)
                if need_out != want_out:
                    poller.modify(self._dealer, zmq.POLLIN | (zmq.POLLOUT if need_out else 0))
                    want_out = need_out
        except Exception:
            log.exception("client I/O thread crashed")
            with self._lock:
                self._closed = True
                pending = list(self._pending.values())
                self._pending.clear()
            for call in pending:
                _settle(call.future, exc=ClientClosed("client I/O thread crashed"))
            self._events.put(None)
        finally:
            # this thread owns every socket of the context: close them and terminate it here
            self._close_sockets()
            with contextlib.suppress(Exception):
                self._ctx.term()
            wakeup.close()

    def _add_prefix(self, prefix: bytes) -> None:
        n = self._prefix_refs.get(prefix, 0)
        self._prefix_refs[prefix] = n + 1
        if n == 0 and self._sub is not None:
            self._sub.setsockopt(zmq.SUBSCRIBE, prefix)

    def _remove_prefix(self, prefix: bytes) -> None:
        n = self._prefix_refs.get(prefix, 0)
        if n <= 1:
            self._prefix_refs.pop(prefix, None)
            if n == 1 and self._sub is not None:
                self._sub.setsockopt(zmq.UNSUBSCRIBE, prefix)
        else:
            self._prefix_refs[prefix] = n - 1

    def _do_reconnect(self, box: list, previous: tuple[Endpoints, ClientAuth]) -> None:
        self._close_sockets()
        try:
            self._open_sockets()
        except Exception as exc:  # bad auth etc.: go back to the previous target
            log.error("reconnect to %s failed: %s", self._endpoints.rpc, exc)
            box.append(exc)
            self._close_sockets()
            with contextlib.suppress(ClientClosed):
                self._retarget(*previous)
            self._open_sockets()
        # calls sent on the old socket can get no reply any more; the backlog goes to the new one
        with self._lock:
            lost = [call for call in self._pending.values() if call.sent]
            for call in lost:
                del self._pending[call.id]
        for call in lost:
            _settle(call.future, exc=CallInterrupted(call.method))

    def _send_backlog(self, backlog: deque) -> None:
        dealer = self._dealer
        now = time.monotonic()
        while backlog:
            item = backlog[0]
            if isinstance(item, tuple):  # notification
                data, deadline = item
                if now >= deadline:
                    backlog.popleft()
                    continue
            else:
                with self._lock:
                    call = self._pending.get(item)
                if call is None:  # already timed out / closed
                    backlog.popleft()
                    continue
                if now >= call.deadline:
                    backlog.popleft()
                    continue  # _expire reports it as not sent
                data = call.data
            try:
                send_frames(dealer, [data])
            except zmq.Again:
                return  # no primary connected (IMMEDIATE) or HWM reached: wait for POLLOUT
            backlog.popleft()
            if not isinstance(item, tuple):
                call.sent = True

    def _expire(self, deadlines: list[tuple[float, str]]) -> None:
        """Fail calls whose deadline passed; drop heap entries of calls already answered (so the
        poll timeout always targets a call that is still waiting)."""
        now = time.monotonic()
        while deadlines:
            deadline, rid = deadlines[0]
            with self._lock:
                call = self._pending.get(rid)
                if call is not None and deadline <= now:
                    del self._pending[rid]
                    self._stats["timeouts"] += 1
            if call is not None and deadline > now:
                return
            heapq.heappop(deadlines)
            if call is not None:
                what = "no reply" if call.sent else "not sent (no primary connected)"
                _settle(
                    call.future, exc=RpcTimeout(f"{call.method}: {what} within the deadline", sent=call.sent)
                )

    def _recv_replies(self) -> None:
        dealer = self._dealer
        for _ in range(256):
            try:
                resp = _response(_decoded(recv_frames(dealer)))
            except zmq.Again:
                return
            if resp is None:
                continue
            rid = resp.id
            with self._lock:
                call = self._pending.pop(rid, None) if isinstance(rid, str) else None
                self._stats["replies" if call is not None else "late_replies"] += 1
            if call is None:
                log.debug("dropping reply for unknown or timed-out request %r", rid)
                continue
            if resp.error is not None:
                _settle(call.future, exc=resp.error)
            else:
                _settle(call.future, resp.result)

    def _recv_events(self) -> None:
        sub = self._sub
        verify = self._auth.event_key
        counts = {"events": 0, "events_dropped": 0, "bad_events": 0}
        try:
            for _ in range(512):
                try:
                    frame = sub.recv(zmq.NOBLOCK)
                except zmq.Again:
                    return
                try:
                    event = P.decode_event(frame, verify_key=verify)
                except P.ProtocolError as exc:
                    counts["bad_events"] += 1
                    log.debug("dropping bad event: %s", exc)
                    continue
                counts["events"] += 1
                now = time.monotonic()
                self.last_event_at = now
                if event.topic == P.INSTANCE_HEARTBEAT:
                    self.last_heartbeat = event
                    self.last_heartbeat_at = now
                targets = []
                for subscription in self._subs:
                    if frame.startswith(subscription._prefix_b):
                        if subscription.inline:
                            self._run_callback(subscription, event)
                        else:
                            targets.append(subscription)
                if not targets:
                    continue
                # only this thread adds to the queue, so its size is an upper bound of what the
                # dispatcher has not taken yet
                if self._events.qsize() >= self.max_pending_events:
                    counts["events_dropped"] += 1
                else:
                    self._events.put((targets, event))
        finally:
            with self._lock:  # one lock round per burst, not per event
                for key, n in counts.items():
                    self._stats[key] += n

    # ------------------------------------------------------------------------------------
    # dispatcher thread

    def _dispatch_loop(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            targets, event = item
            if callable(targets):  # defer()
                try:
                    targets(event)
                except Exception:
                    log.exception("deferred event callback failed")
                continue
            for sub in targets:
                self._run_callback(sub, event)

    @staticmethod
    def _run_callback(sub: Subscription, event: Event) -> None:
        if not sub._active:
            return
        try:
            sub.callback(event)
        except Exception:
            log.exception("event callback for %r failed", sub.prefix)
