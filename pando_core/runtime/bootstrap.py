"""Bootstrap: become the primary of a working directory, or a secondary of its primary.

``bootstrap(workdir, instance_id)`` tries the lock without blocking. The winner opens the
database read-write, runs migrations, binds its bus, bumps the epoch and writes ``primary.json``.
A loser reads ``primary.json``, checks that primary answers, opens the database read-only and
proxies its writes; with failover on, it parks a thread in a blocking lock acquire and promotes
itself the moment the kernel hands it the lock (the primary died).

What changes the role later is in ``failover.py`` (promote, follow, fence); what a secondary takes
from the bus in ``subscriptions.py``; where its writes go in ``write_proxy.py``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import core_defaults
from ..db import (
    Component,
    Database,
    DatabaseSettings,
    LocalExecutor,
    MethodRegistry,
    Store,
    database_path,
    migrate,
    open_database,
)
from ..errors import PandoError, UnavailableError
from . import protocol as P
from .auth import client_auth, server_auth
from .bus import Bus
from .client import Client
from .endpoints import Endpoints, choose_endpoints, remove_ipc_socket_dir
from .epoch import next_epoch
from .failover import RoleChanges
from .instances import InstanceRegistry, pid_alive
from .lock import (
    PRIMARY_RECORD_NAME,
    InstanceLock,
    LockError,
    PrimaryRecord,
    ensure_pando_dir,
    read_primary_record,
    write_primary_record,
)
from .protocol import RpcError, RpcTimeout
from .roles import PRIMARY, SECONDARY
from .subscriptions import BusSubscriptions
from .write_coordinator import WriteCoordinator
from .write_proxy import ProxyExecutor

log = logging.getLogger("pando.runtime")

# the [runtime] settings' defaults, declared once, in the config section (bootstrap() may be
# called without the App's configuration: tests, benchmarks, plugins)
_RUNTIME_DEFAULTS = core_defaults("runtime")

CONNECT_DEADLINE_S = 15.0


class BootstrapError(PandoError):
    pass


def hung_primary_message(pid: int | str, waited: float | None = None) -> str:
    """The one line said when the lock holder is alive but does not answer its pings."""
    within = f" within {waited:.1f}s" if waited is not None else ""
    return (
        f"the primary (pid {pid}) holds the lock but does not answer{within} (hung or stopped?); "
        f"not taking over while it holds the lock. Resume it (kill -CONT {pid}) or stop it (kill {pid})."
    )


def _components_or_core(components: list[Component] | None) -> list[Component]:
    if components:
        return components
    from ..db import core_component

    return [core_component()]


class Runtime(RoleChanges, BusSubscriptions):
    """The multi-instance runtime of one process: its role in the working directory and what goes with it.

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
        database: DatabaseSettings | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        # team mode (PostgreSQL): every instance writes the shared database directly; the local
        # primary only serves the bus (bus methods, events, interrupts), never anyone's writes
        self.database = database or DatabaseSettings()
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
        self.promotion_failure: str | None = None  # secondary: why its last promotion failed
        self._unanswered: PrimaryRecord | None = None  # start-up: the record whose primary did not answer a ping
        self.instances = InstanceRegistry(self.pando_dir)
        self._promoted_callbacks: list[Callable[[Runtime], None]] = []
        self._event_callbacks: list[tuple[str, Callable[[P.Event], None]]] = []  # (topic prefix, callback)
        self._interrupt_callbacks: list[Callable[[str], None]] = []
        self._fenced_callbacks: list[Callable[[str], None]] = []
        # shared by the runtime's parts (promotion, following, the write sender): the role, the
        # client and the coordinator change under it, and primary_changed is notified when they do
        self.state_lock = threading.RLock()
        self.primary_changed = threading.Condition(self.state_lock)
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

    # -- start ---------------------------------------------------------------------------------------

    def start(self) -> Runtime:
        try:
            ensure_pando_dir(self.pando_dir)
        except LockError as exc:
            raise BootstrapError(f"cannot use {self.pando_dir}: {exc}") from exc
        deadline = time.monotonic() + CONNECT_DEADLINE_S
        last_problem = "no primary record"
        silent_since: float | None = None  # when the live lock holder's pings began to fail
        while True:
            try:
                won = self.lock.try_acquire()
            except LockError as exc:
                raise BootstrapError(f"cannot take the instance lock {self.lock.path}: {exc}") from exc
            if won:
                self._become_primary()
                break
            tried_at = time.monotonic()
            self._unanswered = None
            problem = self._try_become_secondary()
            if problem is None:
                break
            last_problem = problem
            # a holder that is alive but silent is hung or stopped: say so within the ping
            # timeout instead of waiting out the whole connect deadline
            if self._unanswered is None or not pid_alive(self._unanswered.pid):
                silent_since = None
            elif silent_since is None:
                silent_since = tried_at
            elif time.monotonic() - silent_since >= float(self._setting("ping_timeout")):
                raise BootstrapError(hung_primary_message(self._unanswered.pid, time.monotonic() - silent_since))
            if time.monotonic() >= deadline:
                raise BootstrapError(
                    f"another pando holds {self.lock.path} but its primary does not answer ({last_problem}); "
                    "if it is hung, stop it (kill it) and try again"
                )
            time.sleep(0.02)
        self.instances.register(self.instance_id, self.role, self.epoch)
        return self

    def _open_writable(self) -> Any:
        """The database opened read-write: SQLite in ``.pando/``, or the team's PostgreSQL
        (kept across a promotion: it was read-write already)."""
        if self.database.team and self.db is not None:
            return self.db
        return open_database(self.workdir, self.database, writer_id=self.instance_id)

    def _become_primary(self) -> None:
        previous = read_primary_record(self.pando_dir)
        self.db = self._open_writable()
        migrate(self.db, self.components)  # on PostgreSQL under the advisory lock: once per team
        self.epoch = next_epoch(self.db, previous.epoch if previous else 0)  # also kept in the database
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
        self.bus.on_failure = self._bus_failed
        self.bus.start()
        if not self.database.team:  # team mode: changes travel by NOTIFY (runtime.team), not the bus
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
            if not (self.pando_dir / PRIMARY_RECORD_NAME).exists():
                return "no primary record yet"  # the primary is starting
            from .discovery import primary_at_derived_endpoints  # damaged: ask rather than wait

            record = primary_at_derived_endpoints(
                self.workdir, self.pando_dir, self._setting("transport"), self.instance_id
            )
            if record is None:
                return "the primary record is damaged and no primary answers on the derived endpoints"
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
            self._unanswered = record
            client.close()
            return f"primary pid {record.pid} did not answer a ping ({exc})"
        if info.get("epoch") != record.epoch or info.get("instance_id") != record.instance_id:
            client.close()
            return "primary record is stale"
        db_path = database_path(self.workdir)
        if not self.database.team and not db_path.exists():
            client.close()
            return "database not created yet"
        if self.database.team:  # writes go straight to PostgreSQL, as on every instance of the team
            try:
                db = self._open_writable()
                migrate(db, self.components)  # normally nothing left: the lock makes it safe anyway
            except BaseException:
                client.close()
                raise
            executor: Any = LocalExecutor(db, self.instance_id)
        else:
            db = Database(db_path, readonly=True)
            executor = ProxyExecutor(self, db, write_timeout=self.write_timeout)
        self.record = record
        self.epoch = record.epoch
        self.client = client
        self.db = db
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

    def _publish_changes(self, changes: list, writer: str) -> None:
        bus = self.bus
        if bus is None:
            return
        for change in changes:
            bus.publish_change(P.db_topic(change.table, change.op), {"ids": change.ids, "writer": writer or self.instance_id})

    def ensure_primary(self, timeout: float | None = None) -> None:
        """Actively ping the primary (before each prompt on a secondary). Not in team mode: there
        a secondary's writes go to PostgreSQL directly, so a hung local primary stops only what
        needs the bus (bus methods, interrupts), not a turn."""
        if self.role != SECONDARY or self.client is None or self.database.team:
            return
        timeout = float(timeout or self._setting("ping_timeout"))
        try:
            self.client.ping(timeout=timeout)
        except (RpcError, RpcTimeout) as exc:
            pid = self.record.pid if self.record else "?"
            holder_alive = pid_alive(pid) if isinstance(pid, int) else False
            if holder_alive:
                raise UnavailableError(hung_primary_message(pid, timeout)) from exc
            raise UnavailableError(f"the primary (pid {pid}) is gone and no instance has taken over yet") from exc

    # -- cleanup --------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Release everything in reverse order; safe to call twice."""
        with self.state_lock:
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
            if not self.fenced and self.lock.still_held():  # a fenced primary's folder is its successor's
                remove_ipc_socket_dir(self.bus.endpoints)
        if self.client is not None:
            self.client.close(timeout=1.0)
        self._stop_team_changes()
        if self.db is not None:
            self.db.dispose()
        self.instances.unregister(self.instance_id)
        self.lock.release()


def bootstrap(
    workdir: str | os.PathLike[str],
    instance_id: str | None = None,
    *,
    failover: bool = True,
    components: list[Component] | None = None,
    config: dict[str, Any] | None = None,
    record_extra: dict[str, Any] | None = None,
    database: DatabaseSettings | None = None,
) -> Runtime:
    """Run the start-up sequence for ``workdir``: this process becomes its primary or a secondary;
    returns the started runtime (released again if start-up fails)."""
    runtime = Runtime(
        Path(workdir),
        instance_id or uuid.uuid4().hex[:12],
        _components_or_core(components),
        failover=failover,
        config=config,
        record_extra=record_extra,
        database=database,
    )
    try:
        return runtime.start()
    except BaseException:
        runtime.cleanup()
        raise


BootstrapResult = Runtime
