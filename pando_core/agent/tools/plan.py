"""``present_plan``: in plan mode, the model hands its plan to the user, and the turn ends."""

from __future__ import annotations

from typing import Any

from .. import plan_mode
from .base import ToolContext, ToolError, ToolResult


class PresentPlanTool:
    name = plan_mode.PRESENT_TOOL
    read_only = True  # stores the plan with the session; changes no file
    description = (
        "Plan mode only: present your complete plan to the user (markdown: the steps, the files to "
        "change, how to verify). The turn ends; the user accepts the plan or asks for changes."
    )
    parameters = {
        "type": "object",
        "properties": {"plan": {"type": "string", "description": "the plan, in markdown"}},
        "required": ["plan"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        app = ctx.extra.get("app")
        plan = str(args.get("plan") or "").strip()
        if not plan:
            raise ToolError("plan is required")
        if app is None or not ctx.session_id:
            raise ToolError("a plan needs a session")
        plan_mode.present(app, ctx.session_id, plan)
        return ToolResult(
            "The plan was presented to the user. Stop here and wait for their answer.",
            metadata={"plan": plan, "end_turn": True},
        )
