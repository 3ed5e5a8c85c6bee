"""``pando sessions`` (list, show, export, import, rename, delete) and ``pando history``."""

# no `from __future__ import annotations`: typer evaluates the annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import typer

from ..context import current
from ..errors import UsageError
from .display import local_time

EXPORT_FORMAT = "pando-session"
EXPORT_VERSION = 1
SHOW_RESULT_LINES = 20
_HEADINGS = {"user": "User", "assistant": "Assistant", "tool": "Tool results", "system": "System"}

app = typer.Typer(help="Stored sessions: list, show, export, import, rename, delete.", no_args_is_help=True)


def _open_app(*, observe: bool = False):
    """The App for a command; ``observe=True`` for those that only read: they join a running
    primary as a secondary or read the database file, and never become the primary themselves."""
    from ..app import App, AppOptions

    return App.running(current(), AppOptions(startup_mode="sessions", observe=observe))


def _session_summary(session: dict) -> dict:
    return {
        "id": session["id"],
        "title": session["title"],
        "messages": int(session.get("message_count") or 0),
        "created_at": session.get("created_at"),
        "updated_at": session.get("updated_at"),
        "cost": round(float(session.get("cost") or 0.0), 6),
        "parent_session_id": session.get("parent_session_id"),
    }


# ------------------------------------------------------------------------------------------ rendering


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _block(text: str, lang: str = "") -> str:
    fence = _fence(text)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _pretty_input(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, str):
        return json.dumps(raw, indent=2, ensure_ascii=False), "json"
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False), "json"
    except ValueError:
        return raw, ""


def _clip_lines(text: str, limit: int | None) -> str:
    if limit is None:
        return text
    lines = text.splitlines()
    if len(lines) <= limit:
        return text
    return "\n".join(lines[:limit]) + f"\n… ({len(lines) - limit} more lines; use --full)"


def render_markdown(session: dict, messages: list[dict], result_lines: int | None = None) -> str:
    """The session transcript as markdown (tool results cut to `result_lines` lines when given)."""
    out = [f"# {session['title']}", ""]
    out.append(f"- Session: `{session['id']}`")
    out.append(f"- Created: {local_time(session.get('created_at'))}; updated: {local_time(session.get('updated_at'))}")
    out.append(f"- Messages: {len(messages)}; cost: ${float(session.get('cost') or 0.0):.4f}")
    if session.get("model"):
        out.append(f"- Model: {session['model']}")
    for message in messages:
        role = message["role"]
        out += ["", f"## {_HEADINGS.get(role, role.title())}", ""]
        for part in message.get("parts", []):
            kind, data = part.get("type"), part.get("data", {})
            if kind == "text" and data.get("text", "").strip():
                out += [data["text"].rstrip(), ""]
            elif kind == "reasoning" and data.get("thinking", "").strip():
                quoted = "\n".join("> " + line for line in data["thinking"].rstrip().splitlines())
                out += ["> _Thinking:_", quoted, ""]
            elif kind == "tool_call":
                text, lang = _pretty_input(data.get("input", ""))
                out += [f"**Tool call** `{data.get('name', '?')}`", "", _block(text, lang), ""]
            elif kind == "tool_result":
                status = " (error)" if data.get("is_error") else ""
                content = _clip_lines(str(data.get("content", "")), result_lines)
                out += [f"**Result** `{data.get('name', '?')}`{status}", "", _block(content), ""]
            elif kind == "image_url":
                out += [f"![image]({data.get('url', '')})", ""]
            elif kind == "image":
                out += [f"_(image {data.get('path') or ''}, {data.get('mime_type', '')})_", ""]
            elif kind == "file":
                attached = "not attached: " + data.get("reason", "") if data.get("kind") == "skipped" else "attached"
                out += [f"_(@{data.get('path', '')} {attached})_", ""]
            elif kind == "binary":
                out += [f"_(attachment {data.get('Path') or data.get('path') or ''})_", ""]
            elif kind == "finish" and data.get("reason") in ("canceled", "error", "permission_denied"):
                detail = f": {data['message']}" if data.get("message") else ""
                out += [f"_(turn ended: {data['reason']}{detail})_", ""]
        while out and out[-1] == "":
            out.pop()
    return "\n".join(out).rstrip() + "\n"


def export_json(session: dict, messages: list[dict]) -> dict:
    keys = (
        "id",
        "title",
        "parent_session_id",
        "message_count",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "summary_message_id",
        "model",
        "created_at",
        "updated_at",
    )
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": int(time.time() * 1000),
        "session": {key: session.get(key) for key in keys},
        "messages": [
            {
                "id": m["id"],
                "role": m["role"],
                "parts": m.get("parts", []),
                "model": m.get("model"),
                "created_at": m.get("created_at"),
                "updated_at": m.get("updated_at"),
                "finished_at": m.get("finished_at"),
            }
            for m in messages
        ],
    }


def import_session(instance: Any, data: dict) -> dict:
    """Recreate an exported session (new session and message ids); returns the new session."""
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise UsageError('not a pando session export (expected "format": "pando-session")')
    if int(data.get("version") or 0) > EXPORT_VERSION:
        raise UsageError(f"session export version {data.get('version')} is newer than this pando understands")
    source = data.get("session") or {}
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise UsageError('session export has no "messages" list')
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "user",
            "assistant",
            "tool",
            "system",
        ):
            raise UsageError(f"session export: message {index} has no valid role")
        if not isinstance(message.get("parts", []), list):
            raise UsageError(f"session export: message {index} parts must be a list")
    session = instance.sessions.create(title=str(source.get("title") or "Imported session"))
    created = instance.messages.create_many(session["id"], messages)
    id_map = {m["id"]: c["id"] for m, c in zip(messages, created, strict=True) if m.get("id")}
    updates: dict[str, Any] = {}
    for key in ("prompt_tokens", "completion_tokens"):
        if isinstance(source.get(key), int):
            updates[key] = source[key]
    if isinstance(source.get("cost"), int | float):
        updates["cost"] = float(source["cost"])
    if source.get("model"):
        updates["model"] = str(source["model"])
    if source.get("summary_message_id") in id_map:
        updates["summary_message_id"] = id_map[source["summary_message_id"]]
    if updates:
        instance.store.sessions.update(id=session["id"], **updates)
    return instance.sessions.get(session["id"])


# ------------------------------------------------------------------------------------------- commands


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    include_all: bool = typer.Option(
        False, "--all", "-a", help="include empty sessions and sub-agent sessions"
    ),
) -> None:
    """List sessions, most recently updated first."""
    with _open_app(observe=True) as instance:
        sessions = instance.sessions.list(include_children=include_all, include_empty=include_all)
    rows = [_session_summary(s) for s in sessions]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("No sessions.")
        return
    for row in rows:
        typer.echo(
            f"{row['id'][:8]}  {local_time(row['updated_at'])}  {row['messages']:>4} msgs  "
            f"${row['cost']:>8.4f}  {row['title']}"
        )


@app.command("show")
def show_command(
    session_id: str = typer.Argument(..., metavar="ID", help="session id (or unique prefix)"),
    full: bool = typer.Option(False, "--full", help="do not shorten long tool results"),
) -> None:
    """Print the transcript of a session."""
    with _open_app(observe=True) as instance:
        session = instance.sessions.find(session_id)
        messages = instance.messages.list(session["id"])
    typer.echo(render_markdown(session, messages, None if full else SHOW_RESULT_LINES), nl=False)


@app.command("export")
def export_command(
    session_id: str = typer.Argument(..., metavar="ID", help="session id (or unique prefix)"),
    fmt: str = typer.Option("markdown", "--format", "-F", help="markdown or json"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write to FILE instead of stdout"),
) -> None:
    """Export a session as markdown (readable) or JSON (re-importable with `pando sessions import`)."""
    fmt = fmt.lower()
    if fmt == "md":
        fmt = "markdown"
    if fmt not in ("markdown", "json"):
        raise UsageError("--format must be markdown or json")
    with _open_app(observe=True) as instance:
        session = instance.sessions.find(session_id)
        messages = instance.messages.list(session["id"])
    if fmt == "json":
        text = json.dumps(export_json(session, messages), indent=2, ensure_ascii=False) + "\n"
    else:
        text = render_markdown(session, messages)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Exported session {session['id']} to {output}", err=True)


@app.command("import")
def import_command(
    file: str = typer.Argument(..., metavar="FILE", help="a JSON export ('-' reads stdin)"),
    as_json: bool = typer.Option(False, "--json", help="print the new session as JSON"),
) -> None:
    """Recreate a session from a JSON export (with new ids)."""
    try:
        raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{file} is not valid JSON: {exc}") from exc
    with _open_app() as instance:
        session = import_session(instance, data)
    if as_json:
        typer.echo(json.dumps(_session_summary(session), indent=2))
    else:
        typer.echo(
            f"Imported session {session['id']} ({session['message_count']} messages): {session['title']}"
        )


@app.command("interrupt")
def interrupt_command(
    session_id: str = typer.Argument(..., metavar="ID", help="session id (or unique prefix)"),
) -> None:
    """Cancel the turn a session is running, in whichever pando process runs it."""
    with _open_app() as instance:
        session = instance.sessions.find(session_id)
        instance.interrupt_session(session["id"])
    typer.echo(f"Interrupt sent to session {session['id']}")


@app.command("rename")
def rename_command(
    session_id: str = typer.Argument(..., metavar="ID", help="session id (or unique prefix)"),
    title: list[str] = typer.Argument(..., help="the new title"),
) -> None:
    """Give a session a new title."""
    text = " ".join(title).strip()
    if not text:
        raise UsageError("the title is empty")
    with _open_app() as instance:
        session = instance.sessions.find(session_id)
        instance.sessions.rename(session["id"], text)
    typer.echo(f"Renamed session {session['id']}: {text}")


@app.command("delete")
def delete_command(
    session_id: str = typer.Argument(..., metavar="ID", help="session id (or unique prefix)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Delete a session with its messages and file history."""
    with _open_app() as instance:
        session = instance.sessions.find(session_id)
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"deleting session {session['id']} needs confirmation but stdin is not a terminal: pass --yes"
                )
            import questionary

            answer = questionary.confirm(
                f'Delete session {session["id"][:8]} "{session["title"]}" '
                f"({session.get('message_count', 0)} messages)?",
                default=False,
            ).ask()
            if not answer:
                typer.echo("Aborted.")
                raise typer.Exit(1)
        instance.sessions.delete(session["id"])
    typer.echo(f"Deleted session {session['id']}: {session['title']}")


def _display_path(path: str, workdir: Any) -> str:
    """`path` relative to the working directory when it is inside it."""
    try:
        return Path(path).resolve().relative_to(Path(workdir).resolve()).as_posix()
    except (ValueError, OSError):
        return path


def history_command(
    session_id: str | None = typer.Argument(
        None,
        metavar="[SESSION]",
        help="session id or prefix (default: the latest session that changed files)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    include_all: bool = typer.Option(False, "--all", "-a", help="every session that changed files"),
    name_only: bool = typer.Option(False, "--name-only", help="list the files without diffs"),
) -> None:
    """Files the agent changed, with a diff of the first recorded version against the latest."""
    from ..services.history import diff_versions

    with _open_app(observe=True) as instance:
        changed: dict[str, list[dict]] = {}  # session id -> its changed files, by path
        if session_id:
            sessions = [instance.sessions.find(session_id)]
            changed[sessions[0]["id"]] = instance.history.changed_files(sessions[0]["id"])
        else:
            for row in instance.history.changed_files():
                changed.setdefault(row["session_id"], []).append(row)
            sessions = []
            for sid in changed:
                try:
                    sessions.append(instance.sessions.get(sid))
                except Exception:  # noqa: BLE001 - rows of a session being deleted
                    continue
            sessions.sort(key=lambda s: (s.get("updated_at") or 0, s.get("seq") or 0), reverse=True)
            if not include_all:
                sessions = sessions[:1]
        entries = []
        for session in sessions:
            for row in changed[session["id"]]:
                versions = instance.history.versions(session["id"], row["path"])
                shown = _display_path(row["path"], instance.workdir)
                entries.append(
                    {
                        "session_id": session["id"],
                        "title": session["title"],
                        "path": row["path"],
                        "display_path": shown,
                        "versions": [v["version"] for v in versions],
                        "diff": "" if name_only else diff_versions(versions, shown),
                    }
                )
    if as_json:
        typer.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    if not entries:
        typer.echo("No files changed." if session_id or include_all else "No files changed by the agent yet.")
        return
    shown_session = None
    for entry in entries:
        if entry["session_id"] != shown_session:
            shown_session = entry["session_id"]
            typer.echo(f"Session {shown_session[:8]}  {entry['title']}")
        versions = entry["versions"]
        span = f"{versions[0]} → {versions[-1]}" if len(versions) > 1 else versions[0]
        typer.echo(f"  {entry['display_path']}  ({len(versions)} versions: {span})")
        if entry["diff"]:
            typer.echo(entry["diff"], nl=not entry["diff"].endswith("\n"))


def register(cli: typer.Typer) -> None:
    cli.add_typer(app, name="sessions")
    cli.command("history")(history_command)
