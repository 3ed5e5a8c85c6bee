"""``pando db``: the configured database's migrations, and moving a SQLite database to PostgreSQL."""

# no `from __future__ import annotations`: typer evaluates the annotations

import json
import sys
from typing import Any

import typer

from ..context import current
from ..errors import PandoError, UsageError

app = typer.Typer(
    help="The database: applied migrations per component, migrate, copy .pando/pando.db to PostgreSQL.",
    no_args_is_help=True,
)


def _components() -> list:
    from ..app import db_components

    return db_components(current())


def _settings():
    from ..db import database_settings

    return database_settings(current().config.section("database"))


def _open(settings, *, writable: bool):
    """The configured database, or None for a SQLite file that does not exist yet."""
    from ..db import Database, database_path, open_database

    if settings.team:
        return open_database(current().workdir, settings, writer_id="pando-db")
    path = database_path(current().workdir)
    if not path.exists() and not writable:
        return None
    return Database(path, readonly=not writable)


def _status(db, components: list) -> list[dict[str, Any]]:
    from ..db import applied_migrations

    applied = applied_migrations(db) if db is not None else []
    rows = []
    for component in components:
        done = sorted(r["version"] for r in applied if r["component"] == component.name)
        declared = sorted(m.version for m in component.migrations)
        rows.append(
            {
                "component": component.name,
                "applied": done,
                "latest": max(done, default=0),
                "declared": max(declared, default=0),
                "pending": [v for v in declared if v not in done],
            }
        )
    known = {c.name for c in components}
    for name in sorted({r["component"] for r in applied} - known):  # a plugin not enabled here
        done = sorted(r["version"] for r in applied if r["component"] == name)
        rows.append({"component": name, "applied": done, "latest": max(done), "declared": None, "pending": []})
    return rows


def _print_status(where: str, rows: list[dict[str, Any]], exists: bool = True) -> None:
    typer.echo(f"Database: {where}" + ("" if exists else " (not created yet)"))
    typer.echo(f"{'component':<14} {'applied':>7} {'declared':>8}  pending")
    for row in rows:
        declared = "-" if row["declared"] is None else str(row["declared"])
        pending = ", ".join(str(v) for v in row["pending"]) or "none"
        typer.echo(f"{row['component']:<14} {row['latest']:>7} {declared:>8}  {pending}")


@app.command("status")
def status_command(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The migrations applied on the configured database (SQLite or PostgreSQL), per component."""
    settings = _settings()
    components = _components()
    db = _open(settings, writable=False)
    try:
        rows = _status(db, components)
    finally:
        if db is not None:
            db.dispose()
    data = {"database": settings.describe(), "dialect": "postgresql" if settings.team else "sqlite",
            "exists": db is not None, "components": rows}
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _print_status(data["database"], rows, db is not None)


@app.command("migrate")
def migrate_command(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Apply the pending migrations of the core and the enabled plugins (on PostgreSQL under the
    advisory lock every instance takes; on SQLite only while no pando runs here)."""
    from ..db import migrate
    from ..runtime.lock import InstanceLock, LockError, ensure_pando_dir

    settings = _settings()
    components = _components()
    lock = None
    if not settings.team:  # SQLite: the primary migrates; take its lock so that none starts meanwhile
        pando_dir = current().workdir / ".pando"
        try:
            ensure_pando_dir(pando_dir)
            lock = InstanceLock(pando_dir)
            won = lock.try_acquire()
        except LockError as exc:
            raise PandoError(f"cannot take the instance lock in {pando_dir}: {exc}") from exc
        if not won:
            raise PandoError("a pando is running in this directory: its primary migrated the database at start; "
                             "stop it to migrate here (or see `pando db status`)")
    try:
        db = _open(settings, writable=True)
        try:
            applied = migrate(db, components)
            rows = _status(db, components)
        finally:
            db.dispose()
    finally:
        if lock is not None:
            lock.release()
    if as_json:
        typer.echo(json.dumps({"database": settings.describe(), "applied": [list(a) for a in applied],
                               "components": rows}, indent=2))
        return
    for component, version, name in applied:
        typer.echo(f"applied {component} {version} ({name})")
    if not applied:
        typer.echo("Nothing to migrate: every migration is applied.")
    _print_status(settings.describe(), rows)


@app.command("copy")
def copy_command(
    to: str = typer.Option(..., "--to", help="the PostgreSQL URL to copy into (postgresql+psycopg://USER@HOST/DB)"),
    password_env: str = typer.Option(
        "", "--password-env", help="environment variable holding its password (default: the database section's password_env)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON (no progress bar)"),
) -> None:
    """Copy this directory's .pando/pando.db (sessions, messages, files, plugin tables) into
    PostgreSQL, migrating it first. Idempotent: rows already there are left alone, so running it
    twice copies nothing twice."""
    import os

    from ..db import database_path
    from ..db.copy import copy_to_postgres
    from ..db.settings import database_settings

    source = database_path(current().workdir)
    if not source.exists():
        raise UsageError(f"nothing to copy: {source} does not exist")
    configured = current().config.section("database").get("password_env") or ""
    settings = database_settings({"url": to, "password_env": password_env or configured}, env=os.environ)
    components = _components()
    if as_json or not sys.stderr.isatty():
        report = copy_to_postgres(source, settings.url, components, password=settings.password)
    else:
        report = _copy_with_progress(source, settings, components)
    if as_json:
        typer.echo(json.dumps({"from": str(source), "to": settings.describe(), **report.as_dict()}, indent=2))
        return
    for table in report.tables:
        typer.echo(f"{table.name:<24} {table.rows:>8} rows, {table.copied:>8} copied")
    typer.echo(f"Copied {report.copied} new rows into {settings.describe()}.")


def _copy_with_progress(source, settings, components):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..db.copy import copy_to_postgres

    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("copying", total=None)

        def progress(table: str, done: int, total: int) -> None:
            bar.update(task, description=table or "done", completed=done, total=total)

        return copy_to_postgres(source, settings.url, components, password=settings.password, progress=progress)


def register(cli: typer.Typer) -> None:
    cli.add_typer(app, name="db")
