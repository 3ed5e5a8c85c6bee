"""Plan mode: until the user accepts a plan, the agent may only look (read-only tools) and present one.

The state is kept with the session (``session_state`` key ``plan``): ``planning`` (the model
investigates and must end with ``present_plan``), ``presented`` (the plan is shown; still
read-only until accepted), ``accepted`` (tools unlocked; the plan stays stored). Read-only means:
tools marked ``read_only`` (view, ls, glob, grep, the todo list, the read-only sub-agent), fetch,
and bash commands the safe-command list calls read-only.
"""

from __future__ import annotations

from typing import Any

from ..clock import now_ms
from ..services.checkpoints import changes_files

STATE_KEY = "plan"
PLANNING, PRESENTED, ACCEPTED = "planning", "presented", "accepted"
PRESENT_TOOL = "present_plan"

SYSTEM_NOTE = """# Plan mode
You are in plan mode: investigate with read-only tools only (view, ls, glob, grep, fetch, read-only
bash commands, the todo list); nothing may be changed yet. When you know what to do, call
`present_plan` once with the complete plan (markdown: the steps, the files to change, how to verify)
and stop. The user accepts it (then every tool is available) or asks you to plan again."""


def state(app: Any, session_id: str) -> dict[str, Any]:
    value = app.store.session_state.get(session_id=session_id, key=STATE_KEY)
    return dict(value) if isinstance(value, dict) else {}


def is_planning(app: Any, session_id: str) -> bool:
    return state(app, session_id).get("status") in (PLANNING, PRESENTED)


def _put(app: Any, session_id: str, status: str, plan: str | None = None) -> dict[str, Any]:
    value = state(app, session_id)
    value.update(status=status, updated_at=now_ms())
    if plan is not None:
        value["plan"] = plan
    app.store.session_state.put(session_id=session_id, key=STATE_KEY, value=value)
    return value


def start(app: Any, session_id: str) -> dict[str, Any]:
    """Enter plan mode (or keep planning after a presented plan was not accepted)."""
    return _put(app, session_id, PLANNING)


def present(app: Any, session_id: str, plan: str) -> dict[str, Any]:
    return _put(app, session_id, PRESENTED, plan)


def accept(app: Any, session_id: str) -> dict[str, Any]:
    return _put(app, session_id, ACCEPTED)


def tools_for_turn(app: Any, session_id: str, tools: list[Any]) -> tuple[list[Any], set[str] | None]:
    """The tools the model is offered this turn, and (in plan mode) the names held back, else None."""
    if not is_planning(app, session_id):
        return [t for t in tools if t.name != PRESENT_TOOL], None
    allowed = [t for t in tools if _may_offer(t)]
    return allowed, {t.name for t in tools} - {t.name for t in allowed}


def _may_offer(tool: Any) -> bool:
    return getattr(tool, "read_only", False) or tool.name in ("bash", "fetch", PRESENT_TOOL)


def refusal(name: str, tool: Any, arguments: dict[str, Any], workdir: Any) -> str:
    """Why the call of tool ``name`` (``tool`` None: not offered) may not run in plan mode ("" when it may)."""
    if tool is None or not _may_offer(tool) or changes_files(tool, arguments, workdir):
        return (
            f"plan mode: {name} could change files and is not available until the user accepts "
            "the plan; investigate with read-only tools, then call present_plan"
        )
    return ""
