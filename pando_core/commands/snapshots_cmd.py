"""``pando snapshots``: list, take, diff and restore working-tree snapshots."""

# no `from __future__ import annotations`: typer evaluates the annotations

import json
import sys

import typer

from ..context import current
from ..errors import UsageError
from .display import local_time

app = typer.Typer(help="Working-tree snapshots: list, take, diff, restore.", no_args_is_help=True)


def _service():
    """The snapshot store, with the [snapshots] settings the automatic session snapshots use."""
    from ..services.snapshots import SnapshotService

    context = current()
    return SnapshotService.from_config(context.workdir, context.config)


@app.command("list")
def list_command(
    session: str | None = typer.Option(None, "--session", help="only snapshots of this session"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """List snapshots, newest first."""
    snaps = _service().list(session_id=session)
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in snaps], indent=2))
        return
    if not snaps:
        typer.echo("No snapshots.")
        return
    for s in snaps:
        session_text = s.session_id or "-"
        typer.echo(
            f"{s.id}  {local_time(s.created_at)}  {s.kind:<5}  {s.file_count:>6} files  {session_text:<12}  {s.label}"
        )


@app.command("take")
def take_command(
    label: str = typer.Argument("manual", help="a description of the snapshot"),
    session: str | None = typer.Option(None, "--session", help="attach the snapshot to a session"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Take a snapshot of the working tree now."""
    snap = _service().take(label, session_id=session)
    if as_json:
        typer.echo(json.dumps(snap.to_dict(), indent=2))
        return
    skipped = f", {snap.skipped_count} too large to capture" if snap.skipped_count else ""
    typer.echo(f"{snap.id}  ({snap.kind}, {snap.file_count} files{skipped})")


@app.command("diff")
def diff_command(
    a: str = typer.Argument(..., help="snapshot id (or unique prefix)"),
    b: str | None = typer.Argument(None, help="second snapshot (default: the current working tree)"),
    name_status: bool = typer.Option(False, "--name-status", help="only list changed files (A/M/D)"),
    paths: list[str] | None = typer.Option(None, "--path", help="limit to these paths (repeatable)"),
) -> None:
    """Show what changed from snapshot A to snapshot B (or to the working tree)."""
    service = _service()
    if name_status:
        for status, path in service.changed_files(a, b, paths=paths or None):
            typer.echo(f"{status}\t{path}")
        return
    text = service.diff(a, b, paths=paths or None)
    if text:
        typer.echo(text, nl=not text.endswith("\n"))


@app.command("restore")
def restore_command(
    snapshot_id: str = typer.Argument(..., metavar="ID", help="snapshot id (or unique prefix)"),
    paths: list[str] | None = typer.Option(None, "--path", help="only restore these paths (repeatable)"),
    delete_added: bool = typer.Option(
        False, "--delete-added", help="also delete files added since the snapshot"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Write back files changed or deleted since snapshot ID (added files are kept unless --delete-added)."""
    service = _service()
    plan = service.restore(snapshot_id, paths=paths or None, delete_added=delete_added, dry_run=True)
    for path in plan.restored:
        typer.echo(f"restore  {path}")
    for path in plan.deleted:
        typer.echo(f"delete   {path}")
    for path in plan.skipped:
        typer.echo(f"keep     {path}  ({plan.reasons.get(path, 'skipped')})")
    if not plan.changed:
        typer.echo("Nothing to restore.")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("restore needs confirmation but stdin is not a terminal: pass --yes to proceed")
        import questionary

        count = len(plan.restored) + len(plan.deleted)
        answer = questionary.confirm(
            f"Restore {count} file(s) from snapshot {plan.snapshot_id}?", default=False
        ).ask()
        if not answer:
            typer.echo("Aborted.")
            raise typer.Exit(1)
    report = service.restore(plan.snapshot_id, paths=paths or None, delete_added=delete_added)
    for path in report.skipped:
        if path not in plan.skipped:
            typer.echo(f"skipped  {path}  ({report.reasons.get(path, '')})")
    typer.echo(
        f"Restored {len(report.restored)} file(s), deleted {len(report.deleted)}"
        + (f"; previous state saved as snapshot {report.safety_snapshot}" if report.safety_snapshot else "")
    )


@app.command("prune")
def prune_command(
    keep: int | None = typer.Option(None, "--keep", min=0, help="keep only the newest N snapshots"),
    older_than: float | None = typer.Option(None, "--older-than", help="drop snapshots older than DAYS"),
) -> None:
    """Delete old snapshots (and the stored content nothing else refers to)."""
    if keep is None and older_than is None:
        raise UsageError("give --keep N and/or --older-than DAYS")
    removed = _service().prune(max_snapshots=keep, older_than_days=older_than)
    typer.echo(f"Removed {len(removed)} snapshot(s).")


def register(cli: typer.Typer) -> None:
    cli.add_typer(app, name="snapshots")
