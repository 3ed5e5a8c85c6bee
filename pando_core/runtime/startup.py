"""Bootstrap: become the primary of a working directory, or a secondary of its primary.

``bootstrap(workdir, instance_id)`` tries the lock without blocking. The winner opens the
database read-write, runs migrations, binds its bus, bumps the epoch and writes ``primary.json``.
A loser reads ``primary.json``, checks that primary answers, opens the database read-only and
proxies its writes; with failover on, it parks a thread in a blocking lock acquire and promotes
itself the moment the kernel hands it the lock (the primary died).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import core_defaults
from ..db import Component, Database, LocalExecutor, MethodRegistry, Store, database_path, migrate
from ..errors import PandoError, UnavailableError
from . import protocol as P
from .auth import client_auth, server_auth
from .bus import Bus
from .client import Client, ClientClosed
from .endpoints import Endpoints, choose_endpoints
from .instances import InstanceRegistry, pid_alive
from .lock import (
    InstanceLock,
    LockError,
    PrimaryRecord,
    ensure_pando_dir,
    read_primary_record,
    write_primary_record,
)
from .protocol import CallInterrupted, RpcError, RpcTimeout
from .writes import ProxyExecutor, WriteCoordinator, remote_error

log = logging.getLogger("pando.runtime")

# the [runtime] settings' defaults, declared once, in the config section (bootstrap() may be
# called without the App's configuration: tests, benchmarks, plugins)
_RUNTIME_DEFAULTS = core_defaults("runtime")

PRIMARY = "primary"
SECONDARY = "secondary"
CONNECT_DEADLINE_S = 15.0
# what a secondary always takes from the bus: heartbeats, promotion/shutdown notices, interrupts
BASE_EVENT_PREFIXES = (P.INSTANCE_PREFIX, P.SESSION_INTERRUPT)


def _takes_changes(prefix: str) -> bool:
    """Whether a subscription to *prefix* takes change events (``db.*``)."""
    return prefix.startswith(P.DB_PREFIX) or P.DB_PREFIX.startswith(prefix)



class BootstrapError(PandoError):
    pass


def _components_or_core(components: list[Component] | None) -> list[Component]:
    if components:
        return components
    from ..db import core_component

    return [core_component()]


class Runtime:
    """The multi-instance runtime of one process (seed: runtime.BootstrapResult).

    Attributes: ``role``, ``store``, ``engine``, ``bus`` (primary), ``client`` (secondary),
    ``instance_id``, ``endpoints``, ``pub_port``/``rpc_port`` (tcp), ``lock``, ``watcher``,
    ``epoch``; ``cleanup()`` releases everything in reverse order and is safe to call twice.
    """

    def __init__(
        self,
        workdir: Path,
        instance_id: str,
        components: list[Component],
        *,
        failover: bool = True,
        config: dict[str, Any] | None = None,
        record_extra: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.record_extra = dict(record_extra or {})  # what primary.json says besides the endpoints
        self.pando_dir = self.workdir / ".pando"
        self.instance_id = instance_id
        self.components = components
        self.failover = failover
        self.config = dict(config or {})
        self.registry = MethodRegistry(repo for c in components for repo in c.repositories)
        self.role: str = ""
        self.epoch = 0
        self.db: Database | None = None
        self.store: Store | None = None
        self.bus: Bus | None = None
        self.client: Client | None = None
        self.coordinator: WriteCoordinator | None = None
        self.record: PrimaryRecord | None = None
        self.lock = InstanceLock(self.pando_dir)
        self.watcher: Any = None
        self.lease_guard: Any = None  # primary: LeaseGuard
        self.fenced: str | None = None  # why this primary stopped writing (see fence)
        self.instances = InstanceRegistry(self.pando_dir)
        self._promoted_callbacks: list[Callable[[Runtime], None]] = []
        self._event_callbacks: list[tuple[str, Callable[[P.Event], None]]] = []  # (topic prefix, callback)
        self._interrupt_callbacks: list[Callable[[str], None]] = []
        self._fenced_callbacks: list[Callable[[str], None]] = []
        self._state_lock = threading.RLock()
        self._primary_changed = threading.Condition(self._state_lock)
        self._cleaned = False
        # secondary: the topic prefixes the client is subscribed to for _on_bus_event, the last
        # event it handled (one event matching two prefixes arrives twice), and the change_seq
        # (with its epoch) of the last change event or heartbeat seen while taking change events
        self._subscribed: list[str] = []
        self._last_event: P.Event | None = None
        self._tracking_changes = False
        self._last_change_seq: int | None = None
        self._last_change_epoch: int | None = None
        self.resyncs = 0
        self.hung_reported = False

    # -- properties --------------------------------------------------------------------------------

    def _setting(self, key: str) -> Any:
        """A ``[runtime]`` setting: the value given, else (unset, None or 0) its declared default."""
        return self.config.get(key) or _RUNTIME_DEFAULTS[key]

    def _client(self, record: PrimaryRecord, auth: Any) -> Client:
        """A client of the primary *record* names (its calls wait up to the write timeout)."""
        return Client(record.endpoints, self.instance_id, auth, default_timeout=self.write_timeout)

    @property
    def write_timeout(self) -> float:
        """Seconds a proxied write (or a call to the primary) may wait for an answer."""
        return float(self._setting("write_timeout"))

    @property
    def engine(self):
        return self.db.engine if self.db else None

    @property
    def endpoints(self) -> Endpoints | None:
        if self.bus is not None:
            return self.bus.endpoints
        if self.record is not None:
            return Endpoints.from_dict(self.record.endpoints)
        return None

    @property
    def pub_port(self) -> int | None:
        endpoints = self.endpoints
        return getattr(endpoints, "pub_port", None) if endpoints else None

    @property
    def rpc_port(self) -> int | None:
        endpoints = self.endpoints
        return getattr(endpoints, "rpc_port", None) if endpoints else None

    @property
    def primary_pid(self) -> int | None:
        if self.role == PRIMARY:
            return os.getpid()
        return self.record.pid if self.record else None

    def on_promoted(self, callback: Callable[[Runtime], None]) -> None:
        self._promoted_callbacks.append(callback)

    def on_fenced(self, callback: Callable[[str], None]) -> None:
        """``callback(reason)`` when this primary fences itself (see :meth:`fence`)."""
        self._fenced_callbacks.append(callback)

    def on_event(self, callback: Callable[[P.Event], None], prefix: str = "") -> None:
        """``callback(event)`` for the primary's bus events whose topic starts with *prefix*
        (``""``: all), on a secondary, on the client's dispatcher thread.

        A secondary takes change events (``db.*``) from the primary only once a listener asks
        for them: it reads the shared database itself, and every event taken costs it a wake-up
        per write anywhere. Events published before the subscription reaches the primary (well
        under a millisecond) are not seen; a listener that starts while changes are being made
        may get a ``state.resync`` first. A primary's own events are not delivered here.
        """
        with self._state_lock:
            self._event_callbacks.append((prefix, callback))
            client = self.client if self.role == SECONDARY else None
            if client is not None:
                self._subscribe(client, prefix)

    # -- start ---------------------------------------------------------------------------------------

    def start(self) -> Runtime:
        try:
            ensure_pando_dir(self.pando_dir)
        except LockError as exc:
            raise BootstrapError(f"cannot use {self.pando_dir}: {exc}") from exc
        deadline = time.monotonic() + CONNECT_DEADLINE_S
        last_problem = "no primary record"
        while True:
            try:
                won = self.lock.try_acquire()
            except LockError as exc:
                raise BootstrapError(f"cannot take the instance lock {self.lock.path}: {exc}") from exc
            if won:
                self._become_primary()
                break
            problem = self._try_become_secondary()
            if problem is None:
                break
            last_problem = problem
            if time.monotonic() >= deadline:
                raise BootstrapError(
                    f"another pando holds {self.lock.path} but its primary does not answer ({last_problem}); "
                    "if it is hung, stop it (kill it) and try again"
                )
            time.sleep(0.02)
        self.instances.register(self.instance_id, self.role, self.epoch)
        return self

    def _become_primary(self) -> None:
        previous = read_primary_record(self.pando_dir)
        self.epoch = (previous.epoch if previous else 0) + 1
        self.db = Database(database_path(self.workdir))
        migrate(self.db, self.components)
        self.coordinator = WriteCoordinator(self.db, self.registry, self.instance_id)
        executor = LocalExecutor(self.db, self.instance_id)
        if self.store is None:
            self.store = Store(self.registry, executor)
        else:
            self.store.use(executor)
        prefer = self._setting("transport")
        endpoints = choose_endpoints(str(self.workdir), prefer)
        auth = server_auth(self.pando_dir, endpoints.transport)
        self.bus = Bus(
            endpoints,
            self.instance_id,
            self.epoch,
            auth=auth,
            max_message_bytes=int(self._setting("max_message_bytes")),
            heartbeat_interval=float(self._setting("heartbeat_interval")),
            metadata={"workdir": str(self.workdir), "pid": os.getpid()},
        )
        self._register_core_methods(self.bus)
        self.bus.start()
        self.db.on_commit(self._publish_changes)
        self.record = PrimaryRecord(
            instance_id=self.instance_id,
            pid=os.getpid(),
            epoch=self.epoch,
            endpoints=self.bus.endpoints.to_dict(),
            started_at=P.now_ms(),
            auth=auth.record_info(),
            workdir=str(self.workdir),
            extra=dict(self.record_extra),
        )
        write_primary_record(self.pando_dir, self.record)
        self.role = PRIMARY
        from .failover import LeaseGuard

        self.lease_guard = LeaseGuard(self, float(self._setting("lease_check_interval")))
        self.lease_guard.start()

    def fence(self, reason: str) -> None:
        """This primary's lease is gone (see :class:`~.failover.LeaseGuard`): stop being a
        writer at once. Queued and new proxied writes are refused as retryable, the bus goes
        down (secondaries follow ``primary.json`` to whoever holds the lock now), and local
        writes raise UnavailableError; reads still work. Restarting pando is the way back."""
        with self._state_lock:
            if self.role != PRIMARY or self.fenced:
                return
            self.fenced = reason
            log.error("%s: this pando stops writing; restart it to join the current primary", reason)
            if self.store is not None:
                self.store.use(_FencedExecutor(self.db, self.instance_id, reason))
            coordinator, bus = self.coordinator, self.bus
            self.coordinator = None  # writes still in flight here fail: no writer, no primary to proxy to
        if coordinator is not None:
            coordinator.close()
        if bus is not None:
            self._shut_down_bus(bus)
        for callback in list(self._fenced_callbacks):
            try:
                callback(reason)
            except Exception:  # noqa: BLE001 - fencing goes on
                log.exception("fence callback failed")

    def _shut_down_bus(self, bus: Bus) -> None:
        """Say ``instance.shutdown`` (secondaries look for the next primary at once), then stop."""
        try:
            bus.publish(P.INSTANCE_SHUTDOWN, {"instance_id": self.instance_id, "epoch": self.epoch})
        except Exception:  # noqa: BLE001 - already stopped
            pass
        bus.stop()

    def _try_become_secondary(self) -> str | None:
        record = read_primary_record(self.pando_dir)
        if record is None:
            return "no primary record yet"
        if record.workdir and os.path.realpath(record.workdir) != str(self.workdir):
            return "primary record names another working directory"
        try:
            auth = client_auth(self.pando_dir, record.auth)
            client = self._client(record, auth)
        except Exception as exc:  # noqa: BLE001
            return f"cannot connect: {exc}"
        try:
            info = client.ping(timeout=0.5)
        except (RpcError, RpcTimeout) as exc:
            client.close()
            return f"primary pid {record.pid} did not answer a ping ({exc})"
        if info.get("epoch") != record.epoch or info.get("instance_id") != record.instance_id:
            client.close()
            return "primary record is stale"
        db_path = database_path(self.workdir)
        if not db_path.exists():
            client.close()
            return "database not created yet"
        self.record = record
        self.epoch = record.epoch
        self.client = client
        self.db = Database(db_path, readonly=True)
        executor = ProxyExecutor(self, self.db, write_timeout=self.write_timeout)
        self.store = Store(self.registry, executor)
        self.role = SECONDARY
        self._subscribe_all(client)
        if self.failover:
            from .failover import FailoverWatcher

            self.watcher = FailoverWatcher(self)
            self.watcher.start()
        else:
            from .failover import PrimaryFollower

            self.watcher = PrimaryFollower(self)
            self.watcher.start()
        return None

    # -- primary side --------------------------------------------------------------------------------

    def _register_core_methods(self, bus: Bus) -> None:
        assert self.coordinator is not None
        # inline, on the bus thread: the handler only validates and holds the write; at the end of
        # each receive round the writes that arrived together are committed as one batch, on the
        # bus thread too (see WriteCoordinator.apply_round)
        bus.register(
            "db.write",
            self.coordinator.handle_rpc,
            params="object",
            inline=True,
            deferred=True,
            many=self.coordinator.handle_many,
        )
        bus.add_round_hook(self.coordinator.apply_round)
        bus.add_round_hook(self.coordinator.announce_round, after_replies=True)
        bus.add_idle_hook(self.coordinator.idle)
        bus.register("state.sync", self._rpc_state_sync, params="object")
        bus.register("session.list", self._rpc_session_list, params="object")
        bus.register("session.get", self._rpc_session_get, params="object")
        bus.register("message.list", self._rpc_message_list, params="object")
        bus.register(P.SESSION_INTERRUPT, self._rpc_interrupt, params="object")

    def on_interrupt(self, callback: Callable[[str], None]) -> None:
        """``callback(session_id)`` runs when any instance asks to interrupt a session's turn."""
        self._interrupt_callbacks.append(callback)

    def interrupt_session(self, session_id: str) -> None:
        """Ask every instance (this one included) to cancel the session's running turn."""
        if self.role == PRIMARY:
            self._rpc_interrupt({"session_id": session_id}, None)
        elif self.client is not None:
            self.client.call(P.SESSION_INTERRUPT, {"session_id": session_id}, timeout=5)
        else:
            raise UnavailableError("this instance has no connection to a primary")

    def _rpc_interrupt(self, params: dict, call: Any) -> dict:
        session_id = params.get("session_id")
        if not isinstance(session_id, str):
            raise RpcError.invalid_params("session.interrupt: session_id must be a string")
        self._run_interrupt_callbacks(session_id)
        if self.bus is not None:
            self.bus.publish(P.SESSION_INTERRUPT, {"session_id": session_id})
        return {"session_id": session_id}

    def _run_interrupt_callbacks(self, session_id: str) -> None:
        for callback in list(self._interrupt_callbacks):
            try:
                callback(session_id)
            except Exception:  # noqa: BLE001
                log.exception("interrupt callback failed")

    def _rpc_state_sync(self, params: dict, call: Any) -> dict:
        return {
            "epoch": self.epoch,
            "instance_id": self.instance_id,
            "seq": self.bus.last_seq if self.bus else 0,
            "change_seq": self.bus.last_change_seq if self.bus else 0,
            "sessions": self.store.sessions.list(include_empty=True),
        }

    def _rpc_session_list(self, params: dict, call: Any) -> list:
        return self.store.sessions.list(include_empty=bool(params.get("include_empty", False)))

    def _rpc_session_get(self, params: dict, call: Any) -> dict:
        session_id = params.get("id")
        if not isinstance(session_id, str):
            raise RpcError.invalid_params("session.get: id must be a string")
        return self.store.sessions.get(id=session_id)  # NotFoundError: answered with its kind

    def _rpc_message_list(self, params: dict, call: Any) -> list:
        session_id = params.get("session_id")
        if not isinstance(session_id, str):
            raise RpcError.invalid_params("message.list: session_id must be a string")
        return self.store.messages.list(session_id=session_id)

    def _publish_changes(self, changes: list, writer: str) -> None:
        bus = self.bus
        if bus is None:
            return
        for change in changes:
            bus.publish_change(P.db_topic(change.table, change.op), {"ids": change.ids, "writer": writer or self.instance_id})

    # -- secondary side ------------------------------------------------------------------------------

    def _subscribe_all(self, client: Client) -> None:
        """Subscribe a new client to what this instance and its listeners need."""
        self._subscribed = []
        self._tracking_changes = False
        self._last_change_seq = None
        for prefix in (*BASE_EVENT_PREFIXES, *(prefix for prefix, _ in self._event_callbacks)):
            self._subscribe(client, prefix)

    def _subscribe(self, client: Client, prefix: str) -> None:
        """Take the topics starting with *prefix* too (caller holds ``_state_lock``)."""
        if prefix.startswith(P.DB_PREFIX):
            prefix = P.DB_PREFIX  # every change, so change_seq has no gaps that are only other tables
        if any(prefix.startswith(taken) for taken in self._subscribed):
            return
        self._subscribed.append(prefix)
        if not self._tracking_changes and _takes_changes(prefix):
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

    def follow(self, record: PrimaryRecord) -> None:
        """Point this secondary at a new primary (after a failover elsewhere)."""
        with self._state_lock:
            if self.role != SECONDARY or self.client is None:
                return
            if self.record is not None and record.epoch <= self.record.epoch and record.instance_id == self.record.instance_id:
                return
            auth = client_auth(self.pando_dir, record.auth)
            self.client.reconnect(record.endpoints, auth)
            self.record = record
            self.epoch = record.epoch
            self._last_change_seq = None
            self.hung_reported = False
            self._primary_changed.notify_all()
        log.info("now following primary pid %s (epoch %s)", record.pid, record.epoch)

    def send_write(self, method: str, params: dict[str, Any], key: tuple[str, int], timeout: float) -> Any:
        """Send one keyed write until acknowledged (possibly by a new primary) or the deadline."""
        start = time.monotonic()
        client = self.client
        outcome = None
        if self.role == SECONDARY and client is not None:  # the usual case: one call, no resend loop
            try:
                outcome = _outcome(client.call(*_write_call(method, params, key), min(1.0, timeout)))
            except RpcError as exc:
                outcome = _outcome(exc)
        if outcome is None:  # not answered, or answered "retry": the resend loop, same key
            remaining = max(0.0, timeout - (time.monotonic() - start))
            outcome = self.send_writes([(method, params, key)], remaining)[0]
        ok, value = outcome
        if ok:
            return value
        raise value

    def send_writes(
        self, writes: list[tuple[str, dict[str, Any], tuple[str, int]]], timeout: float
    ) -> list[tuple[bool, Any]]:
        """Send keyed writes ``(method, params, key)`` until each is answered -- possibly by a new
        primary after failover -- or the deadline passes. Several go out as one batch message
        (applied in order, in one group commit); a retry resends only the unanswered ones, with
        their original keys. Returns ``(True, result)`` or ``(False, exception)`` per write, in
        order."""
        deadline = time.monotonic() + timeout
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(writes)
        todo = list(range(len(writes)))
        state = _Resending()
        while todo:
            with self._state_lock:
                role, client, coordinator = self.role, self.client, self.coordinator
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                error = _not_acknowledged([writes[i] for i in todo], timeout, state.last_error)
                for i in todo:
                    outcomes[i] = (False, error)
                break
            if role == PRIMARY and coordinator is not None:
                answers = self._apply_here(coordinator, [writes[i] for i in todo], remaining)
            elif client is None:
                raise UnavailableError("this instance has no connection to a primary")
            else:
                answers = state.ask(client, [_write_call(*writes[i]) for i in todo], remaining)
                if answers is _RESEND_NOW:
                    continue
            todo = state.settle(todo, answers, outcomes)
            if todo:  # wait briefly for a failover to change the primary, then resend with the same keys
                with self._primary_changed:
                    self._primary_changed.wait(timeout=0.05)
        return outcomes

    @staticmethod
    def _apply_here(coordinator: WriteCoordinator, writes: list[tuple], timeout: float) -> list[Any]:
        """This instance is the primary now: its coordinator applies the writes, same keys.
        Answers as the bus would give them: ``{"result": ...}`` or the exception."""
        futures = [coordinator.submit(method, params, key) for method, params, key in writes]
        deadline = time.monotonic() + timeout
        answers: list[Any] = []
        for future in futures:
            try:
                answers.append({"result": future.result(timeout=max(0.0, deadline - time.monotonic()))})
            except concurrent.futures.TimeoutError:
                answers.append(RpcError(kind="unavailable", message="local coordinator timed out"))
            except Exception as exc:  # noqa: BLE001 - the write's own error, kept per write
                answers.append(exc)
        return answers

    def ensure_primary(self, timeout: float | None = None) -> None:
        """Actively ping the primary (before each prompt on a secondary)."""
        if self.role != SECONDARY or self.client is None:
            return
        timeout = float(timeout or self._setting("ping_timeout"))
        try:
            self.client.ping(timeout=timeout)
        except (RpcError, RpcTimeout) as exc:
            pid = self.record.pid if self.record else "?"
            holder_alive = pid_alive(pid) if isinstance(pid, int) else False
            if holder_alive:
                self.hung_reported = True
                raise UnavailableError(
                    f"the primary (pid {pid}) holds the lock but does not answer within {timeout:.1f}s "
                    "(hung or stopped?); not taking over while it holds the lock. "
                    f"Resume it (kill -CONT {pid}) or stop it (kill {pid})."
                ) from exc
            raise UnavailableError(f"the primary (pid {pid}) is gone and no instance has taken over yet") from exc

    # -- promotion -----------------------------------------------------------------------------------

    def promote(self, lock: Any = None) -> None:
        """This secondary won the lock: become the primary (seed: PromoteToPrimary)."""
        with self._state_lock:
            if self.role == PRIMARY:
                return
            started = time.monotonic()
            old_client, old_db, old_record = self.client, self.db, self.record
            proxy = self.store.executor if self.store is not None else None
            self.client = None
            if old_client is not None:
                old_client.close(timeout=1.0)  # in-flight proxied writes go local, same keys
            if old_db is not None:
                old_db.dispose()
            try:
                self._become_primary()
            except BaseException:
                self._undo_promotion(proxy, old_record)
                raise
            self._primary_changed.notify_all()
        assert self.bus is not None
        self.bus.publish(P.INSTANCE_PROMOTED, {"instance_id": self.instance_id, "epoch": self.epoch, "pid": os.getpid()})
        self.instances.register(self.instance_id, self.role, self.epoch)
        log.info("promoted to primary (epoch %s) in %.0f ms", self.epoch, (time.monotonic() - started) * 1000)
        for callback in list(self._promoted_callbacks):
            try:
                callback(self)
            except Exception:  # noqa: BLE001 - a plugin must not undo the promotion
                log.exception("promotion callback failed")

    def _undo_promotion(self, proxy: Any, record: PrimaryRecord | None) -> None:
        """A promotion failed half-way (the caller then gives the lock back): drop whatever it
        built -- above all the read-write connection the store may already be writing through --
        and be a secondary again, proxying writes, pointed at the last known primary so that the
        follower re-points it at whoever is promoted next. Never a writer without the lock."""
        bus, coordinator, db = self.bus, self.coordinator, self.db
        self.bus = self.coordinator = None
        if self.lease_guard is not None:
            self.lease_guard.stop()
            self.lease_guard = None
        self.role = SECONDARY
        self.record = record
        self.epoch = record.epoch if record is not None else 0
        for closer in (
            (lambda: bus.stop(timeout=2.0)) if bus is not None else None,
            (lambda: coordinator.close(timeout=2.0)) if coordinator is not None else None,
            (lambda: db.dispose()) if db is not None else None,
        ):
            if closer is not None:
                try:
                    closer()
                except Exception:  # noqa: BLE001
                    log.exception("cleaning up after a failed promotion")
        self.db = Database(database_path(self.workdir), readonly=True)
        if isinstance(proxy, ProxyExecutor) and self.store is not None:
            proxy.db = self.db  # same executor: its idempotency key sequence carries on
            self.store.use(proxy)
        if record is not None:
            try:
                self.client = self._client(record, client_auth(self.pando_dir, record.auth))
                self._subscribe_all(self.client)
            except Exception:  # noqa: BLE001 - writes wait for the next primary (see send_write)
                log.exception("cannot reconnect after a failed promotion")
                self.client = None
        self._last_change_seq = None

    # -- cleanup --------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Release everything in reverse order; safe to call twice (seed: BootstrapResult.Cleanup)."""
        with self._state_lock:
            if self._cleaned:
                return
            self._cleaned = True
        if self.watcher is not None:
            self.watcher.stop()
        if self.lease_guard is not None:
            self.lease_guard.stop()
        if self.coordinator is not None:
            self.coordinator.close()  # finish in-flight writes first
        if self.bus is not None:
            self._shut_down_bus(self.bus)
        if self.client is not None:
            self.client.close(timeout=1.0)
        if self.db is not None:
            self.db.dispose()
        self.instances.unregister(self.instance_id)
        self.lock.release()


_RESEND_NOW: Any = object()  # _Resending.ask: send again at once, same keys


class _Resending:
    """What :meth:`Runtime.send_writes` keeps between its attempts at a primary."""

    __slots__ = ("attempt_timeout", "one_by_one", "last_error")

    def __init__(self) -> None:
        self.attempt_timeout = 1.0  # doubled after each timeout, up to 5 s
        self.one_by_one = False  # after a batch too large for one message
        self.last_error = "no answer"  # what the unanswered writes are reported with at the deadline

    def ask(self, client: Client, calls: list[tuple[str, Any]], remaining: float) -> list[Any] | None:
        """One attempt: an answer per call (a result or the RpcError it got), None when no
        answer came, or :data:`_RESEND_NOW`."""
        timeout = min(self.attempt_timeout, remaining)
        try:
            if len(calls) == 1 or self.one_by_one:
                return [_answer_of(client, call, timeout) for call in calls]
            return client.call_batch(calls, timeout)
        except CallInterrupted:
            # this instance followed a new primary while the writes were in flight (the old one
            # may have died before or after applying them)
            self.last_error = "the primary changed while the write was in flight"
            return _RESEND_NOW
        except ClientClosed as exc:
            self.last_error = str(exc)
        except RpcTimeout as exc:
            self.last_error = f"timed out ({exc})"
            self.attempt_timeout = min(self.attempt_timeout * 2, 5.0)
        except RpcError as exc:  # the whole batch refused
            if exc.kind == P.KIND_TOO_LARGE:
                self.one_by_one = True  # each write on its own (and too large alone, if it is)
                return _RESEND_NOW
            return [exc] * len(calls)
        return None

    def settle(self, todo: list[int], answers: list[Any] | None, outcomes: list[tuple[bool, Any]]) -> list[int]:
        """Record the outcome of each write of *todo* that got one; returns those to send again."""
        retry = []
        for i, answer in zip(todo, answers or [None] * len(todo), strict=True):
            outcome = None if answer is None else _outcome(answer)
            if outcome is None:
                retry.append(i)
                if answer is not None:
                    self.last_error = str(answer)
            else:
                outcomes[i] = outcome
        return retry


def _not_acknowledged(writes: list[tuple], timeout: float, last_error: str) -> UnavailableError:
    first = writes[0][0]
    what = f"write {first} was" if len(writes) == 1 else f"{len(writes)} writes ({first}, ...) were"
    return UnavailableError(
        f"{what} not acknowledged within {timeout:.0f}s ({last_error}); the primary may be hung: check `pando status`"
    )


def _answer_of(client: Client, call: tuple[str, Any], timeout: float) -> Any:
    """One request's answer: its result, or the RpcError the primary answered with. A call that
    got no answer (timeout, interruption, closed client) raises."""
    try:
        return client.call(*call, timeout)
    except (RpcTimeout, ClientClosed):
        raise
    except RpcError as exc:
        return exc


def _write_call(method: str, params: dict[str, Any], key: tuple[str, int]) -> tuple[str, dict[str, Any]]:
    """The ``db.write`` request of a keyed write."""
    return "db.write", {"method": method, "params": params, "key": list(key)}


def _outcome(answer: Any) -> tuple[bool, Any] | None:
    """A write's answer as ``(True, result)`` or ``(False, error)``; None when it means "not
    applied, or not known to be" (a timeout, a retryable error): resend, same key."""
    if isinstance(answer, RpcTimeout) or (
        isinstance(answer, RpcError) and (answer.retryable or answer.kind == P.KIND_CLOSED)
    ):
        return None
    if isinstance(answer, Exception):
        return False, remote_error(answer) if isinstance(answer, RpcError) else answer
    return True, answer["result"]


class _FencedExecutor(LocalExecutor):
    """A fenced primary's executor: reads from its database, writes refused with the reason."""

    def __init__(self, db: Database | None, instance_id: str, reason: str) -> None:
        super().__init__(db, instance_id)
        self.reason = reason

    def run_write(self, spec: Any, params: dict[str, Any]) -> Any:
        raise UnavailableError(f"{spec.qualified}: not written: {self.reason}; restart pando to write again")

    def run_writes(self, calls: list[tuple[Any, dict[str, Any]]]) -> list[tuple[bool, Any]]:
        return [self._outcome(spec, params) for spec, params in calls]


def bootstrap(
    workdir: str | os.PathLike[str],
    instance_id: str | None = None,
    *,
    failover: bool = True,
    components: list[Component] | None = None,
    config: dict[str, Any] | None = None,
    record_extra: dict[str, Any] | None = None,
) -> Runtime:
    """Run the start-up sequence for ``workdir`` and return the runtime (seed: runtime.Bootstrap)."""
    runtime = Runtime(
        Path(workdir),
        instance_id or uuid.uuid4().hex[:12],
        _components_or_core(components),
        failover=failover,
        config=config,
        record_extra=record_extra,
    )
    try:
        return runtime.start()
    except BaseException:
        runtime.cleanup()
        raise


BootstrapResult = Runtime
