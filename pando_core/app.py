"""The App: every service of one pando instance, built on the runtime's store (seed: app.App).

``App.create(context, options)`` bootstraps the multi-instance runtime for the working directory
(primary or secondary), builds the services on the resulting store, lets plugins attach their
subsystems, and wires the IPC roles (``setup_ipc`` on a primary, ``set_ipc_secondary_context`` on
a secondary, ``promote_to_primary`` when a secondary takes over).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    """How to build an App (seed: app.AppOptions)."""

    # seed fields: no LSP client or Mesnada HTTP server is built by the core; plugins may read them
    skip_lsp: bool = True
    skip_mesnada_server: bool = False
    startup_mode: str = "interactive"  # interactive | run | goal | mcp-server | cron | status ...
    store: Any = None  # override the repositories (tests, embedding); skips the runtime
    instance_id: str | None = None
    failover: bool | None = None  # None: from config [runtime] failover
    yolo: bool = False
    model: str | None = None
    interactive_permissions: Any = None  # async asker(PermissionRequest) -> once|session|always|deny


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
        self.projects = getattr(store, "projects", None)  # seed: App.Projects
        self.snapshots = self._snapshot_service()
        self.model_ref = options.model
        self.file_tracker = FileReadTracker()
        self.ipc_bus = None  # seed: App.IPCBus, set on the primary by setup_ipc
        self._providers: dict[str, Any] = {}
        self._pager = None
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        from .agent.loop import CoderAgent

        self.coder_agent = CoderAgent(self)
        self.subsystems: dict[str, Any] = {}

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def create(cls, context: PandoContext, options: AppOptions | None = None) -> App:
        options = options or AppOptions()
        runtime = None
        if options.store is not None:
            store = options.store
        else:
            from .runtime import bootstrap

            runtime_cfg = context.config.section("runtime")
            failover = runtime_cfg["failover"] if options.failover is None else options.failover
            runtime = bootstrap(
                context.workdir,
                options.instance_id,
                failover=failover,
                components=db_components(context),
                config=runtime_cfg,
            )
            store = runtime.store
        app = cls(context, options, store, runtime)
        if runtime is not None:
            runtime.on_interrupt(app.coder_agent.cancel)
        try:
            app._attach_subsystems()
            if runtime is not None:
                if runtime.role == "primary":
                    app.setup_ipc(runtime.bus)
                else:
                    app.set_ipc_secondary_context(runtime)
            context.plugins.call_sync("pando_started", app=app, role=app.role)
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
        for mapping in self.plugins.call_sync("pando_app_subsystems", app=self):
            for name, value in dict(mapping).items():
                if hasattr(self, name) and name not in self.subsystems:
                    log.warning("plugin subsystem %r would hide an App attribute; skipped", name)
                    continue
                self.subsystems[name] = value
                setattr(self, name, value)

    @property
    def role(self) -> str:
        return getattr(self.runtime, "role", "primary")  # no runtime (a store given): primary

    @property
    def ipc_is_primary(self) -> bool:
        """Seed: App.IPCIsPrimary -- whether this instance holds the lock, i.e. its role."""
        return self.role == "primary"

    # -- IPC roles (seed: SetupIPC, SetIPCSecondaryContext, EnsurePrimary, PromoteToPrimary) ---------

    def setup_ipc(self, bus: Any) -> None:
        """Primary: remember the bus and let every plugin register its RPC methods on it."""
        self.ipc_bus = bus
        self.plugins.call_sync("pando_bus_setup", bus=bus, app=self)

    def set_ipc_secondary_context(self, runtime: Any) -> None:
        """Secondary: keep the runtime and be told when this instance is promoted."""
        self.ipc_bus = None
        runtime.on_promoted(self._on_promoted)

    # -- session.interrupt: cancel a running turn from any instance ----------------------------------

    def interrupt_session(self, session_id: str) -> None:
        """Cancel the turn running for ``session_id`` wherever it runs (this or another instance)."""
        if self.runtime is None:
            self.coder_agent.cancel(session_id)
        else:
            self.runtime.interrupt_session(session_id)

    def _on_promoted(self, runtime: Any) -> None:
        self.setup_ipc(runtime.bus)
        self.plugins.call_sync("pando_promoted", app=self, epoch=runtime.epoch)
        self.events.publish("instance.promoted", {"epoch": runtime.epoch, "instance_id": self.instance_id})

    def promote_to_primary(self, lock: Any = None) -> None:
        """Take over as primary now (normally run by the failover watcher when the lock is won)."""
        if self.runtime is None:
            raise RuntimeError("this App has no runtime")
        self.runtime.promote(lock)

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
            self.plugins.call_sync("pando_shutdown", app=self)
        except Exception:  # noqa: BLE001 - shutdown goes on
            log.exception("a plugin failed during shutdown")
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
    return [core_component(), *context.plugins.flat("pando_db_components")]
