"""The interactive session's commands over a session's turns and plan: /undo, /rewind, /plan, the
plan's acceptance after a turn that presented one, and the live todo list."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import one_line as short

REWIND_MODES = (
    ("Files and conversation", {"files": True, "chat": True}),
    ("Conversation only (keep the files)", {"files": False, "chat": True}),
    ("Files only (keep the conversation)", {"files": True, "chat": False}),
)
ACCEPT = "accept"
ACCEPTED_PROMPT = "The plan is accepted. Carry it out now, step by step."


def render_todos(items: list[dict[str, str]]) -> Any:
    """The todo list as the interactive session shows it when the model changes it."""
    from rich.text import Text

    marks = {"completed": ("✔", "green"), "in_progress": ("◐", "yellow"), "pending": ("○", "dim")}
    text = Text("☰ todo\n", style="bold")
    for item in items:
        mark, style = marks.get(item.get("status", ""), ("○", "dim"))
        text.append(f"  {mark} ", style=style)
        text.append(item.get("content", "") + "\n", style="strike dim" if item.get("status") == "completed" else "")
    return text


async def undo(session: Any, args: str) -> None:
    """/undo: the file changes of the session's last turn that changed files, back."""
    if session.session_id is None:
        session.console.print("[dim]nothing to undo: no session yet[/dim]")
        return
    turns = await asyncio.to_thread(session.app.checkpoints.turns, session.session_id)
    changed = [t for t in turns if t.checkpoint]
    if not changed:
        session.console.print("[dim]nothing to undo: no turn of this session changed files[/dim]")
        return
    last = changed[-1]
    if last.checkpoint and last.checkpoint.get("pruned"):
        # an earlier turn's checkpoint would skip this turn's changes: refuse, and say what is left
        from rich.markup import escape

        session.console.print(f"[red]✗ {escape(pruned_undo_message(session, last.number))}[/red]", highlight=False)
        return
    await _rewind(session, last.number, files=True, chat=False)


def pruned_undo_message(session: Any, number: int) -> str:
    """Why /undo cannot put back the last file-changing turn, and what the user can do instead."""
    config = session.app.config.section("snapshots")
    return (
        f"nothing undone: the checkpoint of turn {number}, the last turn that changed files, was pruned "
        f"([snapshots] keep_checkpoints = {config.get('keep_checkpoints')}, checkpoint_max_age_days = "
        f"{config.get('checkpoint_max_age_days')}), so its file changes cannot be put back. The conversation "
        f"can still go back: /rewind {number}, then \"Conversation only\" (or pando rewind {session.session_id} "
        f"{number} --chat-only); a larger keep_checkpoints (or checkpoint_max_age_days) keeps more turns undoable."
    )


async def rewind(session: Any, args: str) -> None:
    """/rewind [TURN]: pick a turn, then files, conversation or both back to just before it."""
    import questionary

    if session.session_id is None:
        session.console.print("[dim]nothing to rewind: no session yet[/dim]")
        return
    turns = await asyncio.to_thread(session.app.checkpoints.turns, session.session_id)
    if not turns:
        session.console.print("[dim]nothing to rewind: no turns yet[/dim]")
        return
    if args.strip():
        if not args.strip().isdigit():
            session.console.print("[red]/rewind takes a turn number[/red]")
            return
        number = int(args.strip())
    else:
        choices = [
            questionary.Choice(f"{t.number:>3}  {_mark(t)}  {short(t.prompt, 70)}", value=t.number)
            for t in reversed(turns)
        ]
        number = await questionary.select(
            "Rewind to before which turn?", choices=choices,
            instruction="(✎ changed files, ✗ changed files but its checkpoint was pruned)", **session._pt_io
        ).unsafe_ask_async()
        if number is None:
            return
    mode = await questionary.select(
        "What goes back?", choices=[questionary.Choice(t, value=i) for i, (t, _) in enumerate(REWIND_MODES)],
        **session._pt_io,
    ).unsafe_ask_async()
    if mode is None:
        return
    await _rewind(session, number, **REWIND_MODES[mode][1])


def _mark(turn: Any) -> str:
    if not turn.checkpoint:
        return " "
    return "✗" if turn.checkpoint.get("pruned") else "✎"


async def _rewind(session: Any, number: int, *, files: bool, chat: bool) -> None:
    import questionary

    from ..errors import PandoError
    from ..services.checkpoints import RewindConflict

    checkpoints = session.app.checkpoints
    try:
        report = await asyncio.to_thread(checkpoints.rewind, session.session_id, number, files=files, chat=chat)
    except RewindConflict as exc:
        shown = ", ".join(exc.paths[:8]) + (", …" if len(exc.paths) > 8 else "")
        overwrite = await questionary.confirm(
            f"Changed outside the agent since: {shown}. Overwrite?", default=False, **session._pt_io
        ).unsafe_ask_async()
        if not overwrite:
            session.console.print("[yellow]nothing was changed[/yellow]")
            return
        report = await asyncio.to_thread(
            checkpoints.rewind, session.session_id, number, files=files, chat=chat, force=True
        )
    except PandoError as exc:
        session.console.print(f"[red]✗ {short(exc, 400)}[/red]", highlight=False)
        return
    parts = []
    if files:
        parts.append(f"{len(report.restored)} file(s) restored, {len(report.deleted)} deleted")
    if chat:
        parts.append(f"{report.messages_deleted} message(s) removed")
    session.console.print(f"[green]✓ back to before turn {number}[/green] — " + "; ".join(parts), highlight=False)
    for path in report.restored + report.deleted:
        session.console.print(f"  [dim]{path}[/dim]", highlight=False)
    if chat and report.prompt:
        session.console.print(f"[dim]the rewound prompt was: {short(report.prompt, 200)}[/dim]", highlight=False)


async def plan(session: Any, args: str) -> None:
    """/plan [off]: plan mode on (read-only tools until you accept a plan), or off."""
    from ..agent import plan_mode

    app = session.app
    if args.strip().lower() == "off":
        if session.session_id and await asyncio.to_thread(plan_mode.is_planning, app, session.session_id):
            await asyncio.to_thread(plan_mode.accept, app, session.session_id)
        session.console.print("[green]✓ plan mode off[/green] — every tool is available")
        return
    if session.session_id is None:
        created = await asyncio.to_thread(app.sessions.create, title="Planning")
        session.session_id = created["id"]
    await asyncio.to_thread(plan_mode.start, app, session.session_id)
    session.console.print(
        "[cyan]◆ plan mode[/cyan] — read-only tools until you accept a plan; describe the task (/plan off leaves)",
        highlight=False,
    )


async def after_plan(session: Any, plan_text: str) -> str | None:
    """A turn presented a plan: show it, ask; the prompt to run next when accepted, else None."""
    import questionary
    from rich.markdown import Markdown
    from rich.panel import Panel

    from ..agent import plan_mode

    session.console.print(Panel(Markdown(plan_text), title="plan", border_style="cyan"))
    choice = await questionary.select(
        "Accept this plan?",
        choices=[
            questionary.Choice("Yes, carry it out", value=ACCEPT),
            questionary.Choice("No, keep planning", value="keep"),
        ],
        **session._pt_io,
    ).unsafe_ask_async()
    app = session.app
    if choice == ACCEPT:
        await asyncio.to_thread(plan_mode.accept, app, session.session_id)
        session.console.print("[green]✓ plan accepted[/green] — tools unlocked")
        return ACCEPTED_PROMPT
    await asyncio.to_thread(plan_mode.start, app, session.session_id)
    session.console.print("[cyan]◆ still planning[/cyan] — say what to change", highlight=False)
    return None
