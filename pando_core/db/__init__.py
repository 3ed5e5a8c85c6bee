"""Database layer: engines, declared repositories, per-component migrations."""

from __future__ import annotations

from pathlib import Path

from .engine import Change, Database, ReadTx, WriteTx
from .migrations import Component, Migration, MigrationError, applied_migrations, migrate
from .repository import LocalExecutor, MethodRegistry, PendingWrite, Pipeline, Repository, Store, read, write
from .settings import DatabaseSettings, database_settings, open_database


def core_component() -> Component:
    from .repositories import CORE_REPOSITORIES
    from .schema import CORE_MIGRATIONS

    return Component("core", list(CORE_MIGRATIONS), list(CORE_REPOSITORIES))


def database_path(workdir: Path) -> Path:
    return Path(workdir) / ".pando" / "pando.db"


def open_local_store(db: Database, components: list[Component], instance_id: str = "") -> Store:
    """A store whose reads and writes run on ``db`` directly (the primary, or a single process)."""
    registry = MethodRegistry(repo for component in components for repo in component.repositories)
    return Store(registry, LocalExecutor(db, instance_id))


__all__ = [
    "Change",
    "Component",
    "Database",
    "DatabaseSettings",
    "LocalExecutor",
    "MethodRegistry",
    "Migration",
    "MigrationError",
    "PendingWrite",
    "Pipeline",
    "ReadTx",
    "Repository",
    "Store",
    "WriteTx",
    "applied_migrations",
    "core_component",
    "database_path",
    "database_settings",
    "migrate",
    "open_database",
    "open_local_store",
    "read",
    "write",
]
