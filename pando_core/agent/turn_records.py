"""What a turn emits and returns (AgentEvent, TurnResult), and the message parts it stores,
including the error result of a tool call that never ran."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INTERRUPTED_TOOL = "Tool execution was interrupted"
CANCELED_TOOL = "Tool execution canceled by user"


@dataclass
class AgentEvent:
    """content_delta, thinking_delta, tool_call, tool_result, todos, plan, compaction, request, error,
    response, attached (the files the prompt's @mentions attached: data["files"]), continuation (a
    stopping hook's follow-up turn starts: data["n"], data["reason"]; "refused" past the limit)."""

    type: str
    session_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnResult:
    session_id: str
    response: str = ""
    status: str = "success"  # success | cancelled | error | max_requests | stuck | permission_denied
    finish_reason: str = ""
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    denials: list[dict[str, str]] = field(default_factory=list)
    error: str = ""
    error_kind: str = ""  # the error's kind when status is "error" ("config" for a bad setting, ...)
    requests: int = 0
    needs_title: Any = None
    plan: str = ""  # plan mode: the plan the model presented this turn
    continuations: int = 0  # follow-up turns a stopping hook (a Stop shell hook) asked for


def _part(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "data": data}


def _error_result(call: dict[str, Any], content: str) -> dict[str, Any]:
    """A tool_result part for a call that did not run (canceled, interrupted)."""
    return _part("tool_result", tool_call_id=call["id"], name=call["name"], content=content, is_error=True)

