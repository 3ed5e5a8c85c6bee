"""Test helpers for pando-acp and for anyone driving ``pando acp``: an editor-like ACP client.

``EditorClient`` plays the editor's part of the protocol: it records every session update,
answers permission requests with scripted choices, and, when given ``buffers``, offers the file
system capability and serves reads from and records writes to those buffers (path -> text;
``reads=False`` offers writes only); with
``terminals=True`` it offers terminals and runs their commands for real, as an editor does.
Use it with ``acp.spawn_agent_process(client, "pando", "acp")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

from acp import RequestError
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    CreateTerminalResponse,
    DeniedOutcome,
    FileSystemCapabilities,
    KillTerminalResponse,
    ReadTextFileResponse,
    ReleaseTerminalResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)

DEADLINE_S = 30.0


class EditorClient:
    def __init__(self, answers: list[str] | None = None, buffers: dict[str, str] | None = None, terminals: bool = False,
                 reads: bool = True, refused: set[str] | None = None) -> None:
        self.updates: list[tuple[str, Any]] = []
        self.permission_requests: list[Any] = []
        self.answers = list(answers or [])
        self.buffers = buffers  # None: no fs capability offered
        self.offers_reads = reads  # with buffers: offer fs.readTextFile too (else writes only)
        self.refused = set(refused or ())  # paths whose writes the editor refuses (read-only buffers)
        self.writes: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.changed = asyncio.Event()
        self.terminals = terminals  # offer terminals: commands run here, for real, as an editor runs them
        self.terminal_commands: list[tuple[str, list[str], str | None]] = []
        self._terminals: dict[str, tuple[Any, asyncio.Task, bytearray]] = {}

    @property
    def capabilities(self) -> ClientCapabilities:
        offered = self.buffers is not None
        fs = FileSystemCapabilities(read_text_file=offered and self.offers_reads, write_text_file=offered)
        return ClientCapabilities(fs=fs, terminal=self.terminals)

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append((session_id, update))
        self.changed.set()

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any], **_: Any) -> RequestPermissionResponse:
        self.permission_requests.append(tool_call)
        self.changed.set()
        answer = self.answers.pop(0) if self.answers else "cancelled"
        if answer == "cancelled":
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=answer))

    async def read_text_file(self, session_id: str, path: str, line: int | None = None, limit: int | None = None, **_: Any) -> ReadTextFileResponse:
        self.reads.append(path)
        if path in self.buffers:
            return ReadTextFileResponse(content=self.buffers[path])
        return ReadTextFileResponse(content=Path(path).read_text(encoding="utf-8"))

    async def write_text_file(self, session_id: str, path: str, content: str, **_: Any) -> WriteTextFileResponse:
        if path in self.refused:
            raise RequestError(-32603, f"{Path(path).name} is read-only in this editor")
        self.writes.append((path, content))
        self.buffers[path] = content
        return WriteTextFileResponse()

    async def create_terminal(self, session_id: str, command: str, args: list[str] | None = None, env: Any = None,
                              cwd: str | None = None, output_byte_limit: int | None = None, **_: Any) -> CreateTerminalResponse:
        self.terminal_commands.append((command, list(args or []), cwd))
        process = await asyncio.create_subprocess_exec(
            command, *(args or []), cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole (as editors do)
        )
        output = bytearray()

        async def collect() -> None:
            while chunk := await process.stdout.read(4096):
                output.extend(chunk)

        terminal_id = f"term-{len(self.terminal_commands)}"
        self._terminals[terminal_id] = (process, asyncio.ensure_future(collect()), output)
        return CreateTerminalResponse(terminal_id=terminal_id)

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str, **_: Any) -> WaitForTerminalExitResponse:
        process, reader, _ = self._terminals[terminal_id]
        code = await process.wait()
        await reader
        return WaitForTerminalExitResponse(exit_code=code if code >= 0 else None, signal=None if code >= 0 else str(-code))

    async def terminal_output(self, session_id: str, terminal_id: str, **_: Any) -> TerminalOutputResponse:
        process, _, output = self._terminals[terminal_id]
        status = None
        if process.returncode is not None and process.returncode >= 0:
            status = TerminalExitStatus(exit_code=process.returncode)
        return TerminalOutputResponse(output=output.decode("utf-8", "replace"), truncated=False, exit_status=status)

    async def kill_terminal(self, session_id: str, terminal_id: str, **_: Any) -> KillTerminalResponse:
        process, _, _ = self._terminals[terminal_id]
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        return KillTerminalResponse()

    async def release_terminal(self, session_id: str, terminal_id: str, **_: Any) -> ReleaseTerminalResponse:
        await self.kill_terminal(session_id, terminal_id)
        self._terminals.pop(terminal_id, None)
        return ReleaseTerminalResponse()

    # -- what the tests read -----------------------------------------------------------------------

    def of_kind(self, kind: str) -> list[Any]:
        return [u for _, u in self.updates if getattr(u, "session_update", None) == kind]

    def text(self, kind: str = "agent_message_chunk") -> str:
        return "".join(u.content.text for u in self.of_kind(kind))

    async def wait_for(self, predicate, timeout: float = DEADLINE_S) -> None:  # noqa: ANN001
        """Poll ``predicate()`` at every update until it holds or the deadline passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError("the expected update never came")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass


def stored_messages(workdir: Path, session_id: str) -> list[dict[str, Any]]:
    """The session's messages straight from the SQLite file (read-only), oldest first."""
    db = sqlite3.connect(f"file:{workdir / '.pando' / 'pando.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT role, parts FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)).fetchall()
    finally:
        db.close()
    return [{"role": role, "parts": json.loads(parts)} for role, parts in rows]
