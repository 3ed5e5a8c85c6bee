"""The agent tools ``mesnada_*`` (also offered to ``pando mcp-server``). Each one is a
``call_primary`` of a bus method, so it works the same on a primary and on a secondary."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pando_core.agent.tools.base import PermissionRequest, ToolContext, ToolResult
from pando_core.errors import PandoError

from .client import call, wait_for

_TASK_ID = {"type": "string", "description": "the task id (task-xxxxxxxx)"}
FOREGROUND_LIMIT = 3600.0  # a foreground spawn waits at most this long without a timeout of its own


def _result(value: Any) -> ToolResult:
    return ToolResult(json.dumps(value, ensure_ascii=False, indent=1))


def _brief(task: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "status", "engine", "model", "work_dir", "tags", "dependencies", "priority", "exit_code", "error",
            "progress", "branch", "created_at", "started_at", "completed_at")  # fmt: skip
    return {key: task.get(key) for key in keys}


class _MesnadaTool:
    read_only = True

    def __init__(self, app: Any) -> None:
        self.app = app

    async def _call(self, method: str, params: dict[str, Any], timeout: float | None = None) -> Any:
        return await asyncio.to_thread(call, self.app, method, params, timeout)

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            return await self._run(dict(args or {}), ctx)
        except PandoError as exc:
            return ToolResult(f"mesnada: {exc}", is_error=True)

    async def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:  # pragma: no cover - abstract
        raise NotImplementedError


class SpawnAgentTool(_MesnadaTool):
    name = "mesnada_spawn_agent"
    description = (
        "Start a sub-agent task (another agent process) with a prompt. It runs in the background unless"
        " background is false. With task_id, relaunches that task. Dependencies: task ids that must complete"
        " first; include_dependency_logs appends the end of their logs to the prompt."
    )
    parameters = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "what the sub-agent must do"},
            "task_id": {"type": "string", "description": "relaunch this existing task instead of creating one"},
            "work_dir": {"type": "string", "description": "directory to work in (default: the project)"},
            "engine": {"type": "string", "description": "pando (default), claude, gemini, opencode, codex, copilot, command"},
            "model": {"type": "string", "description": "model for the engine"},
            "background": {"type": "boolean", "description": "return at once (default true)"},
            "timeout": {"type": "string", "description": "e.g. 10m, 90s"},
            "dependencies": {"type": "array", "items": {"type": "string"}},
            "include_dependency_logs": {"type": "boolean"},
            "dependency_log_lines": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "persona": {"type": "string", "description": "a persona name (software-engineer, qa, ...)"},
        },
        "required": ["prompt"],
    }
    read_only = False

    async def permission(self, args: dict[str, Any], ctx: ToolContext) -> PermissionRequest:
        engine = args.get("engine") or "pando"
        return PermissionRequest(self.name, "execute", f"start a {engine} sub-agent: {str(args.get('prompt', ''))[:120]}")

    async def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        background = args.pop("background", True) is not False
        task_id = args.pop("task_id", None)
        if task_id:
            task = await self._call("relaunch", {"id": task_id, "overrides": args})
        else:
            task = await self._call("spawn", {**args, "background": True})
        out: dict[str, Any] = {"task_id": task["id"], "status": task["status"], "work_dir": task["work_dir"],
                               "created_at": task["created_at"]}  # fmt: skip
        if not background:
            limit = task.get("timeout_seconds") or FOREGROUND_LIMIT
            cancel = ctx.cancel_event
            done = await asyncio.to_thread(
                wait_for, self.app, [task["id"]], True, limit + 30, lambda: cancel is not None and cancel.is_set()
            )
            task = done["tasks"][0]
            out.update(status=task["status"], exit_code=task["exit_code"], error=task["error"],
                       output_tail=task["output_tail"], timeout=done["timeout"])  # fmt: skip
        return _result(out)


class GetTaskTool(_MesnadaTool):
    name = "mesnada_get_task"
    description = "Details of a sub-agent task: status, progress, exit code, error."
    parameters = {"type": "object", "properties": {"task_id": _TASK_ID}, "required": ["task_id"]}

    async def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return _result(_brief(await self._call("get", {"id": args.get("task_id")})))


class ListTasksTool(_MesnadaTool):
    name = "mesnada_list_tasks"
    description = "List sub-agent tasks, newest first, optionally by status and tags (all must match)."
    parameters = {
        "type": "object",
        "properties": {
            "status": {"type": "array", "items": {"type": "string"}, "description": "pending, running, paused, completed, failed, cancelled"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "limit": {"type": "integer"},
        },
    }

    async def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        params = {key: args[key] for key in ("status", "tags", "limit") if args.get(key) is not None}
        return _result([_brief(task) for task in await self._call("list", params)])


class WaitTaskTool(_MesnadaTool):
    name = "mesnada_wait_task"
    description = "Wait until a sub-agent task ends (or the timeout passes); returns it with its output tail."
    parameters = {
        "type": "object",
        "properties": {"task_id": _TASK_ID, "timeout": {"type": "string", "description": "e.g. 5m (default 10m)"}},
        "required": ["task_id"],
    }

    async def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        cancel = ctx.cancel_event
        done = await asyncio.to_thread(
            wait_for, self.app, [args.get("task_id")], True, args.get("timeout") or "10m",
            lambda: cancel is not None and cancel.is_set(),
        )  # fmt: skip
        task = done["tasks"][0]
        if done["timeout"]:
            return _result({"task": _brief(task), "error": "timed out waiting", "timeout": True})
        return _result({"task": _brief(task), "output_tail": task["output_tail"]})


class CancelTaskTool(_MesnadaTool):
    name = "mesnada_cancel_task"
    description = "Cancel a pending or running sub-agent task (its process group is stopped)."
    parameters = {"type": "object", "properties": {"task_id": _TASK_ID}, "required": ["task_id"]}
    read_only = False

    async def permission(self, args: dict[str, Any], ctx: ToolContext) -> PermissionRequest:
        return PermissionRequest(self.name, "execute", f"cancel the sub-agent task {args.get('task_id')}")

    async def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return _result(_brief(await self._call("cancel", {"id": args.get("task_id")})))


class GetTaskOutputTool(_MesnadaTool):
    name = "mesnada_get_task_output"
    description = "The output of a sub-agent task: its last lines (tail, default the kept tail)."
    parameters = {
        "type": "object",
        "properties": {"task_id": _TASK_ID, "tail": {"type": "integer", "description": "number of last lines"}},
        "required": ["task_id"],
    }

    async def _run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        result = await self._call("output", {"id": args.get("task_id"), "lines": args.get("tail")})
        return ToolResult(f"[{result['id']} {result['status']}]\n{result['output']}")


TOOL_CLASSES = (SpawnAgentTool, GetTaskTool, ListTasksTool, WaitTaskTool, CancelTaskTool, GetTaskOutputTool)


def make_tools(app: Any) -> list[Any]:
    return [cls(app) for cls in TOOL_CLASSES]
