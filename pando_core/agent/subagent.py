"""The ``agent`` tool: a sub-agent with read-only tools that researches and answers in one go."""

from __future__ import annotations

from typing import Any

from .tools.base import ToolContext, ToolError, ToolResult

READ_ONLY_TOOLS = {"glob", "grep", "ls", "view", "result_page"}


class AgentTool:
    name = "agent"
    read_only = True  # the sub-agent has read-only tools only
    description = (
        "Launch a sub-agent with read-only tools (glob, grep, ls, view) to search the codebase or answer a "
        "question that needs several look-ups. Give it a complete, self-contained task description; it "
        "returns one final answer. Use it to keep your own context small."
    )
    parameters = {
        "type": "object",
        "properties": {"prompt": {"type": "string", "description": "the task for the sub-agent"}},
        "required": ["prompt"],
    }

    def __init__(self, app: Any) -> None:
        self.app = app

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        from .loop import CoderAgent

        prompt = str(args.get("prompt") or "").strip()
        if not prompt:
            raise ToolError("prompt is required")
        task = self.app.sessions.create(
            title=f"Task: {prompt[:40]}", parent_session_id=ctx.session_id or None, id=ctx.call_id or None
        )
        agent = CoderAgent(self.app, name="task", tool_filter=lambda t: t.name in READ_ONLY_TOOLS)
        result = await agent.run(task["id"], prompt, cancel_event=ctx.cancel_event, mentions=False)
        if ctx.session_id and result.cost:
            self.app.store.sessions.add_cost(id=ctx.session_id, cost=result.cost)
        usage = {"tokens_in": result.tokens_in, "tokens_out": result.tokens_out, "cost": result.cost}
        metadata = {"session_id": task["id"], "cost": result.cost, "subagent_usage": usage}
        if result.status == "error":
            return ToolResult(f"sub-agent failed: {result.error}", is_error=True, metadata=metadata)
        return ToolResult(result.response or "(no answer)", metadata=metadata)
