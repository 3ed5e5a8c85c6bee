"""The coder's tools and how a turn runs the model's tool calls: arguments repaired, plan mode and
permissions checked, a checkpoint before a change, plugin hooks around each call."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from ..errors import TurnStopped
from ..services.checkpoints import changes_files
from . import plan_mode
from .tools.arguments import ArgumentsError, repair_arguments
from .tools.base import PermissionDenied, ToolError, ToolResult, permission_requests
from .turn_records import CANCELED_TOOL, AgentEvent, _error_result, _part

log = logging.getLogger("pando.agent")


class _RepeatedFailures:
    """Stops a turn whose model keeps making the same failing tool call."""

    def __init__(self, limit: int) -> None:
        self.limit = max(2, limit)
        self.last: tuple[str, str] | None = None
        self.count = 0

    def check(self, calls: list[dict[str, Any]], results: list[dict[str, Any]]) -> str:
        """After one round of tool calls: why to stop (a message), or ""."""
        failed = {p["data"]["tool_call_id"]: p["data"] for p in results if p["type"] == "tool_result" and p["data"].get("is_error")}
        if len(calls) != 1 or calls[0]["id"] not in failed:
            self.last, self.count = None, 0
            return ""
        call = calls[0]
        signature = (call["name"], call["input"].strip())
        self.count = self.count + 1 if signature == self.last else 1
        self.last = signature
        if self.count < self.limit:
            return ""
        error = str(failed[call["id"]].get("content") or "").splitlines()[0][:160] if failed[call["id"]].get("content") else ""
        return f"the model made the same failing call {self.count} times in a row ({call['name']}: {error}); stopped the turn"


def session_tools() -> list[Any]:
    """The coder's tools that keep state with the session: the todo list and plan mode's plan."""
    from .tools.plan import PresentPlanTool
    from .tools.todo import TodoReadTool, TodoWriteTool

    return [TodoWriteTool(), TodoReadTool(), PresentPlanTool()]



class ToolRunsMixin:
    """The tool set of a CoderAgent and the running of one round of tool calls."""

    def tools(self) -> list[Any]:
        from .subagent import AgentTool
        from .tools.builtin import builtin_tools

        tool_config = dict(self.app.config.section("tools"), pager=self.app.pager)
        tools = list(builtin_tools(tool_config))
        if self.name == "coder":
            tools += [AgentTool(self.app), *session_tools()]
        tools.extend(self.app.plugins.hooks.pando_register_tools.flat(app=self.app))
        return self._kept(tools)

    async def atools(self) -> list[Any]:
        """:meth:`tools` from async code (plugins' coroutine ``pando_register_tools`` awaited)."""
        from .subagent import AgentTool
        from .tools.builtin import builtin_tools

        tool_config = dict(self.app.config.section("tools"), pager=self.app.pager)
        tools = list(builtin_tools(tool_config))
        if self.name == "coder":
            tools += [AgentTool(self.app), *session_tools()]
        tools.extend(await self.app.plugins.hooks.pando_register_tools.aflat(app=self.app))
        return self._kept(tools)

    def _kept(self, tools: list[Any]) -> list[Any]:
        """Plugins' tools after the built-in ones; the first of a name wins."""
        if self.tool_filter is not None:
            tools = [t for t in tools if self.tool_filter(t)]
        unique: dict[str, Any] = {}
        for tool in tools:
            unique.setdefault(tool.name, tool)
        return list(unique.values())

    async def _run_tools(self, calls, tool_map, session_id, draft, on_event, result, cancel_event) -> tuple[dict, bool]:
        """Run calls in order; store one tool message with every result; also say whether a call was denied."""
        results: list[dict[str, Any]] = []
        denied = False
        try:
            for call in calls:
                if denied:
                    results.append(_error_result(call, CANCELED_TOOL))
                    continue
                outcome, was_denied = await self._run_one(call, tool_map, session_id, draft, cancel_event)
                denied = denied or was_denied
                record = {"id": call["id"], "name": call["name"], "input": call["input"], "is_error": outcome.is_error}
                result.tool_calls.append(record)
                spent = outcome.metadata.get("subagent_usage") if isinstance(outcome.metadata, dict) else None
                if isinstance(spent, dict):  # a sub-agent's requests are part of this turn's spend
                    result.tokens_in += int(spent.get("tokens_in") or 0)
                    result.tokens_out += int(spent.get("tokens_out") or 0)
                    result.cost += float(spent.get("cost") or 0.0)
                part = _part(
                    "tool_result",
                    tool_call_id=call["id"],
                    name=call["name"],
                    content=outcome.content,
                    metadata=json.dumps(outcome.metadata, default=str),
                    is_error=outcome.is_error,
                )
                results.append(part)
                self._emit(on_event, AgentEvent("tool_result", session_id, {"tool_result": part["data"], "tool_call": record}))
                if isinstance(outcome.metadata, dict) and not outcome.is_error:
                    if isinstance(outcome.metadata.get("todos"), list) and call["name"] == "todo_write":
                        self._emit(on_event, AgentEvent("todos", session_id, {"todos": outcome.metadata["todos"]}))
                    if outcome.metadata.get("end_turn") and isinstance(outcome.metadata.get("plan"), str):
                        result.plan = outcome.metadata["plan"]
                        self._emit(on_event, AgentEvent("plan", session_id, {"plan": result.plan}))
        except asyncio.CancelledError:
            done = {p["data"]["tool_call_id"] for p in results}
            results.extend(_error_result(c, CANCELED_TOOL) for c in calls if c["id"] not in done)
            self.app.messages.create(session_id, "tool", results)
            draft.tool_message_stored = True
            raise
        message = self.app.messages.create(session_id, "tool", results)
        draft.tool_message_stored = True
        if denied:
            result.denials = [d.as_dict() for d in self.app.permissions.denials if d.session_id == session_id]
        return message, denied

    async def _run_one(self, call, tool_map, session_id, draft, cancel_event) -> tuple[ToolResult, bool]:
        app = self.app
        tool = tool_map.get(call["name"])
        if tool is None and call["name"] in self._planning.get(session_id, ()):
            return ToolResult(plan_mode.refusal(call["name"], None, {}, app.workdir), is_error=True), False
        if tool is None:
            return ToolResult(f"Tool not found: {call['name']}", is_error=True), False
        try:
            # malformed JSON (a trailing comma, single quotes, cut short) is repaired, then checked
            arguments = repair_arguments(call["input"], getattr(tool, "parameters", None))
        except ArgumentsError as exc:
            return ToolResult(f"Invalid JSON arguments for {call['name']}: {exc}", is_error=True), False
        try:
            arguments = await app.plugins.hooks.pando_before_tool_call.acall(
                arguments=arguments, app=app, session_id=session_id, tool_name=call["name"]
            )
            ctx = app.tool_context(session_id, draft.message["id"], call["id"], cancel_event)
            if session_id in self._planning:
                refused = plan_mode.refusal(call["name"], tool, arguments, ctx.root())
                if refused:
                    return ToolResult(refused, is_error=True), False
            wants_checkpoint = self.name == "coder" and app.checkpoints.wants_before(session_id)
            if wants_checkpoint and changes_files(tool, arguments, ctx.root()):
                await asyncio.to_thread(app.checkpoints.before_change, session_id)
            for request in await permission_requests(tool, arguments, ctx):
                await ctx.ask(request)  # the core's check, before any tool that may change something
            outcome = await tool.run(arguments, ctx)
        except PermissionDenied as exc:
            return ToolResult(str(exc) or "Permission denied", is_error=True), True
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True), False
        except (asyncio.CancelledError, TurnStopped):
            raise
        except Exception as exc:  # noqa: BLE001 - a broken tool must not end the turn
            log.exception("tool %s failed", call["name"])
            return ToolResult(f"{call['name']} failed: {type(exc).__name__}: {exc}", is_error=True), False
        outcome = app.page_result(outcome, ctx, call["name"])
        after = await app.plugins.hooks.pando_after_tool_call.acall(
            result=outcome, app=app, session_id=session_id, tool_name=call["name"], arguments=arguments
        )
        if isinstance(after, str):
            after = ToolResult(after, outcome.is_error, outcome.metadata)
        return after, False

