"""One ``session/prompt`` while it runs: pando's agent events streamed to the editor, in order.

The agent calls ``Turn.on_event`` synchronously from inside the turn; each update is written to
the pipe right there (``post``: no task switch, so a chunk leaves before the agent reads the next
one from the model), hence in the order it happened and before the prompt's response; ``flush``
waits until the pipe has taken them. The turn is also what the permission asker and the editor
tools find through ``CURRENT_TURN`` (a context variable: the agent's turn task inherits it), to
know the session, its mode, the running tool call and the client.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import acp
from acp.schema import ClientCapabilities, PermissionOption, SessionNotification
from acp.utils import serialize_params

from . import updates

CURRENT_TURN: contextvars.ContextVar[Turn | None] = contextvars.ContextVar("pando_acp_turn", default=None)

MODES = {
    "ask": "Ask before every tool call that changes something and [permissions] does not allow",
    "agent": "Run what [permissions] allows; refuse the rest without asking",
    "yolo": "Run every tool call without asking",
}

PERMISSION_OPTIONS = [
    PermissionOption(option_id="allow_once", name="Allow once", kind="allow_once"),
    PermissionOption(option_id="allow_always", name="Always allow", kind="allow_always"),
    PermissionOption(option_id="reject_once", name="Reject", kind="reject_once"),
]
# the option the editor picked -> the answer pando's permission service takes
ANSWERS = {"allow_once": "once", "allow_always": "always", "reject_once": "deny"}


@dataclass
class SessionState:
    """What ``pando acp`` keeps per ACP session besides the stored pando session."""

    id: str
    mode: str = "ask"
    model: str | None = None
    turn: Turn | None = None
    used: bool = False  # a prompt ran in it: it is ended when pando acp exits
    mcp: Any = None  # the MCP servers the editor gave for it (session_mcp.SessionServers)


def notification(session_id: str, update: Any) -> dict[str, Any]:
    """The ``session/update`` frame of one update (as the library would serialise it)."""
    params = SessionNotification(session_id=session_id, update=update)
    return {"jsonrpc": "2.0", "method": "session/update", "params": serialize_params(params)}


@dataclass
class Turn:
    client: Any
    post: Callable[[dict[str, Any]], None]  # writes one frame now (FrameTransport.post)
    drain: Callable[[], Awaitable[None]]  # waits for the pipe (FrameTransport.drain)
    session: SessionState
    workdir: Path
    capabilities: ClientCapabilities
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    pending_calls: list[str] = field(default_factory=list)
    call_content: dict[str, Any] = field(default_factory=dict)  # a call's diff or terminal, shown again when it ends
    client_gone: bool = False

    def __post_init__(self) -> None:
        self.done = asyncio.Event()  # set once the turn is over and its updates are out

    # -- updates ---------------------------------------------------------------------------------

    def send(self, update: Any) -> None:
        if self.client_gone:
            return
        try:
            self.post(notification(self.session.id, update))
        except ConnectionError:
            self.client_gone = True

    def on_event(self, event: Any) -> None:
        """pando's ``AgentEvent`` -> ACP session updates."""
        kind, data = event.type, event.data
        if kind == "content_delta" and data.get("delta"):
            self.send(acp.update_agent_message_text(data["delta"]))
        elif kind == "thinking_delta" and data.get("delta"):
            self.send(acp.update_agent_thought_text(data["delta"]))
        elif kind == "tool_call":
            call = data["tool_call"]
            start = updates.tool_call_start(self.workdir, call)
            self.call_content[call["id"]] = start.content
            self.pending_calls.append(call["id"])
            self.send(start)
        elif kind == "tool_result":
            result = data["tool_result"]
            call_id = result.get("tool_call_id", "")
            if call_id in self.pending_calls:
                self.pending_calls.remove(call_id)
            self.send(updates.tool_call_finished(call_id, result, self.call_content.pop(call_id, None)))

    def tool_starting(self) -> None:
        """Called just before a tool runs (``pando_before_tool_call``): the oldest call without a
        result is the one starting."""
        if self.pending_calls:
            self.send(updates.tool_call_running(self.pending_calls[0]))

    async def flush(self) -> None:
        """Wait until the pipe has taken every update written so far."""
        if self.client_gone:
            return
        try:
            await self.drain()
        except ConnectionError:
            self.client_gone = True

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            self.done.set()

    # -- control ---------------------------------------------------------------------------------

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


async def ask_editor(request: Any) -> str:
    """The App's interactive permission asker (``AppOptions.interactive_permissions``).

    pando calls it only for a request that neither ``[permissions]`` nor an earlier grant allows.
    In ``ask`` mode the editor is asked (``session/request_permission``, with the call's diff); in
    ``agent`` mode the request is refused; in ``yolo`` mode it is allowed. Outside an ACP turn
    there is nobody to ask: refused.
    """
    turn = CURRENT_TURN.get()
    if turn is None:
        return "deny"
    mode = turn.session.mode
    if mode == "yolo":
        return "once"
    if mode != "ask" or turn.client_gone:
        return "deny"
    call_id = turn.pending_calls[0] if turn.pending_calls else f"permission-{id(request):x}"
    await turn.flush()  # the editor knows the call before it is asked about it
    tool_call = acp.schema.ToolCallUpdate(
        tool_call_id=call_id,
        title=request.description.splitlines()[0] if request.description else request.tool_name,
        kind=updates.TOOL_KINDS.get(request.tool_name, "other"),
        status="pending",
        content=turn.call_content.get(call_id),
        locations=[acp.schema.ToolCallLocation(path=request.path)] if request.path else None,
        raw_input=dict(request.params),
    )
    try:
        response = await turn.client.request_permission(turn.session.id, tool_call, PERMISSION_OPTIONS)
    except ConnectionError:
        # the editor went away while asked: the turn is cancelled (and stored), not "denied"
        turn.client_gone = True
        turn.cancel()
        raise asyncio.CancelledError from None
    outcome = response.outcome
    if getattr(outcome, "outcome", "") != "selected":  # the editor cancelled the prompt
        turn.cancel()
        raise asyncio.CancelledError
    return ANSWERS.get(outcome.option_id, "deny")
