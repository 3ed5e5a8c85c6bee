"""Slash commands in the editor: pando's own that make sense there, and every plugin's.

They are announced with ``available_commands_update`` after a session is created or loaded; a
prompt that starts with ``/name`` runs the command instead of an agent turn, and its text comes
back as the agent's message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from acp.schema import AvailableCommand, AvailableCommandInput, UnstructuredCommandInput

log = logging.getLogger("pando.acp.commands")


@dataclass
class Command:
    name: str
    description: str
    run: Callable[[Any, str], Any]  # (session state, arguments) -> text
    hint: str | None = None

    def announced(self) -> AvailableCommand:
        command_input = AvailableCommandInput(UnstructuredCommandInput(hint=self.hint)) if self.hint else None
        return AvailableCommand(name=self.name, description=self.description, input=command_input)


def _first_line(fn: Any) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.splitlines()[0] if doc else "a plugin command"


async def plugin_commands(app: Any) -> dict[str, Callable[..., Any]]:
    """``pando_slash_commands`` of every plugin, by name without the slash."""
    found: dict[str, Callable[..., Any]] = {}
    try:
        results = await app.plugins.hooks.pando_slash_commands.acall(app=app)
    except Exception:  # noqa: BLE001 - a plugin's failure must not hide the others' commands
        log.exception("plugin slash commands failed")
        return found
    for mapping in results:
        if not isinstance(mapping, dict):
            continue
        for name, fn in mapping.items():
            if callable(fn):
                found.setdefault(str(name).lstrip("/"), fn)
    return found


async def run_plugin_command(fn: Callable[..., Any], app: Any, args: str) -> str:
    if inspect.iscoroutinefunction(fn):
        result = await fn(app, args)
    else:
        result = await asyncio.to_thread(fn, app, args)
        if inspect.isawaitable(result):
            result = await result
    return "" if result is None else str(result)


def split_command(text: str, known: dict[str, Command]) -> tuple[Command, str] | None:
    """``(command, arguments)`` when ``text`` is ``/name args`` for a known command."""
    if not text.startswith("/"):
        return None
    name, _, args = text[1:].partition(" ")
    command = known.get(name.strip())
    return (command, args.strip()) if command else None


async def build_commands(app: Any, builtins: list[Command]) -> dict[str, Command]:
    commands = {c.name: c for c in builtins}
    for name, fn in (await plugin_commands(app)).items():
        if name in commands:
            continue

        def runner(state: Any, args: str, fn: Callable[..., Any] = fn) -> Awaitable[str]:
            return run_plugin_command(fn, app, args)

        commands[name] = Command(name, _first_line(fn), runner)
    return commands
