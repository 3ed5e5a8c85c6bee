"""``pando rewind SESSION [TURN]``: files, conversation or both back to just before a turn."""

# no `from __future__ import annotations`: typer evaluates the annotations

import json
import sys

import typer

from ..context import current
from ..errors import UsageError


def rewind_command(
    session: str = typer.Argument(..., help="session id (or unique prefix)"),
    turn: int | None = typer.Argument(None, help="the turn to go back before (1 = the first prompt; default: the last)"),
    files_only: bool = typer.Option(False, "--files-only", help="only the files; keep the conversation"),
    chat_only: bool = typer.Option(False, "--chat-only", help="only the conversation; keep the files"),
    force: bool = typer.Option(False, "--force", help="also overwrite files changed outside the agent since"),
    list_turns: bool = typer.Option(
        False, "--list", help="list the session's turns and which changed files (pruned: its checkpoint is gone)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would be restored, change nothing"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Undo a session's turns: the files the agent changed in them and/or the messages.

    Files changed outside the agent since are not overwritten unless --force (or confirmed on a
    terminal); git's index, HEAD and stash are never touched."""
    from ..app import App, AppOptions
    from ..services.checkpoints import RewindConflict, find_session

    if files_only and chat_only:
        raise UsageError("--files-only and --chat-only exclude each other")
    with App.running(current(), AppOptions(startup_mode="rewind")) as app:
        session_id = find_session(app, session)["id"]
        if list_turns:
            _print_turns(app.checkpoints.turns(session_id), as_json)
            return
        options = {"files": not chat_only, "chat": not files_only, "dry_run": dry_run}
        try:
            report = app.checkpoints.rewind(session_id, turn, force=force, **options)
        except RewindConflict as exc:
            if as_json or not sys.stdin.isatty() or not _confirm(exc.paths):
                if as_json:
                    typer.echo(json.dumps({"status": "conflict", "error": str(exc), "conflicts": exc.paths}))
                    raise typer.Exit(1) from None
                raise
            report = app.checkpoints.rewind(session_id, turn, force=True, **options)
    if as_json:
        typer.echo(json.dumps({"status": "dry_run" if dry_run else "ok", **report.to_dict()}, indent=2))
        return
    verb = "would restore" if dry_run else "restored"
    for path in report.restored:
        typer.echo(f"{verb}  {path}")
    for path in report.deleted:
        typer.echo(f"{'would delete' if dry_run else 'deleted'}  {path}")
    for path, reason in report.skipped.items():
        typer.echo(f"kept  {path}  ({reason})")
    parts = []
    if report.files:
        parts.append(f"{len(report.restored)} file(s) restored, {len(report.deleted)} deleted")
    if report.chat and not dry_run:
        parts.append(f"{report.messages_deleted} message(s) removed")
    typer.echo(f"Rewound session {session_id} to before turn {report.turn}: " + "; ".join(parts))


def _confirm(paths: list[str]) -> bool:
    import questionary

    shown = ", ".join(paths[:8]) + (", ..." if len(paths) > 8 else "")
    return bool(questionary.confirm(f"Changed outside the agent since: {shown}. Overwrite?", default=False).ask())


def _print_turns(turns, as_json: bool) -> None:  # noqa: ANN001
    if as_json:
        typer.echo(json.dumps([t.to_dict() for t in turns], indent=2))
        return
    if not turns:
        typer.echo("No turns.")
    for t in turns:
        first = (t.prompt.strip().splitlines() or [""])[0][:70]
        typer.echo(f"{t.number:>3}  {_files_column(t):<6}  {first}")


def _files_column(turn) -> str:  # noqa: ANN001
    """``files``: the turn changed files and can be rewound; ``pruned``: it did, but its checkpoint
    was pruned ([snapshots] keep_checkpoints): only --chat-only works that far back."""
    if not turn.checkpoint:
        return ""
    return "pruned" if turn.checkpoint.get("pruned") else "files"


def register(cli: typer.Typer) -> None:
    cli.command("rewind")(rewind_command)
