"""What a plugin may use of the App: the typed surface every hook's ``app`` argument offers.

The App has more than this; what is listed here is what the core promises to keep for plugin
authors (docs/plugins.md, "The multi-instance contract"). Type your hooks with it:

    from pando_core.plugin_api import PluginApp

    @hookimpl
    def pando_bus_methods(app: PluginApp):
        ...
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .background import ServiceManager
    from .changes import ChangeFeed
    from .config import Config
    from .db import Store
    from .plugins import Plugins
    from .services.events import EventBroker
    from .services.messages import MessageService
    from .services.sessions import SessionService


@runtime_checkable
class PluginApp(Protocol):
    """The App as plugins see it."""

    workdir: Path
    config: Config  # .section("name") -> dict of your section, validated and with defaults
    store: Store  # repositories, core and plugin: store.notes.add(...); @write goes to the primary
    events: EventBroker  # in-process events: subscribe(prefix, callback), publish(topic, payload)
    plugins: Plugins  # plugins.hooks.<hook>(...) to call a hook yourself; plugins.list()
    services: ServiceManager  # services.get(name): a running role-scoped service here, or None
    changes: ChangeFeed
    sessions: SessionService
    messages: MessageService
    instance_id: str

    @property
    def role(self) -> str:
        """``"primary"`` or ``"secondary"``; a secondary may become the primary at any time."""
        ...

    @property
    def runs_services(self) -> bool:
        """True where the role-scoped services (``pando_services``) run: the primary on SQLite,
        the holder of the team lease in team mode (where every machine has a local primary).
        Ask this, not ``role``, for "is my service here?"; it changes when the services start or
        stop (your service's ``start``/``stop`` are the moments)."""
        ...

    def services_unavailable(self, what: str) -> Exception:
        """An UnavailableError for a bus method that needs *what* where it does not run,
        naming where it does: ``raise app.services_unavailable("the mesnada orchestrator")``."""
        ...

    @property
    def runs_background_work(self) -> bool:
        """False in one-shot commands (``pando cron list``): do not fire schedules or start imports."""
        ...

    def call_primary(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Call a bus method (``pando_bus_methods``) on the primary, from any instance."""
        ...

    def data_dir(self, plugin: str) -> Path:
        """``.pando/<plugin>/`` (created, mode 0700): where a plugin keeps its files."""
        ...
