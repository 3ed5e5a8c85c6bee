"""Observing a working directory without taking part in its election: what read-only commands use.

``pando status``, ``pando sessions list``, ``pando history`` and the other commands that only
read must never become the primary, bump the epoch or create ``.pando/`` where there is none.
:func:`observe` reads ``primary.json``: when that primary answers a ping, the observer joins it as
a secondary that follows primaries but never takes the lock (it is not listed by ``pando
instances`` either); otherwise it reads the database file itself, read-only, and refuses writes in
one line. With no database at all it reads an empty one made in a temporary directory, so that a
read-only command in a fresh directory simply finds nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..db import Component, Database, DatabaseSettings, LocalExecutor, Store, database_path, migrate
from ..db.repository import MethodSpec
from ..errors import UnavailableError
from .bootstrap import Runtime, _components_or_core, hung_primary_message
from .instances import pid_alive
from .lock import PrimaryRecord, read_primary_record
from .roles import OBSERVER, SECONDARY

NO_PRIMARY = "no pando is running here"


@dataclass(frozen=True)
class PrimaryState:
    """What an observer found: ``running`` (a primary answered), ``not_answering`` (the process
    named in ``primary.json`` is alive but did not answer a ping), or ``none``."""

    state: str
    record: PrimaryRecord | None
    problem: str | None = None

    def describe(self) -> str:
        """One line for the user."""
        record = self.record
        if self.state == "running" and record is not None:
            return f"the primary is pid {record.pid} (epoch {record.epoch})"
        if self.state == "not_answering" and record is not None:
            return hung_primary_message(record.pid)
        return NO_PRIMARY


class ReadOnlyExecutor(LocalExecutor):
    """Reads from the database file; a write is refused (no primary runs to apply it)."""

    def run_write(self, spec: MethodSpec, params: dict[str, Any]) -> Any:
        raise UnavailableError(f"{spec.qualified}: {NO_PRIMARY} to write to; this command only reads")

    def run_writes(self, calls: list[tuple[MethodSpec, dict[str, Any]]]) -> list[tuple[bool, Any]]:
        if calls:
            self.run_write(calls[0][0], calls[0][1])
        return []


class Observer(Runtime):
    """A runtime that watches: a non-promoting secondary of a live primary, or a reader (role
    ``observer``) of the database file when no primary answers. Never holds the lock."""

    def __init__(
        self,
        workdir: Path,
        instance_id: str,
        components: list[Component],
        config: dict[str, Any] | None,
        database: DatabaseSettings | None = None,
    ) -> None:
        super().__init__(workdir, instance_id, components, failover=False, config=config, database=database)
        self.found = PrimaryState("none", None)
        self._scratch: str | None = None

    def look(self, join: bool = True) -> Observer:
        record = read_primary_record(self.pando_dir) if self.pando_dir.is_dir() else None
        if record is not None and join:
            problem = self._try_become_secondary()  # failover off: a follower, never a promotion
            if problem is None:
                self.found = PrimaryState("running", self.record)
                return self
            self.found = PrimaryState("not_answering" if self._holder_alive(record) else "none", record, problem)
        elif record is not None:
            self.found = PrimaryState("not_answering" if self._holder_alive(record) else "none", record)
        self._read_file()
        return self

    def _holder_alive(self, record: PrimaryRecord) -> bool:
        """Whether the primary *record* names still holds the lock (its pid may live on without it)."""
        held = lock_is_held(self.lock.path)
        return pid_alive(record.pid) if held is None else held

    def _read_file(self) -> None:
        path = database_path(self.workdir)
        if self.database.team:  # the team's database, wherever this directory is
            self.db = self._open_writable()
            migrate(self.db, self.components)  # under the advisory lock; nothing to do once any instance ran
        elif path.exists():
            self.db = Database(path, readonly=True)
        else:  # nothing stored here yet: an empty database, outside the working directory
            self._scratch = tempfile.mkdtemp(prefix="pando-observe-")
            self.db = Database(Path(self._scratch) / "pando.db")
            migrate(self.db, self.components)
        self.store = Store(self.registry, ReadOnlyExecutor(self.db, self.instance_id))
        self.role = OBSERVER

    @property
    def joined(self) -> bool:
        return self.role == SECONDARY

    def cleanup(self) -> None:
        super().cleanup()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def lock_is_held(path: str) -> bool | None:
    """Whether some process holds the flock on *path*, found by a non-blocking attempt on a
    read-only descriptor that is let go at once (the file is never created). None: cannot tell."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def observe(
    workdir: str | os.PathLike[str],
    instance_id: str | None = None,
    *,
    components: list[Component] | None = None,
    config: dict[str, Any] | None = None,
    join: bool = True,
    database: DatabaseSettings | None = None,
) -> Observer:
    """Look at ``workdir`` without joining its election (see the module docstring). ``join=False``
    never connects to the primary: the database file is read directly."""
    observer = Observer(
        Path(workdir), instance_id or uuid.uuid4().hex[:12], _components_or_core(components), config, database
    )
    try:
        return observer.look(join)
    except BaseException:
        observer.cleanup()
        raise
