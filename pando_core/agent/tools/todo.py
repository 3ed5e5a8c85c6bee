"""``todo_write`` and ``todo_read``: the model keeps its task list with the session."""

from __future__ import annotations

from typing import Any

from ...errors import ValidationError
from ...services import todos
from .base import ToolContext, ToolError, ToolResult


def _app(ctx: ToolContext) -> Any:
    app = ctx.extra.get("app")
    if app is None or not ctx.session_id:
        raise ToolError("the todo list needs a session")
    return app


class TodoWriteTool:
    name = "todo_write"
    read_only = True  # changes the session's list, never a file: nothing to ask about
    description = (
        "Replace the session's todo list with the given items (the whole list each time). Use it for "
        "work with several steps: add the steps, mark one `in_progress` while you work on it and "
        "`completed` as soon as it is done. Every item needs an id, its content and a status "
        "(pending, in_progress or completed)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "todos": {
                "type": "array",
                "description": "the whole list, in order",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "content": {"type": "string"},
                        "status": {"type": "string", "enum": list(todos.STATUSES)},
                    },
                    "required": ["id", "content", "status"],
                },
            }
        },
        "required": ["todos"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        app = _app(ctx)
        try:
            items = todos.validate(args.get("todos"))
        except ValidationError as exc:
            raise ToolError(str(exc)) from None
        todos.save(app, ctx.session_id, items)
        left = len(todos.open_items(items))
        summary = f"Todo list saved: {len(items)} item(s), {left} not completed.\n{todos.render(items)}"
        return ToolResult(summary, metadata={"todos": items})


class TodoReadTool:
    name = "todo_read"
    read_only = True
    description = "Show the session's todo list (written with todo_write)."
    parameters = {"type": "object", "properties": {}}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        items = todos.load(_app(ctx), ctx.session_id)
        return ToolResult(todos.render(items), metadata={"todos": items})
