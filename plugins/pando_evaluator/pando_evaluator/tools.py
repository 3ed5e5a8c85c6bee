"""The tools ``pando mcp-server`` offers: stats, rules, and evaluating a session."""

from __future__ import annotations

import json
from typing import Any

from pando_core.agent.tools.base import ToolResult

from .judge import TASK_TYPES


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


class StatsTool:
    name = "pando_evaluator_stats"
    description = (
        "Self-improvement statistics of this project: sessions scored, average reward, last evaluation, "
        "the UCB1 ranking of each prompt section's variants, and the active learned rules."
    )
    parameters = {"type": "object", "properties": {}}
    read_only = True

    def __init__(self, app: Any) -> None:
        self.app = app

    async def run(self, args: dict, ctx: Any) -> ToolResult:
        from .report import collect_stats

        return ToolResult(_json(collect_stats(self.app)))


class RulesTool:
    name = "pando_evaluator_rules"
    description = "The active rules learned from earlier sessions, optionally only those for one kind of task."
    parameters = {
        "type": "object",
        "properties": {"task_type": {"type": "string", "enum": list(TASK_TYPES), "description": "kind of task"}},
    }
    read_only = True

    def __init__(self, app: Any) -> None:
        self.app = app

    async def run(self, args: dict, ctx: Any) -> ToolResult:
        task_type = args.get("task_type")
        if task_type is not None and task_type not in TASK_TYPES:
            return ToolResult(f"task_type must be one of {', '.join(TASK_TYPES)}", is_error=True)
        store = self.app.store.evaluator
        rules = store.active_rules(task_type=task_type, limit=1000) if task_type else store.rules(include_inactive=False)
        return ToolResult(_json(rules))


class EvaluateTool:
    name = "pando_evaluator_evaluate"
    description = (
        "Score a finished session now (user corrections, token efficiency, and a rule from the judge model); "
        "a session already scored is not scored again."
    )
    parameters = {
        "type": "object",
        "properties": {"session_id": {"type": "string", "description": "session id or unique prefix"}},
        "required": ["session_id"],
    }
    read_only = False

    def __init__(self, app: Any) -> None:
        self.app = app

    async def run(self, args: dict, ctx: Any) -> ToolResult:
        import asyncio

        from pando_core.errors import PandoError

        from .methods import request_evaluation

        session_id = args.get("session_id")
        if not isinstance(session_id, str) or not session_id.strip():
            return ToolResult("session_id is required", is_error=True)
        try:  # the evaluation blocks (it may ask the judge): off the event loop
            result = await asyncio.to_thread(request_evaluation, self.app, session_id.strip())
        except PandoError as exc:
            return ToolResult(str(exc), is_error=True)
        return ToolResult(_json(result))


def mcp_tools(app: Any) -> list:
    return [StatsTool(app), RulesTool(app), EvaluateTool(app)]
