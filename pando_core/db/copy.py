"""``pando db copy``: move a working directory's SQLite database into PostgreSQL (team mode).

The target is migrated first (the same components, under the advisory lock), then every table
the two have in common is copied in foreign-key order (sessions before their messages), a batch
at a time, with ``ON CONFLICT DO NOTHING``: rows are keyed by their primary keys, so running the
copy again copies nothing twice and a copy cut short is finished by the next run. Afterwards the
identity columns and the ``seq`` sequence are moved past the copied values, so rows written in
team mode sort after the copied ones. Bookkeeping tables (migrations, idempotency keys) stay.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .migrations import MIGRATIONS_TABLE, Component, migrate

BATCH_ROWS = 500
SKIPPED_TABLES = frozenset({MIGRATIONS_TABLE, "applied_writes"})


@dataclass
class TableCopy:
    name: str
    rows: int  # rows in the source
    copied: int = 0  # rows that were new in the target


@dataclass
class CopyReport:
    tables: list[TableCopy] = field(default_factory=list)
    migrations: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "copied": self.copied,
            "tables": [{"table": t.name, "rows": t.rows, "copied": t.copied} for t in self.tables],
            "migrations_applied": [list(m) for m in self.migrations],
        }


def _source_tables(source: sqlite3.Connection) -> list[str]:
    """The source's data tables in foreign-key order (a referenced table first)."""
    names = [
        r[0]
        for r in source.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        if r[0] not in SKIPPED_TABLES
    ]
    parents = {name: {r[2] for r in source.execute(f'PRAGMA foreign_key_list("{name}")')} - {name} for name in names}
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(names):
        ready = [n for n in names if n not in placed and parents[n] <= placed | (parents[n] - set(names))]
        if not ready:  # a cycle (none in pando's schema): the rest in name order
            ready = [n for n in names if n not in placed]
        for name in ready:
            ordered.append(name)
            placed.add(name)
    return ordered


def _columns(source: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in source.execute(f'PRAGMA table_info("{table}")')]


def copy_to_postgres(
    sqlite_path: Path,
    url: str,
    components: Iterable[Component],
    *,
    password: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> CopyReport:
    """Copy *sqlite_path* into the PostgreSQL database *url*; ``progress(table, done, total)``
    after each batch (``done``/``total``: rows of all tables)."""
    from .postgres import PostgresDatabase, connect

    components = list(components)
    report = CopyReport()
    target_db = PostgresDatabase(url, password=password, writer_id="pando-db-copy")
    try:
        report.migrations = migrate(target_db, components)
    finally:
        target_db.dispose()
    source = sqlite3.connect(f"file:{Path(sqlite_path).resolve()}?mode=ro", uri=True)
    target = connect(url, password)
    try:
        target_columns: dict[str, set[str]] = {}
        for table, column in target.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        ):
            target_columns.setdefault(table, set()).add(column)
        target.rollback()
        plan = []
        for table in _source_tables(source):
            if table not in target_columns:
                continue  # a table of a component not enabled here: nowhere to put it
            columns = [c for c in _columns(source, table) if c in target_columns[table]]
            plan.append((table, columns, source.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]))
        total = sum(rows for _, _, rows in plan)
        done = 0
        for table, columns, rows in plan:
            entry = TableCopy(table, rows)
            report.tables.append(entry)
            column_list = ", ".join(f'"{c}"' for c in columns)
            insert = (
                f'INSERT INTO "{table}" ({column_list}) VALUES ({", ".join(["%s"] * len(columns))}) ON CONFLICT DO NOTHING'
            )
            before = target.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            cursor = source.execute(f'SELECT {column_list} FROM "{table}"')
            with target.cursor() as out:
                while True:
                    batch = cursor.fetchmany(BATCH_ROWS)
                    if not batch:
                        break
                    out.executemany(insert, batch)
                    done += len(batch)
                    if progress is not None:
                        progress(table, done, total)
            entry.copied = target.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] - before
            _move_sequences_past(target, table, columns)
            target.commit()
        if progress is not None:
            progress("", done, total)
    finally:
        source.close()
        target.close()
    return report


def _move_sequences_past(target: Any, table: str, columns: list[str]) -> None:
    """After copying *table*: its identity column and ``pando_seq`` start above what was copied."""
    from .postgres import SEQUENCE

    if "id" in columns:
        sequence = target.execute("SELECT pg_get_serial_sequence(%s, 'id')", (f'"{table}"',)).fetchone()[0]
        if sequence is not None:
            target.execute(
                f'SELECT setval(%s, GREATEST((SELECT max(id) FROM "{table}"), 1))',
                (sequence,),
            )
    if "seq" in columns:
        target.execute(
            f"SELECT setval('{SEQUENCE}', GREATEST((SELECT last_value FROM {SEQUENCE}),"
            f' (SELECT coalesce(max(seq), 1) FROM "{table}")))'
        )
