"""The interactive session's slash commands: the built-in ones (/help, /sessions, /model, /status,
...), plugin and custom markdown commands, and the dispatch of a typed ``/name args`` line."""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..errors import one_line as short
from ..slash_commands.render import commands_of, parse_invocation
from . import session_commands
from .prompt_input import _no_echo

BUILTIN_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("/help", "", "show this help"),
    ("/new", "", "end this session and start a new one"),
    ("/sessions", "[id]", "pick a recent session to resume"),
    ("/model", "[provider/model]", "show or switch the model"),
    ("/compact", "", "summarise the conversation so far to free context"),
    ("/clear", "", "clear the screen"),
    ("/plugins", "", "list the loaded plugins"),
    ("/status", "", "role, epoch, instance, primary, session, tokens, cost"),
    ("/undo", "", "undo the file changes of the last turn that changed files"),
    ("/rewind", "[turn]", "pick a turn: files, conversation or both back to before it"),
    ("/plan", "[off]", "plan mode: read-only tools until you accept the model's plan"),
    ("/exit", "", "quit (also /quit, Ctrl-D)"),
)
ALIASES = {"/quit": "/exit", "/q": "/exit", "/?": "/help", "/cls": "/clear"}

KEY_HELP: tuple[tuple[str, str], ...] = (
    ("Enter", "send the message"),
    ("Esc Enter / Alt-Enter", "insert a new line (so does a trailing \\ before Enter)"),
    ("Up / Down", "walk the prompt history (kept in .pando/history)"),
    ("Tab", "complete a slash command"),
    ("Ctrl-C", "cancel the running answer; at the prompt, press twice within 2 s to quit"),
    ("Ctrl-D", "quit (on an empty line)"),
)


def _ago(ms: int | None) -> str:
    if not ms:
        return ""
    seconds = max(0, time.time() - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


class SlashCommandsMixin:
    """Slash-command dispatch and the built-in commands of an InteractiveSession."""

    async def _load_plugin_commands(self) -> dict[str, Callable[..., Any]]:
        commands: dict[str, Callable[..., Any]] = {}
        try:
            results = await self.app.plugins.hooks.pando_slash_commands.acall(app=self.app)
        except Exception as exc:  # noqa: BLE001
            self.console.print(f"[red]plugin slash commands failed: {short(exc)}[/red]", highlight=False)
            return commands
        builtin = {name for name, _, _ in BUILTIN_COMMANDS} | set(ALIASES)
        for mapping in results:
            if not isinstance(mapping, dict):
                continue
            for name, fn in mapping.items():
                key = "/" + str(name).lstrip("/")
                if key in builtin or not callable(fn):
                    continue
                commands.setdefault(key, fn)
        return commands

    async def _command(self, line: str) -> bool:
        """Run one slash command; False means quit."""
        name, _, args = line.partition(" ")
        name = ALIASES.get(
            name.lower(), name.lower() if name.lower() in {n for n, _, _ in BUILTIN_COMMANDS} else name
        )
        args = args.strip()
        handler = {
            "/help": self._cmd_help,
            "/new": self._cmd_new,
            "/sessions": self._cmd_sessions,
            "/model": self._cmd_model,
            "/compact": self._cmd_compact,
            "/clear": self._cmd_clear,
            "/plugins": self._cmd_plugins,
            "/status": self._cmd_status,
            "/undo": lambda args: session_commands.undo(self, args),
            "/rewind": lambda args: session_commands.rewind(self, args),
            "/plan": lambda args: session_commands.plan(self, args),
        }.get(name)
        if name == "/exit":
            return False
        if handler is None and name not in self.plugin_commands:
            self.custom_commands = await asyncio.to_thread(commands_of, self.app)  # files may have changed
            called = parse_invocation(line, self.custom_commands)
            if called is not None:
                await self._custom_command(*called)
                return True
        try:
            with _no_echo(sys.stdin):
                if handler is not None:
                    await self._cancellable(handler(args))
                elif name in self.plugin_commands:
                    await self._cancellable(self._plugin_command(name, args))
                else:
                    self.console.print(
                        f"[red]unknown command {name}[/red] — /help lists the commands", highlight=False
                    )
        except asyncio.CancelledError:
            if asyncio.current_task() is not None and asyncio.current_task().cancelling():
                raise
            self.console.print("[yellow]⏹ cancelled[/yellow]")
        except KeyboardInterrupt:
            self.console.print("[yellow]⏹ cancelled[/yellow]")
        except Exception as exc:  # noqa: BLE001 - a failing command never ends the session
            self.console.print(f"[red]✗ {name}: {short(exc, 400)}[/red]", highlight=False)
        finally:
            self._install_signal_handlers()
        return True

    async def _custom_command(self, command: Any, args: str) -> None:
        """A markdown command: its rendered prompt is one turn (its model, its allowed tools)."""
        from rich.markup import escape

        from ..errors import PandoError
        from ..slash_commands.render import GRANT_OWNER, prepare

        try:
            if self.session_id is None:
                session = await asyncio.to_thread(self.app.sessions.create, title=short(f"/{command.name} {args}", 50))
                self.session_id = session["id"]
            invocation = await prepare(self.app, self.session_id, command, args)
        except PandoError as exc:
            named = str(exc).startswith(f"/{command.name}: ")  # a refused !`cmd` names its command
            shown = short(exc, 400) if named else f"/{command.name}: {short(exc, 400)}"
            self.console.print(f"[red]✗ {escape(shown)}[/red]", highlight=False)
            return
        for note in invocation.notes:
            self.console.print(f"[yellow]⚠ /{command.name}: {note}[/yellow]", highlight=False)
        model_ref = None if self.app.options.model else (invocation.model or None)  # --model wins
        self.app.permissions.grant_temporary(self.session_id, GRANT_OWNER, invocation.grants)
        try:
            await self._turn(invocation.prompt, model_ref=model_ref)
        finally:
            self.app.permissions.revoke_temporary(self.session_id, GRANT_OWNER)

    async def _plugin_command(self, name: str, args: str) -> None:
        fn = self.plugin_commands[name]
        if inspect.iscoroutinefunction(fn):
            result = await fn(self.app, args)
        else:
            result = await asyncio.to_thread(fn, self.app, args)
            if inspect.isawaitable(result):
                result = await result
        if result:
            from rich.markdown import Markdown

            self.console.print(Markdown(str(result)))

    async def _cmd_help(self, args: str) -> None:
        def table(rows: list[tuple[str, str]]) -> Any:
            return _grid(rows, "bold cyan", (0, 2, 0, 2))

        self.console.print("[bold]Commands[/bold]")
        self.console.print(
            table([(f"{name} {usage}".strip(), text) for name, usage, text in BUILTIN_COMMANDS])
        )
        if self.plugin_commands:
            self.console.print("[bold]Plugin commands[/bold]")
            self.console.print(table([(name, _doc(fn)) for name, fn in sorted(self.plugin_commands.items())]))
        self.custom_commands = await asyncio.to_thread(commands_of, self.app)
        if self.custom_commands:
            self.console.print("[bold]Custom commands[/bold]")
            from rich.markup import escape

            rows = [
                (escape(f"/{name} {command.argument_hint}".strip()), escape(f"{command.summary()} ({command.source})"))
                for name, command in sorted(self.custom_commands.items())
            ]
            self.console.print(table(rows))
        self.console.print("[bold]Keys[/bold]")
        self.console.print(table(list(KEY_HELP)))

    async def _cmd_new(self, args: str) -> None:
        if self.session_id:
            await asyncio.to_thread(self.app.sessions.end, self.session_id)
        self.session_id = None
        self.console.print("[green]✓ new session[/green] [dim]— it is saved with your next prompt[/dim]")

    async def _cmd_sessions(self, args: str) -> None:
        import questionary

        app = self.app
        if args:
            await self._resume(args)
            return
        sessions = (await asyncio.to_thread(app.sessions.list))[:20]
        if not sessions:
            self.console.print("[dim]no saved sessions yet[/dim]")
            return
        choices = []
        for session in sessions:
            marker = " (current)" if session["id"] == self.session_id else ""
            title = (
                f"{short(session.get('title') or 'untitled', 48)}{marker} · {session.get('message_count', 0)} messages"
                f" · {_ago(session.get('updated_at'))} · {session['id'][:8]}"
            )
            choices.append(questionary.Choice(title, value=session["id"]))
        choices.append(questionary.Choice("Cancel", value=""))
        try:
            chosen = await questionary.select(
                "Resume which session?", choices=choices, qmark="?", **self._pt_io
            ).unsafe_ask_async()
        except KeyboardInterrupt:
            chosen = ""
        finally:
            self._install_signal_handlers()
        if chosen:
            await self._resume(chosen)

    async def _resume(self, id_or_prefix: str) -> None:
        from ..services.messages import text_of

        app = self.app
        session = await asyncio.to_thread(app.sessions.restore, id_or_prefix)
        if self.session_id and self.session_id != session["id"]:
            await asyncio.to_thread(app.sessions.end, self.session_id)
        self.session_id = session["id"]
        self.console.print(
            f"[green]✓ resumed[/green] {short(session.get('title') or 'untitled', 60)} "
            f"[dim]({session.get('message_count', 0)} messages · {session['id'][:8]})[/dim]",
            highlight=False,
        )
        messages = await asyncio.to_thread(app.messages.list, session["id"])
        last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
        last_answer = next(
            (m for m in reversed(messages) if m["role"] == "assistant" and text_of(m).strip()), None
        )
        if last_user is not None:
            self.console.print(f"[dim]  you: {short(text_of(last_user), 90)}[/dim]", highlight=False)
        if last_answer is not None:
            self.console.print(f"[dim]  pando: {short(text_of(last_answer), 90)}[/dim]", highlight=False)

    async def _cmd_model(self, args: str) -> None:
        from ..agent.models import resolve_model
        from ..errors import PandoError

        app = self.app
        if not args:
            try:
                current = resolve_model(app.config, app.model_ref)
                self.console.print(f"model: [bold]{current.ref}[/bold]", highlight=False)
            except PandoError as exc:
                self.console.print(f"[red]no usable model: {short(exc, 400)}[/red]", highlight=False)
            providers = app.config.section("providers") or {}
            known = [
                f"{name}/{model}"
                for name, table in providers.items()
                for model in (table.get("models") or {})
            ]
            if known:
                self.console.print("[dim]configured: " + ", ".join(known) + "[/dim]", highlight=False)
            self.console.print("[dim]switch with /model provider/model[/dim]")
            return
        try:
            resolved = resolve_model(app.config, args)
        except PandoError as exc:
            self.console.print(f"[red]✗ {short(exc, 400)}[/red]", highlight=False)
            return
        app.model_ref = resolved.ref
        self.console.print(f"[green]✓ model[/green] {resolved.ref}", highlight=False)

    async def _cmd_compact(self, args: str) -> None:
        from ..agent.compaction import compact_session
        from ..agent.models import resolve_model

        if not self.session_id:
            self.console.print("[dim]nothing to compact yet[/dim]")
            return
        resolved = resolve_model(self.app.config, self.app.model_ref)
        with self.console.status("compacting the conversation…"):
            await self._await_warmup()
            summary = await compact_session(self.app, self.session_id, resolved)
        if summary:
            self.console.print(
                f"[green]✓ compacted[/green] [dim]— summary of {len(summary)} characters replaces the history[/dim]"
            )
        else:
            self.console.print("[dim]the conversation is too short to compact[/dim]")

    async def _cmd_clear(self, args: str) -> None:
        self.console.clear()

    async def _cmd_plugins(self, args: str) -> None:
        infos = self.app.plugins.list()
        if not infos:
            self.console.print("[dim]no plugins loaded[/dim]")
            return
        for info in infos:
            version = f" {info.version}" if info.version else ""
            colour = "green" if info.status == "loaded" else "red"
            error = f" — {short(info.error, 100)}" if info.error else ""
            self.console.print(
                f"[{colour}]●[/{colour}] {info.name}{version} [dim]{info.status}{error}[/dim]", highlight=False
            )

    async def _cmd_status(self, args: str) -> None:
        from ..agent.models import resolve_model
        from ..errors import PandoError

        app = self.app
        runtime = getattr(app, "runtime", None)
        rows: list[tuple[str, str]] = [("role", app.role)]
        if runtime is not None:
            rows.append(("epoch", str(getattr(runtime, "epoch", "?"))))
        rows.append(("instance", str(app.instance_id)))
        if runtime is not None:
            pid = getattr(runtime, "primary_pid", None)
            mine = " (this process)" if pid == os.getpid() else ""
            rows.append(("primary pid", f"{pid}{mine}"))
        try:
            rows.append(("model", resolve_model(app.config, app.model_ref).ref))
        except PandoError as exc:
            rows.append(("model", f"none ({short(exc, 80)})"))
        if self.session_id:
            try:
                session = await asyncio.to_thread(app.sessions.get, self.session_id)
            except PandoError:
                session = {"id": self.session_id}
            rows.append(("session", f"{session['id']}  {short(session.get('title') or '', 50)}"))
            rows.append(
                (
                    "tokens",
                    f"{session.get('total_prompt_tokens', 0)} in · {session.get('total_completion_tokens', 0)} out"
                    f" (context {session.get('prompt_tokens', 0)})",
                )
            )
            rows.append(("cost", f"${float(session.get('cost') or 0.0):.4f}"))
        else:
            rows.append(("session", "new (saved with the first prompt)"))
            rows.append(("tokens", "0"))
            rows.append(("cost", "$0.0000"))
        rows.append(("workdir", str(app.workdir)))
        self.console.print(_grid(rows, "bold", (0, 2, 0, 0)))


def _grid(rows: list[tuple[str, str]], key_style: str, padding: tuple[int, int, int, int]) -> Any:
    """A borderless two-column table: the keys in ``key_style``, then their text."""
    from rich.table import Table

    grid = Table(box=None, show_header=False, padding=padding)
    grid.add_column(style=key_style, no_wrap=True)
    grid.add_column()
    for left, right in rows:
        grid.add_row(left, right)
    return grid


def _doc(fn: Any) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.strip().splitlines()[0] if doc.strip() else "plugin command"


def _looks_like_command(text: str) -> bool:
    """``/status`` is a command; ``/usr/bin/env is broken`` is a prompt."""
    word = text.strip().split(maxsplit=1)[0]
    return "/" not in word[1:] and "\n" not in text.strip()

