"""Versioned migrations per component (the core and each plugin), run only by the primary.

Each migration runs with its bookkeeping row in one transaction: a failing step leaves the
database as it was and the error names the component, version and step. On PostgreSQL (team
mode) every instance migrates at start, under an advisory lock: the first one applies what is
pending, the others wait for it and then find nothing to do; DDL is transactional there too.
Statements are written in SQLite's column types; the database adapts them (``adapt_ddl``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from .engine import Database, WriteTx
from .repository import Repository

MIGRATIONS_TABLE = "schema_migrations"


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    """``up`` is a list of SQL statements (portable SQL) or a callable receiving the connection."""

    version: int
    name: str
    up: Sequence[str] | Callable[[Connection], None]


@dataclass
class Component:
    """A unit that owns tables: the core, or one plugin."""

    name: str
    migrations: list[Migration] = field(default_factory=list)
    repositories: list[type[Repository]] = field(default_factory=list)


def _ensure_table(db: Database) -> None:
    with db.write() as tx:
        tx.conn.exec_driver_sql(db.adapt_ddl(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
            " component TEXT NOT NULL,"
            " version INTEGER NOT NULL,"
            " name TEXT NOT NULL,"
            " applied_at INTEGER NOT NULL,"
            " PRIMARY KEY (component, version))"
        ))


def applied_versions(db: Database, component: str) -> set[int]:
    if not db.has_table(MIGRATIONS_TABLE):
        return set()
    with db.read() as tx:
        rows = tx.conn.execute(
            text(f"SELECT version FROM {MIGRATIONS_TABLE} WHERE component = :c"), {"c": component}
        )
        return {row[0] for row in rows}


def migrate(db: Database, components: Iterable[Component]) -> list[tuple[str, int, str]]:
    """Apply pending migrations of each component in order; returns what was applied."""
    lock = getattr(db, "migration_lock", None)
    if lock is None:
        return _migrate(db, components)
    with lock():
        db.ensure_schema_objects()
        return _migrate(db, components)


def applied_migrations(db: Database) -> list[dict]:
    """Every applied migration: ``{"component", "version", "name", "applied_at"}``, in order."""
    if not db.has_table(MIGRATIONS_TABLE):
        return []
    with db.read() as tx:
        rows = tx.conn.execute(
            text(f"SELECT component, version, name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY component, version")
        )
        return [dict(row._mapping) for row in rows]


def _migrate(db: Database, components: Iterable[Component]) -> list[tuple[str, int, str]]:
    _ensure_table(db)
    applied: list[tuple[str, int, str]] = []
    for component in components:
        versions = [m.version for m in component.migrations]
        if len(versions) != len(set(versions)):
            raise MigrationError(f"component {component.name} declares a migration version twice")
        done = applied_versions(db, component.name)
        for migration in sorted(component.migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            _apply(db, component.name, migration)
            applied.append((component.name, migration.version, migration.name))
    return applied


def _apply(db: Database, component: str, migration: Migration) -> None:
    step = 0
    try:
        with db.write() as tx:
            if callable(migration.up):
                step = 1
                migration.up(tx.conn)
            else:
                for step, statement in enumerate(migration.up, start=1):  # noqa: B007 - read in the error
                    tx.conn.exec_driver_sql(db.adapt_ddl(statement))
            tx.conn.execute(
                text(
                    f"INSERT INTO {MIGRATIONS_TABLE} (component, version, name, applied_at)"
                    " VALUES (:c, :v, :n, :t)"
                ),
                {"c": component, "v": migration.version, "n": migration.name, "t": WriteTx.now_ms()},
            )
    except Exception as exc:
        raise MigrationError(
            f"migration {component} {migration.version} ({migration.name}) failed at step {step}: {exc}"
        ) from exc
