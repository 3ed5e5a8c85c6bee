"""A prompt from the page: the turn runs on the server's event loop and streams its events.

Events are the objects of ``pando run -f stream-json`` (``text_delta``, ``tool_call``,
``tool_result``, ..., then ``result``), plus ``permission_request`` when a tool needs approval.
The turn does not depend on the browser staying: it runs as a task of its own, is stored like any
other turn, and a page that left sees the result through the change feed.

Permissions: the server's App asks ``PermissionBroker.ask`` for what neither ``[permissions]``
nor an earlier grant allows. The question waits (``ASK_TIMEOUT_S`` at most, then it is refused)
for ``POST /api/permissions/{id}`` from any page; the stream of the turn and ``/api/events`` both
announce it.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from ..errors import one_line
from .live import LiveHub, sse

ASK_TIMEOUT_S = 600.0
ANSWERS = ("once", "session", "always", "deny")
_TURN_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("pando_web_turn_session", default=None)
_TURN_EVENTS: contextvars.ContextVar[asyncio.Queue | None] = contextvars.ContextVar("pando_web_turn_events", default=None)
_END = object()


class PermissionBroker:
    """Permission questions waiting for an answer from a page."""

    def __init__(self, hub: LiveHub) -> None:
        self.hub = hub
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[dict[str, Any], asyncio.Future]] = {}

    async def ask(self, request: Any) -> str:
        """``AppOptions.interactive_permissions``: once | session | always | deny."""
        session_id = _TURN_SESSION.get()
        if session_id is None:
            return "deny"  # not a turn of this server (nobody here to ask)
        ident = f"perm-{next(self._ids)}"
        info = {
            "id": ident,
            "session_id": session_id,
            "tool": request.tool_name,
            "action": request.action,
            "description": request.description,
            "path": request.path,
        }
        future = asyncio.get_running_loop().create_future()
        self._pending[ident] = (info, future)
        event = {"type": "permission_request", **info}
        events = _TURN_EVENTS.get()
        if events is not None:
            events.put_nowait(event)
        self.hub.publish(event)
        try:
            return await asyncio.wait_for(future, ASK_TIMEOUT_S)
        except TimeoutError:
            return "deny"
        finally:
            self._pending.pop(ident, None)
            self.hub.publish({"type": "permission_answered", "id": ident, "session_id": session_id})

    def pending(self, session_id: str | None = None) -> list[dict[str, Any]]:
        return [info for info, _ in self._pending.values() if session_id in (None, info["session_id"])]

    def answer(self, ident: str, answer: str) -> bool:
        """Answer a waiting question (on the server's loop); False when there is no such question."""
        entry = self._pending.get(ident)
        if entry is None or entry[1].done():
            return False
        entry[1].set_result(answer)
        return True


class TurnRunner:
    """Starts turns for the API and streams their events."""

    def __init__(self, app: Any, hub: LiveHub) -> None:
        self.app = app
        self.hub = hub
        self.tasks: set[asyncio.Task] = set()
        self.used_sessions: set[str] = set()

    def check_model(self) -> None:
        """A missing model or a hung primary is a one-line error before any session is made."""
        from ..frontends.run import prepare_app

        prepare_app(self.app)

    def open_session(self, session_id: str | None, prompt: str) -> dict[str, Any]:
        if session_id:
            return self.app.sessions.restore(session_id)
        return self.app.sessions.create(title=one_line(prompt, 50))

    def start(self, session_id: str, prompt: str) -> asyncio.Queue:
        """Run a turn of *session_id* in the background; its events arrive on the returned queue."""
        events: asyncio.Queue = asyncio.Queue()
        self.used_sessions.add(session_id)
        context = contextvars.copy_context()
        context.run(_TURN_SESSION.set, session_id)
        context.run(_TURN_EVENTS.set, events)
        task = asyncio.get_running_loop().create_task(self._run(session_id, prompt, events), context=context)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return events

    async def _run(self, session_id: str, prompt: str, events: asyncio.Queue) -> None:
        from ..frontends.run import result_json, stream_json_event

        def on_event(event: Any) -> None:
            data = stream_json_event(event)
            if data is not None:
                events.put_nowait(data)

        try:
            result = await self.app.coder_agent.run(session_id, prompt, on_event=on_event)
            events.put_nowait({"type": "result", **result_json(result)})
        except Exception as exc:  # noqa: BLE001 - the page shows it; the server keeps serving
            events.put_nowait({"type": "result", "session_id": session_id, "status": "error", "error": one_line(str(exc))})
        finally:
            events.put_nowait(_END)

    async def stream(self, events: asyncio.Queue) -> AsyncIterator[str]:
        while True:
            event = await events.get()
            if event is _END:
                return
            yield sse(event)

    def end_sessions(self) -> None:
        """At server exit: the sessions this server ran turns in are over."""
        for session_id in list(self.used_sessions):
            try:
                self.app.sessions.end(session_id)
            except Exception:  # noqa: BLE001 - shutting down
                pass

    async def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def parse_prompt_body(raw: bytes, content_type: str) -> str:
    """The prompt of a JSON ``{"prompt": ...}`` or form ``prompt=...`` body."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        from urllib.parse import parse_qs

        return (parse_qs(raw.decode("utf-8", "replace")).get("prompt") or [""])[0]
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return ""
    return str(data.get("prompt") or "") if isinstance(data, dict) else ""
