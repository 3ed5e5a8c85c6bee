"""Test helpers for pando-acp and for anyone driving ``pando acp``: an editor-like ACP client.

``EditorClient`` plays the editor's part of the protocol: it records every session update,
answers permission requests with scripted choices, and, when given ``buffers``, offers the file
system capability and serves reads from and records writes to those buffers (path -> text).
Use it with ``acp.spawn_agent_process(client, "pando", "acp")``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)

DEADLINE_S = 30.0


class EditorClient:
    def __init__(self, answers: list[str] | None = None, buffers: dict[str, str] | None = None) -> None:
        self.updates: list[tuple[str, Any]] = []
        self.permission_requests: list[Any] = []
        self.answers = list(answers or [])
        self.buffers = buffers  # None: no fs capability offered
        self.writes: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.changed = asyncio.Event()

    @property
    def capabilities(self) -> ClientCapabilities:
        if self.buffers is None:
            return ClientCapabilities()
        return ClientCapabilities(fs=FileSystemCapabilities(read_text_file=True, write_text_file=True))

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
        self.writes.append((path, content))
        self.buffers[path] = content
        return WriteTextFileResponse()

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
