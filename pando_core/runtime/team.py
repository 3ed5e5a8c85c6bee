"""Team mode on one instance: other instances' changes, and who runs the role-scoped services.

With ``[database] url`` on PostgreSQL every instance writes directly, on any machine, so no
primary sees every commit and the bus cannot carry change events between machines. Two things
replace what the primary did:

- :class:`TeamChanges` listens to the NOTIFY every write transaction sends
  (:mod:`pando_core.db.pg_changes`) and hands each change to the runtime's event listeners as the
  bus's ``db.<table>.<op>`` events would be (``{"ids", "writer"}``), and a ``state.resync`` event
  after a reconnect or an oversized change set: ``runtime.on_event`` and the change feed
  (``pando_changes_committed``) work unchanged, on every instance.
- :class:`TeamServices` elects, with a PostgreSQL advisory lock held on its own connection
  (:mod:`.team_lease`), the one instance of the team that runs the plugins' role-scoped services
  (``app.runs_services``). Only a machine's local primary stands for it -- so that on the owner's
  machine ``app.call_primary`` reaches the instance that runs them -- and every other local
  primary stands by and tries again every half second, so the services move within about a
  second of their owner's death. The lease's connection carries the owner's instance id, pid and
  host in its ``application_name``, which :meth:`TeamServices.owner` reads back for messages.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from . import protocol as P

log = logging.getLogger("pando.runtime.team")

SERVICE_GROUP = "services"  # one lease for all the plugins' role-scoped services


def is_team_url(url: Any) -> bool:
    return isinstance(url, str) and url.startswith("postgresql")


class TeamChanges:
    """Feeds *runtime*'s event listeners from ``LISTEN pando_changes`` on *url*."""

    def __init__(self, runtime: Any, url: str, password: str | None = None) -> None:
        from ..db.pg_changes import ChangeListener

        self.runtime = runtime
        self.listener = ChangeListener(url, self._changes, self._resync, password=password)

    def start(self) -> TeamChanges:
        self.listener.start(require=False)  # a server briefly away must not fail the listener's caller
        return self

    def _changes(self, changes: list[Any], writer: str) -> None:
        runtime = self.runtime
        now = P.now_ms()
        for change in changes:
            event = P.Event(P.db_topic(change.table, change.op), 0, runtime.epoch, writer, now,
                            {"ids": list(change.ids), "writer": writer})
            runtime._dispatch_event(event)

    def _resync(self) -> None:
        runtime = self.runtime
        runtime.resyncs += 1
        runtime._dispatch_event(P.Event(P.STATE_RESYNC, 0, runtime.epoch, runtime.instance_id, P.now_ms(), {}))

    def close(self) -> None:
        self.listener.close()


def database_name(url: str) -> str:
    """The database *url* names (advisory locks are per database; the name keeps the key
    readable in logs and apart from other pando teams' databases on the same server)."""
    from psycopg.conninfo import conninfo_to_dict

    from ..db.pg_changes import libpq_conninfo

    try:
        return str(conninfo_to_dict(libpq_conninfo(url)).get("dbname") or "")
    except Exception:  # noqa: BLE001 - a URL libpq cannot parse fails later, with libpq's message
        return ""


class TeamServices:
    """The team lease for *app*'s role-scoped services: started on the instance holding it,
    stopped when it is lost; the others keep trying."""

    def __init__(self, app: Any, url: str, password: str | None = None, group: str = SERVICE_GROUP) -> None:
        from .team_lease import LeaseElection, lease_key

        self.app = app
        self.url, self.password = url, password
        self.key = lease_key(database_name(url), group)
        name = owner_name(app.instance_id, os.getpid(), socket.gethostname())
        self.election = LeaseElection(url, self.key, self._won, self._lost, password=password, application_name=name)

    @property
    def held(self) -> bool:
        return self.election.held

    def start(self) -> TeamServices:
        self.election.start()
        return self

    def owner(self) -> str:
        """Who runs the services now, in words ("instance 1a2b (pid 42) on host build-3"), or
        "no instance right now" (a failover under way, or nobody standing)."""
        return describe_owner(self.url, self.key, self.password)

    def _won(self) -> None:
        log.info("this instance holds the team lease: starting the role-scoped services")
        self.app.services.start_all()

    def _lost(self) -> None:
        log.warning("team lease lost: stopping the role-scoped services")
        self.app.services.stop_all(reason="team lease lost")

    def close(self, reason: str = "shutdown") -> None:
        """Stop trying, stop the services, then give the lease up: in that order, so that the
        next owner starts them only once they have stopped here."""
        self.election.stop_trying()
        self.app.services.stop_all(reason=reason)
        self.election.close()


def owner_name(instance_id: str, pid: int, host: str) -> str:
    """The lease connection's ``application_name`` (PostgreSQL keeps 63 bytes of it)."""
    return f"pando:{instance_id}:{pid}:{host}"[:63]


def describe_owner(url: str, key: int, password: str | None = None) -> str:
    from .team_lease import lease_holder

    name = lease_holder(url, key, password)
    if not name:
        return "no instance right now"
    parts = name.split(":", 3)
    if len(parts) == 4 and parts[0] == "pando":
        return f"instance {parts[1]} (pid {parts[2]}) on host {parts[3]}"
    return f"the session {name!r}"
