"""The primary's IPC bus: PUB (events) + ROUTER (JSON-RPC 2.0), served by one I/O thread.

Threading model
    * One I/O thread owns every ZeroMQ socket of the bus (PUB, ROUTER and, with CURVE, the ZAP
      handler socket).  No other thread touches them.
    * Other threads hand work to it through a locked FIFO plus a wake-up byte on a
      ``socket.socketpair`` that the I/O thread polls next to the ROUTER.  ``publish()`` and the
      replies of handlers on other threads go through that FIFO; events leave in the order they
      were published, and queued replies ahead of them (a caller waits on each).  A reply made
      on the I/O thread itself (an inline handler, the write coordinator's round) is sent at once.
    * Requests are decoded and validated on the I/O thread; handlers run on a small pool of
      worker threads (``workers``), except those registered with ``inline=True`` (cheap,
      non-blocking ones such as ``instance.ping``) which run on the I/O thread itself.  Hooks
      added with :meth:`Bus.add_round_hook` run on the I/O thread after each burst of received
      requests (the write coordinator commits a burst's writes there as one transaction).
    * A handler returns a JSON-able result, raises :class:`RpcError` (kind preserved on the
      wire), or returns a :class:`concurrent.futures.Future`; the reply for a future is sent when
      it completes, from whatever thread completes it (the write coordinator replies after
      COMMIT this way).  Do not block inside a future's completion.

Framing
    A request is one JSON frame, optionally after an empty delimiter frame (REQ-style); the
    reply mirrors it.  :class:`~pando_core.runtime.client.Client` sends none: one frame fewer
    each way.

Batches
    A JSON-RPC 2.0 batch (an array of up to ``MAX_BATCH`` requests in one message) is handled
    request by request, as if each had come alone in the same burst; the answers go back as one
    array once every request in it that expects one is answered (none at all for a batch of
    notifications).  A secondary sends its pipelined writes this way: one message each way
    instead of one per write.  A batch of requests for one method registered with a ``many``
    handler goes to that handler whole (see :meth:`Bus.register`).

Robustness
    Malformed multipart frames, invalid UTF-8/JSON, non-objects, missing or invalid
    ``jsonrpc``/``method``/``id``, unknown methods, wrongly typed params and oversized messages
    get a JSON-RPC error reply when a reply is possible (notifications never get one), else they
    are dropped with a (rate-limited) log line.  A request whose ``meta.timeout_ms`` deadline has
    passed before a worker picks it up is answered with a ``timeout`` error without running the
    handler.  Requests for worker threads wait in a :class:`~.fair_queue.FairQueue`: bounded by
    count (``max_pending_requests``) and bytes (``max_pending_bytes``), with a share per client,
    served client by client; past a bound -> ``unavailable`` "busy" at once (retryable).
    In token-auth mode anything that does not carry the right token is dropped without reply.

Faults
    The I/O thread survives per-message failures: a message it has no memory to receive or
    decode is dropped and answered ``too_large`` where the caller can be told. If the thread
    dies anyway, :attr:`Bus.on_failure` is called with the reason (the runtime fences its
    primary and gives the lock up, so that a secondary takes over). Lone surrogates in any
    string travel as JSON ``\\uXXXX`` escapes, so a request or reply holding one is answered.

Lifecycle
    ``Bus(...)`` → ``register(...)`` → ``start()`` (binds PUB then ROUTER; on tcp a port taken by
    someone else falls back to a free port, see :attr:`Bus.endpoints`) → ``publish``/serve →
    ``stop()`` (idempotent, bounded: flushes queued events with a short linger, closes sockets,
    then terminates the context).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import zmq

from ..errors import PandoError
from . import protocol as P
from .auth import ServerAuth
from .endpoints import LOOPBACK, EndpointError, Endpoints
from .fair_queue import FairQueue
from .sockets import MessageDropped, Wakeup, recv_frames, send_frames, spin_poll

__all__ = ["Bus", "BusClosed", "BusError", "CallContext", "Handler"]

log = logging.getLogger(__name__)

ParamsKind = Literal["any", "object", "array"]
_PARAMS_TYPES: dict[str, type] = {"object": dict, "array": list}  # absent params -> an empty one


class BusError(RuntimeError):
    """The bus could not be started (bind failure, bad endpoints, ...)."""


class BusClosed(BusError):
    """The bus has been stopped."""


@dataclass(slots=True)  # one per request: not frozen, as a frozen one costs several times more to build
class CallContext:
    """What a handler knows about the call it serves (read-only by convention).

    ``client_identity`` is the ROUTER routing id of the caller's socket; ``instance_id`` is the
    caller's instance id when it sent one (``meta.instance_id``); ``deadline`` is a
    ``time.monotonic()`` value derived from the caller's ``meta.timeout_ms`` (None = no
    deadline); ``meta`` is the request ``meta`` without credentials.
    """

    method: str
    request_id: str | int | None
    client_identity: bytes
    instance_id: str | None
    received_at: float
    deadline: float | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    client: Any = None  # whose share of the worker queue it counts in (see FairQueue)
    size: int = 0  # bytes it counts for there

    @property
    def is_notification(self) -> bool:
        return self.request_id is None

    def remaining(self) -> float | None:
        """Seconds until the caller gives up (None = unknown)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


Handler = Callable[[Any, CallContext], Any]


@dataclass(frozen=True, slots=True)
class _Method:
    handler: Handler
    params: ParamsKind
    inline: bool
    deferred: bool = False
    many: Callable[[list[dict[str, Any]], CallContext, BatchReply], None] | None = None


class Reply:
    """The answer a ``deferred=True`` handler gives later (see :meth:`Bus.register`): call
    :meth:`result` or :meth:`error` once, from any thread; later calls are ignored.  Lighter than
    returning a Future when the handler holds many requests at once."""

    __slots__ = ("_bus", "_call", "_prefix", "_counted", "_answered")

    def __init__(self, bus: Bus, call: CallContext, prefix: _ReplyTo, counted: bool) -> None:
        self._bus, self._call, self._prefix, self._counted = bus, call, prefix, counted
        self._answered = False

    def result(self, value: Any) -> None:
        if not self._answered:
            self._answered = True
            self._bus._finish(self._call, self._prefix, self._counted, value)

    def error(self, exc: BaseException) -> None:
        """Reply with *exc* (an RpcError keeps its kind; anything else is an internal error)."""
        if not self._answered:
            self._answered = True
            self._bus._finish(self._call, self._prefix, self._counted, exc=exc)


MAX_BATCH = 256
"""Most requests one JSON-RPC batch may hold (a longer one is refused as a whole)."""


class _Batch:
    """The answers to one JSON-RPC batch: each request's answer is added as it comes (from any
    thread); the array goes out once the batch is sealed (every request dispatched) and every
    expected answer is in."""

    __slots__ = ("_bus", "_prefix", "_parts", "_left", "_errors", "_sealed", "_lock", "_answered")

    def __init__(self, bus: Bus, prefix: list[bytes], expected: int, *, indexed: bool = False) -> None:
        """*indexed*: answers come with the index of their request (see :class:`BatchReply`)."""
        self._bus, self._prefix = bus, prefix
        self._parts: list[bytes] = []
        self._left = expected
        self._errors = 0
        self._sealed = False
        self._lock = threading.Lock()
        self._answered = bytearray(expected) if indexed else None  # per request, when answered by index

    def add(self, data: bytes, ok: bool, index: int = -1) -> None:
        """One answer; with *index*, only the first answer to that request counts."""
        with self._lock:
            if index >= 0:
                if self._answered[index]:
                    return
                self._answered[index] = 1
            self._parts.append(data)
            self._left -= 1
            if not ok:
                self._errors += 1
            done = self._sealed and self._left == 0
        if done:
            self._send()

    def seal(self) -> None:
        with self._lock:
            self._sealed = True
            done = self._left == 0
        if done:
            self._send()

    def _send(self) -> None:
        bus = self._bus
        data = b"[" + b",".join(self._parts) + b"]"
        if len(data) > bus.max_message_bytes:
            error = P.RpcError(P.TOO_LARGE, f"batch reply of {len(data)} bytes exceeds the cap")
            bus._enqueue_reply([*self._prefix, P.encode_error(None, error)], 0, 1)
            return
        bus._enqueue_reply([*self._prefix, data], len(self._parts) - self._errors, self._errors)


_ReplyTo = list[bytes] | _Batch  # where an answer goes: the caller's routing frames, or its batch


class BatchReply:
    """The answers to a batch a ``many`` handler serves (see :meth:`Bus.register`): answer
    request *i* with :meth:`result` or :meth:`error`, once, from any thread; a later answer to
    the same request is ignored. The batch's reply goes out once every request is answered."""

    __slots__ = ("_bus", "_batch", "_method", "_ids")

    def __init__(self, bus: Bus, batch: _Batch, method: str, ids: list[str | int]) -> None:
        self._bus, self._batch, self._method, self._ids = bus, batch, method, ids

    def __len__(self) -> int:
        return len(self._ids)

    def result(self, index: int, value: Any) -> None:
        """Answer request *index* with *value* (an :class:`~.protocol.EncodedJSON` goes as it is)."""
        self._batch.add(*self._bus._answer(self._method, self._ids[index], value, None), index)

    def error(self, index: int, exc: BaseException) -> None:
        """Answer request *index* with *exc* (an RpcError keeps its kind)."""
        self._batch.add(*self._bus._answer(self._method, self._ids[index], None, exc), index)


ROUND_REQUESTS = 32
"""A receive round ends at the first message boundary after this many requests (``Bus.round_requests``;
see ``Bus._receive``): two pipelined batches of 16 per group commit measured best in bench/ipc.py."""

SPIN_SECONDS = 0.0003
"""How long the bus polls without sleeping after a burst of requests (``Bus(spin_seconds=...)``)."""


class _SharedMeta:
    """What :meth:`Bus._admit` made of one ``meta`` of a batch, for the next requests whose
    ``meta`` is equal (a client sends one ``meta`` for the whole batch). Only an authorized
    ``meta`` is kept: a refused one is checked again, and refused again, for each request."""

    __slots__ = ("raw", "now", "meta", "deadline", "instance_id")

    def __init__(self) -> None:
        self.raw: dict[str, Any] | None = None

    def keep(self, raw: dict[str, Any], now: float, meta: dict[str, Any], deadline: float | None, iid: str | None) -> None:
        self.raw, self.now, self.meta, self.deadline, self.instance_id = raw, now, meta, deadline, iid


class _Throttle:
    """Rate-limited logging (one line per key per interval, counting what was suppressed)."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, key: str, level: int, msg: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -1e9) < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            n = self._suppressed.pop(key, 0)
        if n:
            msg += f" ({n} similar messages suppressed)"
        log.log(level, msg, *args)


class Bus:
    """PUB + ROUTER server of a primary.  All public methods are thread-safe.

    :param endpoints: where to bind (:func:`choose_endpoints`); the actually bound endpoints are
        :attr:`endpoints` after :meth:`start` — write *those* into ``primary.json``.
    :param instance_id: this process's instance id (goes into every envelope and ping).
    :param epoch: the primary epoch (goes into every envelope); seqs restart at 1 per bus.
    :param auth: :class:`ServerAuth` (default: none — only acceptable for ipc or tests).
    :param max_message_bytes: cap for one request/reply; larger requests get ``too_large``.
    :param heartbeat_interval: seconds between ``instance.heartbeat`` events (first one at start).
    :param workers: handler threads.
    :param max_pending_requests: / ``max_pending_bytes``: most requests, and bytes of them, that
        may wait for or run on a worker; past either, a request is answered ``unavailable``
        ("busy") at once. ``client_max_pending``: the most one client may have there (its bytes
        are capped at a quarter of ``max_pending_bytes``); ``client_workers``: how many workers
        one client may keep busy at once (default a quarter of them). Clients take turns.
    :param port_fallback: on tcp, bind a free port when the requested one is in use.
    :param metadata: static JSON-able info added to ``instance.ping``/``instance.info`` results
        (e.g. ``{"workdir": ...}`` so clients can check they reached the right primary).
    :param spin_seconds: after a burst of requests, poll this long without sleeping before
        blocking (0 = never spin): cheaper than a wake-up when the next request is close behind.
    """

    def __init__(
        self,
        endpoints: Endpoints | Mapping[str, Any],
        instance_id: str,
        epoch: int,
        *,
        auth: ServerAuth | None = None,
        max_message_bytes: int = P.DEFAULT_MAX_MESSAGE_BYTES,
        heartbeat_interval: float = 1.0,
        workers: int = 8,
        max_pending_requests: int = 10_000,
        max_pending_bytes: int = 64 << 20,
        client_max_pending: int = 256,
        client_workers: int | None = None,
        max_pending_events: int = 100_000,
        hwm: int = 10_000,
        port_fallback: bool = True,
        metadata: Mapping[str, Any] | None = None,
        spin_seconds: float = SPIN_SECONDS,
    ) -> None:
        if not isinstance(endpoints, Endpoints):
            endpoints = Endpoints.from_dict(endpoints)
        self._requested = endpoints.validate()
        self._endpoints: Endpoints | None = None
        self.instance_id = str(instance_id)
        self.epoch = int(epoch)
        self.auth = auth or ServerAuth()
        if max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be at least 1024")
        self.max_message_bytes = int(max_message_bytes)
        self.heartbeat_interval = float(heartbeat_interval)
        self._n_workers = max(1, int(workers))
        self.max_pending_requests = int(max_pending_requests)
        self.max_pending_bytes = int(max_pending_bytes)
        self.max_pending_events = int(max_pending_events)
        self._hwm = int(hwm)
        self._port_fallback = port_fallback
        self.metadata = dict(metadata or {})
        self.spin_seconds = float(spin_seconds)
        self.round_requests = ROUND_REQUESTS
        P.encode_json(self.metadata)  # fail early if not JSON-able

        self._methods: dict[str, _Method] = {}
        self._methods_lock = threading.Lock()
        self._round_hooks: list[Callable[[], None]] = []
        self._after_reply_hooks: list[Callable[[], None]] = []
        self._idle_hooks: list[Callable[[], None]] = []
        self.register(P.METHOD_PING, self._ping, inline=True)
        self.register(P.METHOD_INFO, self._info, inline=True)

        # outgoing FIFO shared by publish() and replies; guarded by _out_lock
        self._out_lock = threading.Lock()
        self._out: deque[tuple] = deque()
        self._out_events = 0
        self._wake_pending = False
        self._seq = 0
        self._change_seq = 0
        self._wakeup = Wakeup()

        self._state = "new"  # new -> running -> stopped
        self._state_lock = threading.Lock()
        self._stopping = False
        self._flush_linger_ms = 0
        self._io_failed = False
        self._failure = ""
        self.on_failure: Callable[[str], None] | None = None  # on_failure(reason): the I/O thread died
        self._io_ident: int | None = None
        self._ctx: zmq.Context | None = None
        self._pub: zmq.Socket | None = None
        self._router: zmq.Socket | None = None
        self._zap: zmq.Socket | None = None
        self._io: threading.Thread | None = None
        self._queue = FairQueue(
            max_requests=self.max_pending_requests,
            max_bytes=self.max_pending_bytes,
            client_max_requests=int(client_max_pending),
            client_max_bytes=self.max_pending_bytes // 4,
            client_running=int(client_workers) if client_workers else max(1, self._n_workers // 4),
        )
        self._message_share = 0  # bytes of the message being dispatched, per request in it
        self._workers: list[threading.Thread] = []
        self._started_at = P.now_ms()
        self._started_mono = time.monotonic()
        self._throttle = _Throttle()
        self._stats = {
            "requests": 0,
            "batches": 0,
            "batches_whole": 0,  # handed to a many handler in one call
            "replies": 0,
            "errors": 0,
            "malformed": 0,
            "unauthorized": 0,
            "busy": 0,
            "send_failures": 0,
            "dropped": 0,  # messages refused for lack of memory
            "events": 0,
            "events_dropped": 0,
        }

    # ------------------------------------------------------------------------------------
    # properties

    @property
    def endpoints(self) -> Endpoints:
        """Actually bound endpoints (the requested ones before :meth:`start`)."""
        return self._endpoints or self._requested

    @property
    def running(self) -> bool:
        return self._state == "running" and not self._io_failed

    @property
    def last_seq(self) -> int:
        """Seq of the most recently published event (0 = none yet)."""
        return self._seq

    def stats(self) -> dict[str, int]:
        """Counters (requests -- each request of a batch counts --, batches, replies, errors,
        malformed, unauthorized, busy, events, ...)."""
        with self._out_lock:
            d = dict(self._stats)
            d["pending_requests"] = self._queue.requests
            d["pending_bytes"] = self._queue.bytes
            d["pending_events"] = self._out_events
        return d

    # ------------------------------------------------------------------------------------
    # registration

    def register(
        self,
        method: str,
        handler: Handler,
        *,
        params: ParamsKind = "any",
        inline: bool = False,
        deferred: bool = False,
        replace: bool = False,
        many: Callable[[list[dict[str, Any]], CallContext, BatchReply], None] | None = None,
    ) -> None:
        """Serve *method* with ``handler(params, call)``.

        ``params="object"``: params must be a JSON object (absent -> ``{}``), else the caller
        gets ``invalid_params`` without the handler running; ``"array"`` likewise with ``[]``;
        ``"any"``: passed as received (None when absent).  ``inline=True`` runs the handler on the
        I/O thread (only for handlers that never block).  ``deferred=True``: the handler is
        called as ``handler(params, call, reply)`` and answers through the :class:`Reply` (its
        return value is ignored; an exception it raises is the answer).  A handler may also
        return a ``concurrent.futures.Future``: its outcome is the answer.  Registering an existing method raises
        ValueError unless ``replace=True``.  Safe to call before or after :meth:`start`.

        ``many`` (with ``params="object"``, ``inline=True``, ``deferred=True``): a batch message
        made only of requests for *method* with ids, object params and one ``meta`` is handed
        over whole as ``many([params, ...], call, answers)`` (*call*: the first request's
        context; the others differ only by id), to be answered per request through the
        :class:`BatchReply`. It saves the per-request dispatch of a pipelined caller's batches;
        any other batch goes request by request to *handler*, with the same outcome.
        """
        if many is not None and not (params == "object" and inline and deferred and callable(many)):
            raise ValueError("a many handler needs params='object', inline=True and deferred=True")
        if not isinstance(method, str) or not method:
            raise ValueError("method must be a non-empty string")
        if params not in ("any", "object", "array"):
            raise ValueError("params must be 'any', 'object' or 'array'")
        if not callable(handler):
            raise TypeError("handler must be callable")
        with self._methods_lock:
            if method in self._methods and not replace:
                raise ValueError(f"method {method!r} is already registered")
            methods = dict(self._methods)
            methods[method] = _Method(handler, params, inline, deferred, many)
            self._methods = methods  # copy-on-write: the I/O thread reads without locking

    def add_round_hook(self, hook: Callable[[], None], *, after_replies: bool = False) -> None:
        """Run ``hook()`` on the I/O thread after each burst of requests it received, before the
        replies go out: inline handlers may hold work and finish it for the whole burst at once.
        A burst is the requests queued together, up to the first message boundary after
        :attr:`round_requests` of them.
        ``after_replies=True``: run it once the burst's replies were sent (for follow-up work
        nobody waits for, such as publishing events)."""
        if after_replies:
            self._after_reply_hooks = [*self._after_reply_hooks, hook]
        else:
            self._round_hooks = [*self._round_hooks, hook]

    def add_idle_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook()`` on the I/O thread when it goes back to waiting after bursts of requests
        (no request came during the spin, see *spin_seconds*): to give back what a round hook
        kept ready for a next round that came close behind."""
        self._idle_hooks = [*self._idle_hooks, hook]

    def unregister(self, method: str) -> bool:
        """Stop serving *method* (calls then get ``method_not_found``). Returns True if it was
        registered."""
        with self._methods_lock:
            if method not in self._methods:
                return False
            methods = dict(self._methods)
            del methods[method]
            self._methods = methods
            return True

    def methods(self) -> list[str]:
        return sorted(self._methods)

    # ------------------------------------------------------------------------------------
    # lifecycle

    def start(self) -> Endpoints:
        """Bind (PUB, then ROUTER) and start serving.  Returns the bound :attr:`endpoints`.

        Raises BusError when binding fails (everything opened so far is closed again)."""
        with self._state_lock:
            if self._state != "new":
                raise (
                    BusClosed("bus already started or stopped")
                    if self._state == "stopped"
                    else BusError("bus already started")
                )
            ctx = zmq.Context()
            try:
                self._open_sockets(ctx)
            except BaseException:
                for s in (self._pub, self._router, self._zap):
                    if s is not None:
                        s.close(linger=0)
                self._pub = self._router = self._zap = None
                ctx.term()
                self._state = "stopped"
                with self._out_lock:
                    self._stopping = True
                self._wakeup.close()
                raise
            self._ctx = ctx
            for i in range(self._n_workers):
                t = threading.Thread(target=self._worker_loop, name=f"pando-bus-worker-{i}", daemon=True)
                t.start()
                self._workers.append(t)
            self._io = threading.Thread(target=self._io_loop, name="pando-bus-io", daemon=True)
            self._state = "running"
            self._io.start()
            return self.endpoints

    def _open_sockets(self, ctx: zmq.Context) -> None:
        if self.auth.needs_zap:
            # bound before any listening socket so no handshake can slip through unauthenticated
            self._zap = ctx.socket(zmq.REP)
            self._zap.linger = 0
            self._zap.bind("inproc://zeromq.zap.01")
        pub = self._pub = ctx.socket(zmq.PUB)
        pub.linger = 0
        pub.sndhwm = self._hwm
        self.auth.apply(pub)
        router = self._router = ctx.socket(zmq.ROUTER)
        router.linger = 0
        router.sndhwm = self._hwm
        router.rcvhwm = self._hwm
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        router.setsockopt(zmq.MAXMSGSIZE, P.zmq_max_msgsize(self.max_message_bytes))
        self.auth.apply(router)
        pub_ep = self._bind(pub, self._requested.pub)
        rpc_ep = self._bind(router, self._requested.rpc)
        if self._requested.transport == "tcp":
            pub_port, rpc_port = int(pub_ep.rpartition(":")[2]), int(rpc_ep.rpartition(":")[2])
            self._endpoints = Endpoints.tcp(pub_port, rpc_port)
        else:
            self._endpoints = Endpoints(pub_ep, rpc_ep, "ipc")

    def _bind(self, sock: zmq.Socket, endpoint: str) -> str:
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            if self._requested.transport == "tcp" and exc.errno == zmq.EADDRINUSE and self._port_fallback:
                log.info("%s is in use; binding a free port instead", endpoint)
                try:
                    sock.bind(f"tcp://{LOOPBACK}:*")
                except zmq.ZMQError as exc2:
                    raise BusError(f"cannot bind a free tcp port: {exc2}") from exc2
            else:
                raise BusError(f"cannot bind {endpoint}: {exc}") from exc
        bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if not bound:
            raise EndpointError(f"no LAST_ENDPOINT after binding {endpoint}")
        return bound

    def stop(self, timeout: float = 5.0, *, flush: float = 0.2) -> None:
        """Stop serving; idempotent and bounded (never hangs).

        Events and replies queued before the call are sent first; PUB then lingers at most
        *flush* seconds so a final event (e.g. ``instance.shutdown``) can reach subscribers.
        Handlers still running are abandoned (their replies are dropped); worker threads are
        daemons.  Afterwards :meth:`publish` raises BusClosed.
        """
        with self._state_lock:
            if self._state == "stopped":
                return
            was_running = self._state == "running"
            self._state = "stopped"
            self._flush_linger_ms = max(0, int(flush * 1000))
            with self._out_lock:
                self._stopping = True
        if not was_running:
            self._wakeup.close()
            return
        deadline = time.monotonic() + timeout
        self._wake()
        io = self._io
        me = threading.current_thread()
        if io is not None and io is not me:  # stop() may be called from a handler on the I/O thread
            io.join(max(0.0, deadline - time.monotonic()))
            if io.is_alive():
                log.error("bus I/O thread did not stop within %.1fs; abandoning its sockets", timeout)
        self._queue.close()
        workers_deadline = min(deadline, time.monotonic() + 0.5)  # handlers may block: don't wait long
        for t in self._workers:
            if t is not me:
                t.join(max(0.0, workers_deadline - time.monotonic()))

    def __enter__(self) -> Bus:
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Bus({self.endpoints.rpc!r}, instance_id={self.instance_id!r}, epoch={self.epoch}, state={self._state})"

    # ------------------------------------------------------------------------------------
    # publishing

    def publish(self, topic: str, payload: Any = None) -> int:
        """Queue an event for all subscribers; returns its seq.  Thread-safe, never blocks.

        The payload is JSON-encoded on the caller's thread (TypeError/ValueError if it is not
        JSON-able).  Events published before :meth:`start` are sent once it runs.  Delivery is
        best-effort (slow subscribers past the high-water mark, or more than
        ``max_pending_events`` queued, lose events; the seq gap shows it).  Raises BusClosed after
        :meth:`stop`.
        """
        P.validate_topic(topic)
        payload_json = P.encode_json(payload)
        with self._out_lock:
            seq, wake = self._enqueue_event(topic, payload_json)
        if wake:
            self._wakeup.signal()
        return seq

    def publish_change(self, topic: str, payload: Mapping[str, Any]) -> int:
        """Queue a change event (``db.*``): like :meth:`publish`, with ``change_seq`` added to the
        payload -- this bus's count of change events.  Subscribers that take only change topics
        see a lost one as a gap there (``seq`` counts every topic), and heartbeats carry the
        latest ``change_seq``, so a lost last change shows too."""
        P.validate_topic(topic)
        with self._out_lock:  # numbered and queued together: change_seq order is delivery order
            change_seq = self._change_seq + 1
            payload_json = P.encode_json({**payload, "change_seq": change_seq})
            self._change_seq = change_seq
            seq, wake = self._enqueue_event(topic, payload_json)
        if wake:
            self._wakeup.signal()
        return seq

    @property
    def last_change_seq(self) -> int:
        """``change_seq`` of the most recent change event (0 = none yet)."""
        return self._change_seq

    def _enqueue_event(self, topic: str, payload_json: str) -> tuple[int, bool]:
        """Number and queue an event (caller holds ``_out_lock``): (seq, wake-up needed)."""
        if self._stopping:
            raise BusClosed("bus is stopped")
        self._seq += 1
        seq = self._seq
        if self._out_events >= self.max_pending_events:
            self._stats["events_dropped"] += 1
            return seq, False
        self._out_events += 1
        return seq, self._append_out(("pub", topic, seq, P.now_ms(), payload_json))

    def _enqueue_reply(self, frames: list[bytes], replies: int, errors: int) -> None:
        """Send a reply message -- at once on the I/O thread, else through the outgoing queue --
        and count the answers in it."""
        with self._out_lock:
            self._stats["replies"] += replies
            self._stats["errors"] += errors
            if self._stopping:
                return
            on_io_thread = threading.get_ident() == self._io_ident
            if not on_io_thread:
                wake = self._append_out(("rpc", frames))
        if on_io_thread:  # the socket is this thread's: no queue, no wake-up (replies need no order)
            self._send_rpc(self._router, frames)
        elif wake:
            self._wakeup.signal()

    def _send_rpc(self, router: zmq.Socket, frames: list[bytes]) -> None:
        try:
            send_frames(router, frames)
        except zmq.ZMQError as exc:
            with self._out_lock:
                self._stats["send_failures"] += 1
            # EHOSTUNREACH: caller went away (ROUTER_MANDATORY); EAGAIN: its queue is full
            self._throttle.log("rpc-send", logging.INFO, "reply dropped: %s", exc)

    def _append_out(self, item: tuple) -> bool:
        """Append to the outgoing FIFO (caller holds ``_out_lock``); True if the I/O thread needs a
        wake-up byte (none pending yet, and not on the I/O thread, which flushes before polling)."""
        self._out.append(item)
        wake = not self._wake_pending
        self._wake_pending = True
        return wake and threading.get_ident() != self._io_ident

    def _wake(self) -> None:
        with self._out_lock:
            self._wake_pending = True
        self._wakeup.signal()

    # ------------------------------------------------------------------------------------
    # I/O thread

    def _io_loop(self) -> None:
        self._io_ident = threading.get_ident()
        router, pub, zap = self._router, self._pub, self._zap
        assert router is not None and pub is not None
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        queued = zmq.Poller()
        queued.register(router, zmq.POLLIN)
        wakeup = self._wakeup
        poller.register(wakeup.fd, zmq.POLLIN)
        if zap is not None:
            poller.register(zap, zmq.POLLIN)
        interval = self.heartbeat_interval
        next_hb = time.monotonic()
        busy = False  # requests came since the loop last waited
        busy_until = 0.0
        try:
            while True:
                now = time.monotonic()
                if interval > 0 and now >= next_hb:
                    self._heartbeat()
                    next_hb = now + interval
                timeout = max(0, int((next_hb - now) * 1000) + 1) if interval > 0 else None
                if self._out:
                    timeout = 0
                ready = None
                if busy and timeout != 0:
                    if busy_until:
                        ready = spin_poll(poller, busy_until)
                    if not ready:
                        busy = False
                        self._run_hooks(self._idle_hooks)
                events = dict(ready or poller.poll(timeout))  # pyzmq retries EINTR itself
                if wakeup.fd in events:
                    wakeup.drain()
                if zap is not None and zap in events:
                    self._serve_zap(zap)
                if router in events:
                    busy = True
                    busy_until = time.perf_counter() + self.spin_seconds if self.spin_seconds > 0 else 0.0
                    self._receive(router, queued)
                    self._run_hooks(self._round_hooks)
                    if self._after_reply_hooks:
                        self._flush(pub, router)
                        self._run_hooks(self._after_reply_hooks)
                self._flush(pub, router)
                if self._stopping:
                    break
            self._flush(pub, router)
        except BaseException as exc:  # noqa: BLE001 - whatever ends this thread ends the bus
            self._io_failed = True
            self._failure = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(BaseException):
                log.exception("bus I/O thread crashed")
        finally:
            # this thread owns every socket of the context: close them, then terminate it here
            # (bounded by the PUB linger), so stop() never has to touch a socket.
            linger = self._flush_linger_ms
            with contextlib.suppress(Exception):
                pub.close(linger=linger)
            with contextlib.suppress(Exception):
                router.close(linger=0)
            if zap is not None:
                with contextlib.suppress(Exception):
                    zap.close(linger=0)
            self._pub = self._router = self._zap = None
            ctx, self._ctx = self._ctx, None
            if ctx is not None:
                with contextlib.suppress(Exception):
                    ctx.term()
            wakeup.close()
            if self._io_failed:
                self._report_failure()

    def _report_failure(self) -> None:
        """The I/O thread died: nobody is served any more. Tell :attr:`on_failure` (the runtime
        fences this primary and gives the lock up) on a thread of its own, which may stop us."""
        with self._out_lock:
            self._stopping = True
        callback = self.on_failure
        if callback is not None:
            reason = f"the bus I/O thread died ({self._failure})"
            threading.Thread(target=callback, args=(reason,), name="pando-bus-failed", daemon=True).start()

    @staticmethod
    def _run_hooks(hooks: list[Callable[[], None]]) -> None:
        for hook in hooks:
            try:
                hook()
            except Exception:  # never let a hook kill the loop
                log.exception("bus round hook failed")

    def _heartbeat(self) -> None:
        with contextlib.suppress(BusClosed):
            self.publish(
                P.INSTANCE_HEARTBEAT,
                {
                    "instance_id": self.instance_id,
                    "epoch": self.epoch,
                    "pid": os.getpid(),
                    "started_at": self._started_at,
                    "uptime_ms": self._uptime_ms(),
                    "interval_ms": int(self.heartbeat_interval * 1000),
                    # read before queueing: every change it counts is already ahead in the queue
                    "change_seq": self._change_seq,
                },
            )

    def _serve_zap(self, zap: zmq.Socket) -> None:
        for _ in range(64):
            try:
                frames = zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = self.auth.zap_reply(frames)
            except Exception:
                log.exception("ZAP handler failed")
                reply = [b"1.0", frames[1] if len(frames) > 1 else b"", b"500", b"internal error", b"", b""]
            try:
                zap.send_multipart(reply)
            except zmq.ZMQError as exc:
                log.warning("cannot answer ZAP request: %s", exc)

    def _flush(self, pub: zmq.Socket, router: zmq.Socket) -> None:
        with self._out_lock:
            self._wake_pending = False
            if not self._out:
                return
            items = self._out
            self._out = deque()
            self._out_events = 0
        # replies first: a caller waits on each, while events go out in their own order anyway
        events = []
        for item in items:
            if item[0] == "pub":
                events.append(item)
            else:
                self._send_rpc(router, item[1])
        sign_key = self.auth.event_key
        sent = 0
        for _, topic, seq, ts, payload_json in events:
            frame = P.encode_event_frame(
                topic, seq, self.epoch, self.instance_id, ts, payload_json, sign_key=sign_key
            )
            try:
                pub.send(frame, zmq.NOBLOCK)
                sent += 1
            except zmq.ZMQError as exc:
                self._throttle.log("pub-send", logging.WARNING, "dropping event %s: %s", topic, exc)
        if sent:
            with self._out_lock:
                self._stats["events"] += sent

    def _count(self, key: str) -> None:
        """Count on the I/O thread (the only writer of these keys, so no lock: the GIL keeps
        the readers' copy consistent)."""
        self._stats[key] += 1

    def _receive(self, router: zmq.Socket, queued: zmq.Poller) -> None:
        """Handle the requests that are queued: this round's burst, which ends at the first
        message boundary after :attr:`round_requests` requests (a batch is never split) or when
        the queue is empty. Bounding the round lets the first callers' answers go out while later
        messages wait: pipelined writers then prepare their next batch while the primary applies
        the others' (they kept taking turns with it when a round took every queued batch).
        *queued* polls only the ROUTER: asking it is cheaper than the ``zmq.Again`` an empty
        queue raises."""
        taken = 0
        for _ in range(256):
            try:
                frames = recv_frames(router)
            except zmq.Again:
                return
            except MessageDropped as dropped:  # out of memory: this message goes, the bus stays
                self._count("dropped")
                self._throttle.log("memory", logging.ERROR, "RPC message dropped: %s", dropped)
                if len(dropped.frames) == 1 and self.auth.mechanism != "token":
                    error = P.RpcError(P.TOO_LARGE, f"the primary has no memory for a message of {dropped.size} bytes")
                    self._reply_error([dropped.frames[0]], P.peek_request_id(dropped.head), error)
                taken += 1
                continue
            try:
                taken += self._on_request(frames)
            except MemoryError:  # decoding it took more memory than there is
                del frames
                self._count("dropped")
                self._throttle.log("memory", logging.ERROR, "RPC message dropped: no memory to handle it")
                taken += 1
            except Exception:  # never let one message kill the loop
                log.exception("unexpected error while handling a request")
                taken += 1
            if taken >= self.round_requests or not queued.poll(0):
                return

    def _reply_error(self, prefix: _ReplyTo, rid: Any, error: P.RpcError) -> None:
        self._send_reply(prefix, P.encode_error(rid, error), False)

    def _send_reply(self, prefix: _ReplyTo, data: bytes, ok: bool) -> None:
        """One answer: straight out to the caller, or into its batch's array."""
        if type(prefix) is _Batch:
            prefix.add(data, ok)
        elif ok:
            self._enqueue_reply([*prefix, data], 1, 0)
        else:
            self._enqueue_reply([*prefix, data], 0, 1)

    def _on_request(self, frames: list[bytes]) -> int:
        """One message from the ROUTER; returns how many requests it held."""
        self._count("requests")
        token_mode = self.auth.mechanism == "token"
        if len(frames) < 2:
            self._count("malformed")
            self._throttle.log("short", logging.WARNING, "dropping RPC message with %d frame(s)", len(frames))
            return 1
        identity, data, envelope = frames[0], frames[-1], frames[1:-1]
        if envelope and envelope != [b""]:
            self._count("malformed")
            self._throttle.log("frames", logging.WARNING, "malformed RPC envelope (%d frames)", len(frames))
            if not token_mode:
                self._reply_error(
                    [identity, b""],
                    None,
                    P.RpcError(P.INVALID_REQUEST, "expected one JSON frame, optionally after an empty delimiter"),
                )
            return 1
        prefix = [identity, b""] if envelope else [identity]
        if len(data) > self.max_message_bytes:
            self._count("malformed")
            self._throttle.log(
                "large",
                logging.WARNING,
                "RPC message of %d bytes exceeds cap %d",
                len(data),
                self.max_message_bytes,
            )
            if not token_mode:
                err = P.RpcError(
                    P.TOO_LARGE, f"message of {len(data)} bytes exceeds the {self.max_message_bytes}-byte cap"
                )
                self._reply_error(prefix, P.peek_request_id(data), err)
            return 1
        try:
            obj = P.decode_json(data)
        except MemoryError:
            self._count("dropped")
            self._throttle.log("memory", logging.ERROR, "RPC message of %d bytes dropped: no memory to decode it", len(data))
            if not token_mode:
                error = P.RpcError(P.TOO_LARGE, f"the primary has no memory to decode a message of {len(data)} bytes")
                self._reply_error(prefix, P.peek_request_id(data), error)
            return 1
        except P.ProtocolError as exc:
            self._count("malformed")
            self._throttle.log("parse", logging.WARNING, "unparseable RPC message: %s", exc)
            if not token_mode:
                self._reply_error(prefix, None, P.RpcError(P.PARSE_ERROR, "parse error"))
            return 1
        if type(obj) is list:
            self._message_share = len(data) // max(1, len(obj))
            self._on_batch(obj, prefix, identity, token_mode)
            return len(obj)
        self._message_share = len(data)
        self._dispatch(obj, prefix, identity, token_mode)
        return 1

    def _on_batch(self, items: list[Any], prefix: list[bytes], identity: bytes, token_mode: bool) -> None:
        """A JSON-RPC batch: each request dispatched as if it came alone, the answers collected
        into one array (see :class:`_Batch`)."""
        if token_mode and not all(isinstance(i, dict) and self.auth.check_token(i.get("meta")) for i in items):
            self._count("unauthorized")
            self._throttle.log("token", logging.WARNING, "dropping an RPC batch without valid tokens")
            return
        if not items or len(items) > MAX_BATCH:
            self._count("malformed")
            what = "empty batch" if not items else f"batch of {len(items)} requests exceeds the {MAX_BATCH}-request cap"
            self._reply_error(prefix, None, P.RpcError(P.INVALID_REQUEST, what))
            return
        self._stats["requests"] += len(items) - 1  # the message was counted as one
        self._stats["batches"] += 1
        if self._dispatch_many(items, prefix, identity):
            return
        # every element is answered except a notification (an object without "id"), valid or not
        answers = sum(1 for i in items if not (type(i) is dict and "id" not in i))
        batch = _Batch(self, prefix, answers) if answers else prefix
        shared = _SharedMeta()  # the requests of a batch usually carry the same meta
        for item in items:
            try:
                self._dispatch(item, batch, identity, token_mode, shared)
            except Exception:  # never let one request kill the loop
                log.exception("unexpected error while handling a batched request")
        if answers:
            batch.seal()

    def _dispatch_many(self, items: list[Any], prefix: list[bytes], identity: bytes) -> bool:
        """Hand a batch to its method's ``many`` handler if it qualifies (see :meth:`register`);
        False if it does not, and nothing was done."""
        first = items[0]
        if type(first) is not dict:
            return False
        method = first.get("method")
        entry = self._methods.get(method) if type(method) is str else None
        if entry is None or entry.many is None:
            return False
        raw_meta = first.get("meta")
        ids: list[str | int] = []
        requests: list[dict[str, Any]] = []
        valid_id = P.valid_id
        for item in items:
            if (
                type(item) is not dict
                or item.get("method") != method
                or item.get("jsonrpc") != "2.0"
                or item.get("meta") != raw_meta
                or type(item.get("params")) is not dict
            ):
                return False
            rid = item.get("id")
            if rid is None or not valid_id(rid):
                return False
            ids.append(rid)
            requests.append(item["params"])
        if raw_meta is None:
            raw_meta = {}
        elif type(raw_meta) is not dict:
            return False
        authorized, now, meta, deadline, iid = self._admit(raw_meta)
        if not authorized:
            return False  # request by request: each is refused as it would be alone
        self._stats["batches_whole"] += 1
        call = CallContext(method, ids[0], identity, iid, now, deadline, meta)
        batch = _Batch(self, prefix, len(ids), indexed=True)
        answers = BatchReply(self, batch, method, ids)
        if self._stopping:
            return True  # not answered, as a request handled while stopping
        if call.expired():
            error = _expired()
            for index in range(len(ids)):
                answers.error(index, error)
        else:
            try:
                entry.many(requests, call, answers)
            except Exception as exc:  # the answer of every request not answered yet
                error = _as_rpc_error(method, exc)
                for index in range(len(ids)):
                    answers.error(index, error)
        batch.seal()
        return True

    def _dispatch(
        self, obj: Any, prefix: _ReplyTo, identity: bytes, token_mode: bool, shared: _SharedMeta | None = None
    ) -> None:
        """One decoded request: validate, authenticate, then run its handler or queue it.
        *shared*: what an earlier request of the same batch with an equal ``meta`` made of it."""
        try:
            req = P.parse_request(obj)
        except P.RequestError as exc:
            self._count("malformed")
            self._throttle.log("invalid", logging.WARNING, "invalid RPC request: %s", exc.error.message)
            if token_mode and not self.auth.check_token(obj.get("meta") if isinstance(obj, dict) else None):
                self._count("unauthorized")
                return
            if not exc.notification:
                self._reply_error(prefix, exc.id, exc.error)
            return
        if shared is not None and shared.raw is not None and req.meta == shared.raw:
            authorized, now, meta, deadline, iid = True, shared.now, shared.meta, shared.deadline, shared.instance_id
        else:
            authorized, now, meta, deadline, iid = self._admit(req.meta)
            if shared is not None and authorized:
                shared.keep(req.meta, now, meta, deadline, iid)
        if not authorized:
            self._count("unauthorized")
            self._throttle.log(
                "token", logging.WARNING, "dropping RPC without a valid token (method %r)", req.method
            )
            return
        entry = self._methods.get(req.method)
        if entry is None:
            if not req.is_notification:
                self._reply_error(
                    prefix, req.id, P.RpcError(P.METHOD_NOT_FOUND, f"method not found: {req.method}")
                )
            return
        params = req.params
        expected = _PARAMS_TYPES.get(entry.params)  # None: "any"
        if expected is not None and params is None:
            params = expected()
        if expected is not None and not isinstance(params, expected):
            if not req.is_notification:
                self._reply_error(
                    prefix,
                    req.id,
                    P.RpcError(P.INVALID_PARAMS, f"params of {req.method} must be an {entry.params}"),
                )
            return
        call = CallContext(
            method=req.method,
            request_id=req.id,
            client_identity=identity,
            instance_id=iid,
            received_at=now,
            deadline=deadline,
            meta=meta,
        )
        if entry.inline:
            self._run_handler(entry, params, call, prefix)
            return
        call.client = iid or identity
        call.size = self._message_share
        if not self._queue.offer(call.client, (entry, params, call, prefix), call.size):
            self._count("busy")  # refused before it costs a worker anything: the caller may retry
            if not req.is_notification:
                self._reply_error(prefix, req.id, P.RpcError(P.UNAVAILABLE, "server busy, retry later"))

    def _admit(self, raw_meta: dict[str, Any]) -> tuple[bool, float, dict[str, Any], float | None, str | None]:
        """A request's ``meta``: (authorized, received at, meta without credentials, deadline,
        caller's instance id)."""
        now = time.monotonic()
        if not self.auth.check_token(raw_meta):
            return False, now, raw_meta, None, None
        meta = raw_meta
        if "token" in meta:  # credentials stay out of what handlers see
            meta = {k: v for k, v in meta.items() if k != "token"}
        iid = meta.get("instance_id")
        return True, now, meta, _deadline(meta, now), iid if isinstance(iid, str) else None

    # ------------------------------------------------------------------------------------
    # workers

    def _worker_loop(self) -> None:
        take, ran = self._queue.take, self._queue.ran
        while True:
            job = take()
            if job is None:
                return
            entry, params, call, prefix = job
            try:
                self._run_handler(entry, params, call, prefix, counted=True)
            except Exception:
                log.exception("unexpected error in bus worker")
            finally:
                ran(call.client)

    def _run_handler(
        self, entry: _Method, params: Any, call: CallContext, prefix: _ReplyTo, counted: bool = False
    ) -> None:
        if self._stopping:
            self._done(counted, call)
            return
        if call.expired():
            self._finish(call, prefix, counted, exc=_expired())
            return
        if entry.deferred:
            reply = Reply(self, call, prefix, counted)
            try:
                entry.handler(params, call, reply)
            except Exception as exc:
                reply.error(exc)
            return
        try:
            result = entry.handler(params, call)
        except Exception as exc:
            self._finish(call, prefix, counted, exc=exc)
            return
        if isinstance(result, concurrent.futures.Future):
            result.add_done_callback(lambda fut: self._complete_future(fut, call, prefix, counted))
            return
        self._finish(call, prefix, counted, result)

    def _complete_future(
        self, fut: concurrent.futures.Future, call: CallContext, prefix: _ReplyTo, counted: bool
    ) -> None:
        if fut.cancelled():
            self._finish(call, prefix, counted, exc=P.RpcError(P.UNAVAILABLE, "request was cancelled"))
            return
        exc = fut.exception()
        self._finish(call, prefix, counted, None if exc is not None else fut.result(), exc)

    def _finish(
        self,
        call: CallContext,
        prefix: _ReplyTo,
        counted: bool,
        result: Any = None,
        exc: BaseException | None = None,
    ) -> None:
        """A handled request's outcome: release its pending slot, then reply (unless it is a
        notification).  An RpcError keeps its kind; any other exception is an internal error."""
        self._done(counted, call)
        if call.is_notification:
            if exc is not None:
                _as_rpc_error(call.method, exc)  # logged when it is not an RpcError
            return
        self._send_reply(prefix, *self._answer(call.method, call.request_id, result, exc))

    def _answer(self, method: str, rid: Any, result: Any, exc: BaseException | None) -> tuple[bytes, bool]:
        """A request's answer as sent, and whether it is a result: *exc* if given (an RpcError
        keeps its kind; any other exception is an internal error), else *result*, unless it
        is not JSON-able or too large."""
        if exc is None:
            try:
                data = P.encode_result(rid, result)
            except (TypeError, ValueError) as error:
                log.error("result of %s is not JSON-serialisable: %s", method, error)
                exc = P.RpcError(P.INTERNAL_ERROR, "result is not JSON-serialisable")
            else:
                if len(data) <= self.max_message_bytes:
                    return data, True
                exc = P.RpcError(P.TOO_LARGE, f"reply of {len(data)} bytes exceeds the cap")
        else:
            exc = _as_rpc_error(method, exc)
        return P.encode_error(rid, exc), False

    def _done(self, counted: bool, call: CallContext) -> None:
        if counted:
            self._queue.release(call.client, call.size)

    # ------------------------------------------------------------------------------------
    # built-in methods

    def _uptime_ms(self) -> int:
        return int((time.monotonic() - self._started_mono) * 1000)

    def _ping(self, params: Any, call: CallContext) -> dict[str, Any]:
        return {
            "status": "ok",
            "instance_id": self.instance_id,
            "epoch": self.epoch,
            "pid": os.getpid(),
            "ts": P.now_ms(),
            "uptime_ms": self._uptime_ms(),
            "metadata": self.metadata,
        }

    def _info(self, params: Any, call: CallContext) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "epoch": self.epoch,
            "pid": os.getpid(),
            "started_at": self._started_at,
            "uptime_ms": self._uptime_ms(),
            "endpoints": self.endpoints.to_dict(),
            "auth": self.auth.mechanism,
            "heartbeat_interval": self.heartbeat_interval,
            "max_message_bytes": self.max_message_bytes,
            "methods": self.methods(),
            "last_seq": self._seq,
            "stats": self.stats(),
            "metadata": self.metadata,
        }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _expired() -> P.RpcError:
    return P.RpcError(P.TIMEOUT, "deadline passed before the request was handled")


def _as_rpc_error(method: str, exc: BaseException) -> P.RpcError:
    """A handler's failure as it is answered: an RpcError keeps its kind, and so does one of the
    core's errors (not found, constraint, validation, ...: their kinds survive the wire); anything
    else is a bug of the handler, logged with its traceback and answered as an internal error."""
    if isinstance(exc, P.RpcError):
        return exc
    if isinstance(exc, PandoError):
        return P.RpcError(kind=exc.kind, message=str(exc))
    log.error("handler for %s failed", method, exc_info=exc)
    return P.RpcError(P.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")


def _deadline(meta: Mapping[str, Any], now: float) -> float | None:
    """The caller's deadline on our monotonic clock: from its absolute wall-clock deadline when it
    sent a plausible one (exact even if we read the request late), else from its timeout."""
    at_ms = _number(meta.get("deadline_at_ms"))
    if at_ms is not None:
        remaining = at_ms / 1000 - time.time()
        if -600 < remaining < 86_400:
            return now + remaining
    timeout_ms = _number(meta.get("timeout_ms"))
    return now + timeout_ms / 1000 if timeout_ms is not None and timeout_ms >= 0 else None
