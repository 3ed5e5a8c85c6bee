"""The App: every service of one pando instance, built on the runtime's store.

``App.create(context, options)`` bootstraps the multi-instance runtime for the working directory
(primary or secondary), builds the services on the resulting store, lets plugins attach their
subsystems, and wires the roles: on the primary (at start, or when a secondary is promoted) it
serves the bus methods and starts the primary-only services (``setup_ipc``); on a secondary it
waits to be promoted and warns when its plugins differ from the primary's. What plugins may use of
it is ``pando_core.plugin_api.PluginApp``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .agent.tools.base import FileReadTracker, ToolContext, ToolResult
from .context import PandoContext
from .db import Component, core_component
from .services.events import EventBroker
from .services.history import HistoryService
from .services.messages import MessageService
from .services.permissions import PermissionService
from .services.sessions import SessionService

log = logging.getLogger("pando.app")


@dataclass
class AppOptions:
    """How to build an App."""

    skip_lsp: bool = False  # `--skip-lsp`: a language-server plugin starts no server
    startup_mode: str = "interactive"  # interactive | run | goal | mcp-server | cron | status ...
    store: Any = None  # override the repositories (tests, embedding); skips the runtime
    instance_id: str | None = None
    failover: bool | None = None  # None: from config [runtime] failover
    yolo: bool = False
    model: str | None = None
    interactive_permissions: Any = None  # async asker(PermissionRequest) -> once|session|always|deny
    observe: bool = False  # read-only commands: never become primary (runtime/observer.py)
    background_work: bool | None = None  # None: only the session-hosting modes (HOST_MODES) do it


# modes that host sessions for as long as a user keeps them open; any other mode is a one-shot
# command (`pando cron list`, `pando mesnada show`), which must not fire schedules or start imports
# just because it happens to be the primary for a moment
HOST_MODES = frozenset({"interactive", "run", "goal", "acp", "mcp-server", "instance", "web"})


class App:
    def __init__(self, context: PandoContext, options: AppOptions, store: Any, runtime: Any = None) -> None:
        self.context = context
        self.options = options
        self.workdir = context.workdir
        self.config = context.config
        self.plugins = context.plugins
        self.store = store
        self.runtime = runtime
        self.instance_id = getattr(runtime, "instance_id", None) or options.instance_id or uuid.uuid4().hex[:12]
        self.events = EventBroker()
        self.sessions = SessionService(self)
        self.messages = MessageService(self)
        self.history = HistoryService(self)
        self.permissions = PermissionService(
            self.config.section("permissions"), store, yolo=options.yolo, asker=options.interactive_permissions
        )
        self.snapshots = self._snapshot_service()
        from .services.checkpoints import CheckpointService

        self.checkpoints = CheckpointService(self)
        self.model_ref = options.model
        self.file_tracker = FileReadTracker()
        self.ipc_bus = None  # the primary's bus (set by setup_ipc), None on a secondary
        self._providers: dict[str, Any] = {}
        self._pager = None
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        from .agent.loop import CoderAgent

        self.coder_agent = CoderAgent(self)
        self.subsystems: dict[str, Any] = {}
        from .background import ServiceManager
        from .changes import ChangeFeed

        self.services = ServiceManager(self)
        self.changes = ChangeFeed(self)
        self.plugin_mismatch = ""
        self._bus_handlers: dict[str, Any] | None = None
        self.team_services: Any = None  # team mode: the lease that elects this instance to run the services

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def create(cls, context: PandoContext, options: AppOptions | None = None) -> App:
        options = options or AppOptions()
        runtime = None
        if options.store is not None:
            store = options.store
        else:
            from .db import database_settings
            from .runtime import bootstrap

            runtime_cfg = context.config.section("runtime")
            database = database_settings(context.config.section("database"))
            failover = runtime_cfg["failover"] if options.failover is None else options.failover
            components = db_components(context)
            if options.observe:
                from .runtime.observer import observe

                runtime = observe(
                    context.workdir, options.instance_id, components=components, config=runtime_cfg, database=database
                )
            else:
                runtime = bootstrap(
                    context.workdir,
                    options.instance_id,
                    failover=failover,
                    components=components,
                    config=runtime_cfg,
                    database=database,
                    record_extra={
                        "plugins": context.plugins.loaded(),
                        "components": component_versions(components),
                    },
                )
            store = runtime.store
        app = cls(context, options, store, runtime)
        if runtime is not None:
            runtime.on_interrupt(app.coder_agent.cancel)
        try:
            app._attach_subsystems()
            if runtime is None or runtime.role == "primary":
                app.setup_ipc(runtime.bus if runtime is not None else None)
            else:
                app.set_ipc_secondary_context(runtime)
                app.plugin_mismatch = app._compare_plugins_with_primary()
            if runtime is not None:
                runtime.on_fenced(app._on_fenced)
            app._elect_for_services()
            app.changes.attach()
            context.plugins.hooks.pando_started(app=app, role=app.role)
        except BaseException:
            app.shutdown()
            raise
        return app

    @classmethod
    @contextmanager
    def running(cls, context: PandoContext, options: AppOptions | None = None) -> Iterator[App]:
        """``with App.running(context, options) as app:`` — created, and shut down however the block ends."""
        app = cls.create(context, options)
        try:
            yield app
        finally:
            app.shutdown()

    def _snapshot_service(self):
        if not self.config.section("snapshots").get("enabled", True):
            return None
        from .services.snapshots import SnapshotService

        return SnapshotService.from_config(self.workdir, self.config)

    def take_snapshot(self, label: str, session_id: str) -> None:
        """Best effort: a snapshot failure is logged, never fatal to the session."""
        if self.snapshots is None:
            return
        try:
            self.snapshots.take(label, session_id=session_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("snapshot %r failed: %s", label, exc)

    def _attach_subsystems(self) -> None:
        for mapping in self.plugins.hooks.pando_app_subsystems(app=self):
            for name, value in dict(mapping).items():
                if hasattr(self, name) and name not in self.subsystems:
                    log.warning("plugin subsystem %r would hide an App attribute; skipped", name)
                    continue
                self.subsystems[name] = value
                setattr(self, name, value)

    @property
    def runs_background_work(self) -> bool:
        """Whether plugins' long-lived work (schedules, imports, watchers) belongs in this process."""
        chosen = self.options.background_work
        return self.options.startup_mode in HOST_MODES if chosen is None else chosen

    @property
    def role(self) -> str:
        return getattr(self.runtime, "role", "primary")  # no runtime (a store given): primary

    @property
    def runs_services(self) -> bool:
        """Whether the role-scoped services (``pando_services``: schedulers, the orchestrator,
        indexers) run in this instance: on SQLite when it is the working directory's primary
        (and not fenced), in team mode when it holds the team lease. A plugin's "is my service
        here?" is this, not ``role``: in team mode every machine has a local primary of its own."""
        runtime = self.runtime
        if runtime is None:
            return True
        if self.team:
            return self.team_services is not None and self.team_services.held
        return runtime.role == "primary" and not getattr(runtime, "fenced", None)

    def services_unavailable(self, what: str) -> Exception:
        """The error a bus method needing a role-scoped service raises where it does not run:
        ``raise app.services_unavailable("the mesnada orchestrator")``. It names where they run."""
        from .errors import UnavailableError

        if not self.team:
            return UnavailableError(f"{what} runs on the primary; this instance is not it")
        from .runtime.team import SERVICE_GROUP, describe_owner
        from .runtime.team_lease import lease_key

        db = self.runtime.db
        if self.team_services is not None:
            owner = self.team_services.owner()
        else:
            from .runtime.team import database_name

            owner = describe_owner(db.url, lease_key(database_name(db.url), SERVICE_GROUP), getattr(db, "password", None))
        return UnavailableError(
            f"{what} runs on the team's service owner ({owner}), not on this machine's primary: "
            "run this on that machine"
        )

    # -- IPC roles, bus methods, services ------------------------------------------------------------

    @property
    def team(self) -> bool:
        """Team mode: a PostgreSQL database that every instance of the team writes directly."""
        return bool(getattr(self.runtime, "team", False))

    def setup_ipc(self, bus: Any) -> None:
        """This instance is the primary (at start, or promoted): serve the plugins' bus methods on
        *bus*, let plugins set it up, and start the primary-only services (in team mode the
        team lease decides where they run instead: see :meth:`_elect_for_services`)."""
        self.ipc_bus = bus
        if not self.team:
            self.services.start_all()  # first: a bus method may need its plugin's service
        handlers = self._bus_methods()
        if bus is not None:
            for method, handler in handlers.items():
                bus.register(method, _bus_handler(handler), params="object", replace=True)
            self.plugins.hooks.pando_bus_setup(bus=bus, app=self)

    def _bus_methods(self) -> dict[str, Any]:
        """The plugins' bus methods, collected once per App (``pando_bus_methods``)."""
        if self._bus_handlers is None:
            handlers: dict[str, Any] = {
                "core.services": lambda params: self.services.status(),
                **self.sessions.bus_methods(),
                **self.messages.bus_methods(),
            }
            for plugin, declared in self.plugins.hooks.pando_bus_methods.per_plugin(app=self):
                if not isinstance(declared, dict):
                    log.warning("plugin %r: pando_bus_methods must return a dict; ignored", plugin)
                    continue
                for method, handler in declared.items():
                    if not isinstance(method, str) or "." not in method or not callable(handler):
                        log.warning("plugin %r: bus method %r needs a dotted name and a callable; ignored", plugin, method)
                        continue
                    if method in handlers:
                        log.warning("plugin %r: bus method %r is already served by another plugin; ignored", plugin, method)
                        continue
                    handlers[method] = handler
            self._bus_handlers = handlers
        return self._bus_handlers

    def call_primary(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Call a plugin's bus method on the primary: here on the primary, over the bus on a
        secondary (sent again to a new primary after a failover, until *timeout*, by default
        ``[runtime] write_timeout``). Errors keep their class on both sides."""
        params = {} if params is None else params
        if self.runtime is None:
            return self._call_here(method, params)
        from .runtime.calls import call_on_primary

        limit = float(timeout) if timeout is not None else self.runtime.write_timeout
        return call_on_primary(self.runtime, method, params, limit, self._call_here)

    def _call_here(self, method: str, params: Any) -> Any:
        handler = self._bus_methods().get(method)
        if handler is None:
            from .errors import UnavailableError

            raise UnavailableError(f"no plugin of this pando serves {method!r}")
        return handler(params)

    def data_dir(self, plugin: str) -> Path:
        """``.pando/<plugin>/``, created (mode 0700) on first use: where a plugin keeps its files."""
        if not plugin or "/" in plugin or plugin.startswith("."):
            raise ValueError(f"not a plugin name: {plugin!r}")
        path = Path(self.workdir) / ".pando" / plugin
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def set_ipc_secondary_context(self, runtime: Any) -> None:
        """Secondary: keep the runtime and be told when this instance is promoted."""
        self.ipc_bus = None
        runtime.on_promoted(self._on_promoted)

    def _compare_plugins_with_primary(self) -> str:
        """A secondary whose plugins differ from the primary's says so, in one line, at start."""
        record = getattr(self.runtime, "record", None)
        theirs = (record.extra or {}).get("plugins") if record is not None else None
        if not isinstance(theirs, dict):
            return ""
        ours = self.plugins.loaded()
        only_here = sorted(set(ours) - set(theirs))
        only_there = sorted(set(theirs) - set(ours))
        if not only_here and not only_there:
            return ""
        parts = []
        if only_here:
            parts.append(
                f"this pando has {', '.join(only_here)} but the primary (pid {record.pid}) does not: "
                "their writes and primary-side features will fail until the primary runs them too"
            )
        if only_there:
            parts.append(f"the primary also runs {', '.join(only_there)}, which this pando does not load")
        message = "pando: plugins differ from the primary's: " + "; ".join(parts)
        print(message, file=sys.stderr)
        return message

    # -- session.interrupt: cancel a running turn from any instance ----------------------------------

    def interrupt_session(self, session_id: str) -> None:
        """Cancel the turn running for ``session_id`` wherever it runs (this or another instance)."""
        if self.runtime is None:
            self.coder_agent.cancel(session_id)
        else:
            self.runtime.interrupt_session(session_id)

    def _on_promoted(self, runtime: Any) -> None:
        self.setup_ipc(runtime.bus)
        self._elect_for_services()  # team mode: the new local primary stands for the team lease
        self.changes.attach()
        self.plugins.hooks.pando_promoted(app=self, epoch=runtime.epoch)
        self.events.publish("instance.promoted", {"epoch": runtime.epoch, "instance_id": self.instance_id})

    def _elect_for_services(self) -> None:
        """Team mode: the role-scoped services run on the one instance of the team holding the
        team lease (a PostgreSQL advisory lock). Only a machine's local primary stands for it
        (at start, or when promoted), so that on the owner's machine ``call_primary`` reaches the
        instance running them; it stops standing when fenced or shut down. A read-only command
        (an observer) never stands."""
        if not self.team or self.options.observe or self.role != "primary" or self.team_services is not None:
            return
        if getattr(self.runtime, "fenced", None):
            return
        from .runtime.team import TeamServices

        db = self.runtime.db
        self.team_services = TeamServices(self, db.url, getattr(db, "password", None)).start()

    def _on_fenced(self, reason: str) -> None:
        """This primary stopped serving (its lock is gone): its services stop too; in team mode
        it also stops standing for the team lease and gives it up, for another machine's primary."""
        team_services, self.team_services = self.team_services, None
        if team_services is not None:
            team_services.close(reason="fenced")
        self.services.stop_all(reason="fenced")

    def ensure_primary(self) -> None:
        """Before each prompt on a secondary: actively ping the primary; a hung one is reported."""
        if self.runtime is not None and self.role == "secondary":
            self.runtime.ensure_primary()

    # -- agent helpers -----------------------------------------------------------------------------

    def provider_for(self, resolved: Any) -> Any:
        from .agent.models import create_provider_for

        provider = self._providers.get(resolved.provider_name)
        if provider is None:
            provider = create_provider_for(resolved, self.plugins)
            self._providers[resolved.provider_name] = provider
        return provider

    def tool_context(self, session_id: str, message_id: str, call_id: str, cancel_event: asyncio.Event | None) -> ToolContext:
        return ToolContext(
            workdir=self.workdir,
            session_id=session_id,
            message_id=message_id,
            call_id=call_id,
            files=self.file_tracker,
            history=self.history,
            permissions=self.permissions,
            allow_outside_workdir=self.permissions.config.get("allow_outside_workdir", False),
            cancel_event=cancel_event,
            extra={"app": self},
        )

    @property
    def pager(self):
        """The one store of large tool results: filled by the loop, read by the result_page tool."""
        if self._pager is None:
            from .agent.tools.paging import ResultPager

            self._pager = ResultPager()
        return self._pager

    def page_result(self, result: ToolResult, ctx: ToolContext, tool_name: str) -> ToolResult:
        """`result` of the tool `tool_name` (called with `ctx`), paged through the app's pager when large."""
        from .agent.tools.paging import wrap_large_result

        return wrap_large_result(result, ctx, self.pager, tool_name)

    async def aclose_providers(self) -> None:
        """Close every provider built so far (their HTTP clients) in the running loop, and forget them."""
        providers = list(self._providers.values())
        self._providers.clear()
        for provider in providers:
            closer = getattr(provider, "aclose", None)
            if closer is None:
                continue
            try:
                await closer()
            except Exception:  # noqa: BLE001 - closing goes on
                log.debug("closing provider %r failed", provider, exc_info=True)

    # -- entry points --------------------------------------------------------------------------------

    def run_non_interactive(self, prompt: str, output_format: str = "text", quiet: bool = False, yolo: bool = False, **kwargs: Any) -> int:
        from .frontends.run import run_non_interactive

        return run_non_interactive(self, prompt, output_format=output_format, quiet=quiet, yolo=yolo, **kwargs)

    # -- shutdown ------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
        try:
            self.plugins.hooks.pando_shutdown(app=self)
        except Exception:  # noqa: BLE001 - strict mode re-raised; shutdown goes on
            log.exception("a plugin failed during shutdown")
        team_services, self.team_services = self.team_services, None
        if team_services is not None:
            team_services.close(reason="shutdown")  # stops the services, then frees the lease
        self.services.stop_all(reason="shutdown")
        self.changes.close()
        if self._providers:  # one event loop for all of them, and none when there is nothing to close
            closing = self.aclose_providers()
            try:
                asyncio.run(closing)
            except Exception:  # noqa: BLE001 - e.g. called from inside a running loop
                closing.close()
                self._providers.clear()
                log.debug("closing the providers failed", exc_info=True)
        if self.runtime is not None:
            self.runtime.cleanup()


def db_components(context: PandoContext) -> list[Component]:
    return [core_component(), *context.plugins.hooks.pando_db_components.flat()]


def component_versions(components: list[Component]) -> dict[str, int]:
    """``{component: latest migration version}``: what the primary records in primary.json."""
    return {c.name: max((m.version for m in c.migrations), default=0) for c in components}


def _bus_handler(handler: Any) -> Any:
    """A plugin's ``handler(params)`` as the bus calls it: ``(params, call)``."""

    def serve(params: Any, call: Any) -> Any:
        return handler(params)

    return serve
