"""The coder agent: one user turn = stream from the model, run its tool calls, repeat until it stops.

Everything the model says is stored as it happens (throttled), so a cancelled or crashed turn
leaves a consistent, loadable session: the partial answer is kept with finish reason
``canceled`` and every tool call has a result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..clock import now_ms
from ..errors import PandoError, TurnStopped, UsageError
from ..services.checkpoints import changes_files
from . import plan_mode
from .attachments import DEFAULT_MAX_IMAGE_BYTES, check_message_fits, check_model_takes_images
from .mentions import DEFAULT_MAX_BYTES as DEFAULT_MENTION_BYTES
from .mentions import mention_parts
from .models import ResolvedModel, request_cost, resolve_model
from .prompt import build_system_prompt
from .providers.base import ChatRequest, ProviderError, Usage
from .tools.arguments import ArgumentsError, repair_arguments
from .tools.base import PermissionDenied, ToolError, ToolResult, permission_requests, tool_schema

log = logging.getLogger("pando.agent")

PERSIST_INTERVAL_S = 0.25
OUTPUT_RESERVE_TOKENS = 2048 + 512
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


@dataclass
class _TurnAttachments:
    """What a turn sends with its prompt: given parts (images) and, if asked, the @mentioned files."""

    given: list[dict[str, Any]] = field(default_factory=list)
    mentions: bool = False

    async def mentioned(self, app: Any, prompt: str) -> list[dict[str, Any]]:
        if not (self.mentions and "@" in prompt):
            return []
        agent_cfg = app.config.section("agent")
        return await asyncio.to_thread(
            mention_parts,
            prompt,
            app.workdir,
            max_bytes=int(agent_cfg.get("mention_max_bytes") or DEFAULT_MENTION_BYTES),
            max_image_bytes=int(agent_cfg.get("max_image_bytes") or DEFAULT_MAX_IMAGE_BYTES),
        )


def attached_summary(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the "attached" event says about mentioned files: path, kind, bytes (and why one was left out)."""
    keys = ("path", "kind", "bytes", "truncated", "reason", "mime_type")
    return [
        {"type": p["type"], **{k: p["data"][k] for k in keys if k in p["data"]}} for p in parts
    ]


def _error_result(call: dict[str, Any], content: str) -> dict[str, Any]:
    """A tool_result part for a call that did not run (canceled, interrupted)."""
    return _part("tool_result", tool_call_id=call["id"], name=call["name"], content=content, is_error=True)


class _AssistantDraft:
    """The assistant message being streamed, persisted at most every PERSIST_INTERVAL_S."""

    def __init__(self, messages: Any, session_id: str, model: str) -> None:
        self.messages = messages
        self.text = ""
        self.reasoning = ""
        self.reasoning_signature = ""
        self.tool_calls: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.finish: dict[str, Any] | None = None
        self.model = model
        self.session_id = session_id
        self.message: dict[str, Any] | None = None  # stored at the first persist: one write less per request
        self.tool_message_stored = False
        self._last_persist = time.monotonic()  # the first write waits one interval (or the end)

    def parts(self) -> list[dict[str, Any]]:
        parts = []
        if self.reasoning or self.reasoning_signature:
            data = {"thinking": self.reasoning}
            if self.reasoning_signature:
                data["signature"] = self.reasoning_signature
            parts.append(_part("reasoning", **data))
        if self.text:
            parts.append(_part("text", text=self.text))
        for call_id in self.order:
            call = self.tool_calls[call_id]
            parts.append(_part("tool_call", **call))
        if self.finish:
            parts.append(_part("finish", **self.finish))
        return parts

    def persist(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_persist < PERSIST_INTERVAL_S:
            return
        self._last_persist = now
        if self.message is None:
            self.message = self.messages.create(self.session_id, "assistant", self.parts(), model=self.model)
        else:
            self.message = self.messages.update(self.message["id"], self.parts(), model=self.model)

    def add_call(self, call_id: str, name: str, arguments: str = "", finished: bool = False) -> None:
        if call_id not in self.tool_calls:
            self.order.append(call_id)
            self.tool_calls[call_id] = {"id": call_id, "name": name, "input": arguments, "type": "function", "finished": finished}
        else:
            call = self.tool_calls[call_id]
            call["name"] = name or call["name"]
            if arguments:
                call["input"] = arguments
            call["finished"] = call["finished"] or finished


def sanitize_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop empty assistant messages; answer tool calls left without results (crash, cancel)."""
    messages = list(messages)
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        parts = message.get("parts", [])
        if message["role"] == "assistant" and not any(p["type"] in ("text", "tool_call") for p in parts):
            continue
        out.append(message)
        calls = [p["data"] for p in parts if p["type"] == "tool_call"]
        if message["role"] != "assistant" or not calls:
            continue
        following = messages[index + 1] if index + 1 < len(messages) else None
        if following is None or following["role"] != "tool":
            out.append({"role": "tool", "parts": [_error_result(c, INTERRUPTED_TOOL) for c in calls]})
            continue
        answered = {p["data"]["tool_call_id"] for p in following["parts"] if p["type"] == "tool_result"}
        missing = [_error_result(c, INTERRUPTED_TOOL) for c in calls if c["id"] not in answered]
        if missing:  # answered in a copy: the caller's history is not changed
            messages[index + 1] = dict(following, parts=[*following["parts"], *missing])
    return out


def _message_chars(message: dict[str, Any]) -> int:
    total = 0
    for part in message.get("parts", []):
        data = part.get("data", {})
        total += len(str(data.get("text") or data.get("content") or data.get("input") or data.get("thinking") or ""))
    return total


def trim_to_budget(messages: list[dict[str, Any]], budget_tokens: int) -> list[dict[str, Any]]:
    """Drop the oldest messages until the estimate fits; the history always starts with a user
    message (the last user message and what follows it are never dropped)."""
    sizes = [_message_chars(m) for m in messages]
    total, start, end = sum(sizes), 0, len(messages)

    def drop_first() -> None:
        nonlocal total, start
        total -= sizes[start]
        start += 1

    def later_user(index: int) -> bool:
        return any(m["role"] == "user" for m in messages[index + 1 : end])

    while end - start > 1 and total // 4 > budget_tokens and later_user(start):
        drop_first()
        while messages[start]["role"] != "user":
            drop_first()
    while start < end - 1 and messages[start]["role"] != "user" and later_user(start):
        drop_first()
    return messages[start:]


def history_for_request(messages: list[dict[str, Any]], summary_message_id: str | None) -> list[dict[str, Any]]:
    if summary_message_id:
        for index, message in enumerate(messages):
            if message["id"] == summary_message_id:
                first = dict(message, role="user")
                messages = [first, *messages[index + 1 :]]
                break
    return [{"role": m["role"], "parts": m["parts"], "id": m.get("id")} for m in messages if m["role"] != "system"]


class PromptTooLarge(UsageError):
    """A prompt that cannot fit the model's context window: refused before any request."""


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


class CoderAgent:
    """Runs user turns for sessions of one App."""

    def __init__(self, app: Any, *, name: str = "coder", tool_filter: Callable[[Any], bool] | None = None) -> None:
        self.app = app
        self.name = name
        self.tool_filter = tool_filter
        self._cancel_events: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._busy: set[str] = set()
        self._background: set[asyncio.Future] = set()
        self._planning: dict[str, set[str]] = {}  # sessions whose turn is in plan mode -> tools held back

    # -- tools ---------------------------------------------------------------------------------

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

    # -- control -------------------------------------------------------------------------------

    def is_busy(self, session_id: str | None = None) -> bool:
        return bool(self._busy) if session_id is None else session_id in self._busy

    def cancel(self, session_id: str) -> None:
        """Cancel the session's running turn; safe from any thread (bus handlers, signal handlers)."""
        entry = self._cancel_events.get(session_id)
        if entry is None:
            return
        loop, event = entry
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the turn's loop already closed: nothing left to cancel
                pass

    # -- a turn --------------------------------------------------------------------------------

    async def run(
        self,
        session_id: str,
        prompt: str,
        *,
        model_ref: str | None = None,
        on_event: Callable[[AgentEvent], None] | None = None,
        cancel_event: asyncio.Event | None = None,
        attachments: list[dict[str, Any]] | None = None,
        mentions: bool = True,
    ) -> TurnResult:
        """One user turn, and the follow-up turns a ``pando_turn_stopping`` hook (a Stop shell hook)
        asks for. *attachments*: parts sent with the prompt (images, see attachments.py);
        *mentions*: attach the files the prompt's ``@path`` mentions name (see mentions.py)."""
        if session_id in self._busy:
            return TurnResult(session_id, status="error", error=f"session {session_id} is busy")
        cancel_event = cancel_event or asyncio.Event()
        self._busy.add(session_id)  # busy from the first turn to the last follow-up
        try:
            result = await self._one_turn(session_id, prompt, model_ref, on_event, cancel_event, attachments, mentions)
            needs_title = result.needs_title
            if self.name == "coder":
                result = await self._follow_ups(session_id, result, model_ref, on_event, cancel_event)
        finally:
            self._busy.discard(session_id)
        if needs_title and result.status in ("success", "max_requests", "permission_denied"):
            # after the turns, so that the title request never races the turns' own requests
            title = asyncio.ensure_future(asyncio.wait_for(self._generate_title(session_id, *needs_title), timeout=15))
            if getattr(self.app.options, "startup_mode", "") == "interactive":
                self._background.add(title)  # the user gets the prompt back at once
                title.add_done_callback(self._background.discard)
                title.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved: no warning
            else:
                try:
                    await title
                except Exception:  # noqa: BLE001 - titles are best effort (includes time-outs)
                    log.debug("no title for %s", session_id)
        return result

    async def _follow_ups(self, session_id, result: TurnResult, model_ref, on_event, cancel_event) -> TurnResult:
        """While the turn ended well and a stopping hook gives a reason, another turn with the reason
        as its prompt (at most ``[agent] max_stop_continuations`` in a row). The result is the last
        turn's, with the spend and tool calls of all of them."""
        limit = int(self.app.config.section("agent").get("max_stop_continuations") or 0)
        continuation = 0
        while result.status == "success" and not result.plan and not cancel_event.is_set():
            reasons = await self.app.plugins.hooks.pando_turn_stopping.aflat(
                app=self.app, session_id=session_id, response=result.response, continuation=continuation
            )
            reason = "\n\n".join(str(r).strip() for r in reasons if str(r).strip())
            if not reason:
                break
            if continuation >= limit:
                log.info("a stop hook asked to go on after %d follow-up turns; stopped ([agent] max_stop_continuations)", limit)
                self._emit(on_event, AgentEvent("continuation", session_id, {"n": continuation, "reason": reason, "refused": True}))
                break
            continuation += 1
            self._emit(on_event, AgentEvent("continuation", session_id, {"n": continuation, "reason": reason}))
            follow = await self._one_turn(session_id, reason, model_ref, on_event, cancel_event, None, False)
            follow.tokens_in += result.tokens_in
            follow.tokens_out += result.tokens_out
            follow.cost += result.cost
            follow.requests += result.requests
            follow.tool_calls = [*result.tool_calls, *follow.tool_calls]
            follow.continuations = continuation
            result = follow
        return result

    async def _one_turn(self, session_id, prompt, model_ref, on_event, cancel_event, attachments, mentions) -> TurnResult:
        self._cancel_events[session_id] = (asyncio.get_running_loop(), cancel_event)
        result = TurnResult(session_id)
        sent_with = _TurnAttachments(list(attachments or []), mentions)
        turn = asyncio.ensure_future(
            self._turn(session_id, prompt, model_ref, on_event, result, cancel_event, sent_with)
        )
        watcher = asyncio.ensure_future(cancel_event.wait())
        try:
            done, _ = await asyncio.wait({turn, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if watcher in done and not turn.done():
                turn.cancel()
                try:
                    await turn
                except asyncio.CancelledError:
                    pass
            else:
                await turn
        except asyncio.CancelledError:
            # the caller was cancelled (Ctrl-C): let the turn store what it has
            turn.cancel()
            try:
                await asyncio.shield(turn)
            except asyncio.CancelledError:
                pass
            result.status = "cancelled"
        finally:
            watcher.cancel()
            self._planning.pop(session_id, None)
            self._cancel_events.pop(session_id, None)
        if self.name == "coder" and self.app.checkpoints.wants_after(session_id):
            await asyncio.to_thread(self.app.checkpoints.turn_finished, session_id)
        self._emit(on_event, AgentEvent("response", session_id, {"result": result}))
        await self.app.plugins.hooks.pando_turn_finished.acall(
            app=self.app,
            session_id=session_id,
            response=result.response,
            finish_reason=result.finish_reason,
            usage={"tokens_in": result.tokens_in, "tokens_out": result.tokens_out, "cost": result.cost},
        )
        return result

    def _emit(self, on_event: Callable[[AgentEvent], None] | None, event: AgentEvent) -> None:
        self.app.events.publish("agent." + event.type, event)
        if on_event is not None:
            try:
                on_event(event)
            except Exception:  # noqa: BLE001 - a UI callback must not break the turn
                log.exception("agent event callback failed")

    async def _turn(
        self,
        session_id: str,
        prompt: str,
        model_ref: str | None,
        on_event: Callable[[AgentEvent], None] | None,
        result: TurnResult,
        cancel_event: asyncio.Event,
        sent_with: _TurnAttachments | None = None,
    ) -> None:
        app = self.app
        plugins = app.plugins
        draft: _AssistantDraft | None = None
        try:
            model_ref = await plugins.hooks.pando_select_provider.acall(
                model=model_ref or app.model_ref or app.config.section("agent").get("model") or "",
                app=app,
                session_id=session_id,
            )
            resolved = resolve_model(app.config, model_ref or None)
            result.model = resolved.ref
            provider = app.provider_for(resolved)
            session = app.sessions.get(session_id)
            if not session["message_count"]:
                prefix = await plugins.hooks.pando_conversation_start.acall(
                    prefix=None, app=app, session_id=session_id, prompt=prompt
                )
                if prefix:
                    prompt = f"{prefix}\n\n{prompt}"
                if self._wants_title(session):
                    result.needs_title = (prompt, resolved)
            prompt = await plugins.hooks.pando_rewrite_prompt.acall(prompt=prompt, app=app, session_id=session_id)
            for extra in await plugins.hooks.pando_enrich_context.acall(app=app, session_id=session_id, prompt=prompt):
                prompt = f"{prompt}\n\n{extra}"
            agent_cfg = app.config.section("agent")
            sent_with = sent_with or _TurnAttachments()
            mentioned = await sent_with.mentioned(app, prompt)
            user_parts = [_part("text", text=prompt), *mentioned, *sent_with.given]
            check_model_takes_images(resolved, user_parts)
            check_message_fits(user_parts, int(app.config.section("runtime").get("max_message_bytes") or 16 << 20))
            window = int(agent_cfg.get("context_window") or resolved.info.context_window)
            prompt_chars = sum(len(str(p["data"].get("text", ""))) for p in user_parts)
            prompt_tokens = prompt_chars // 4
            if prompt_tokens > window - OUTPUT_RESERVE_TOKENS:
                raise PromptTooLarge(
                    f"the prompt is about {prompt_tokens:,} tokens ({prompt_chars:,} characters with the "
                    "attached files), more than "
                    f"{resolved.ref}'s context window of {window:,} tokens can take; nothing was sent"
                )
            user_message = app.messages.create(session_id, "user", user_parts)
            if mentioned:
                self._emit(on_event, AgentEvent("attached", session_id, {"files": attached_summary(mentioned)}))
            if self.name == "coder":
                app.checkpoints.turn_started(session_id, user_message["id"])

            tools, held_back = plan_mode.tools_for_turn(app, session_id, await self.atools())
            system, tools = await build_system_prompt(app, session_id, prompt, tools)
            if held_back is not None:
                self._planning[session_id] = held_back
                system = f"{system}\n\n{plan_mode.SYSTEM_NOTE}"
            tool_map = {t.name: t for t in tools}
            schemas = [tool_schema(t) for t in tools]  # the same for every request of the turn
            max_requests = int(agent_cfg.get("max_requests_per_turn") or 50)
            repeats = _RepeatedFailures(int(agent_cfg.get("max_repeated_failures") or 3))

            stored = None  # the history is loaded once, then kept in memory for the turn
            while True:
                if result.requests >= max_requests:
                    result.status = "max_requests"
                    result.finish_reason = "max_requests"
                    result.error = f"stopped after {max_requests} model requests in one turn ([agent] max_requests_per_turn)"
                    break
                if stored is None:
                    session = session or app.sessions.get(session_id)
                    stored = history_for_request(app.messages.list(session_id), session.get("summary_message_id"))
                history = trim_to_budget(sanitize_history(stored), int((window - OUTPUT_RESERVE_TOKENS) * 0.9))
                result.requests += 1
                self._emit(on_event, AgentEvent("request", session_id, {"n": result.requests}))
                draft = _AssistantDraft(app.messages, session_id, resolved.model_id)
                request = ChatRequest(
                    model=resolved.model_id,
                    system=system,
                    messages=history,
                    tools=schemas,
                    max_tokens=int(agent_cfg.get("max_tokens") or 4096),
                )
                usage = await self._stream(provider, request, draft, session_id, on_event)
                self._account(session_id, resolved, usage, result)
                finish_reason = draft.finish["reason"] if draft.finish else "end_turn"
                draft.persist(force=True)
                result.response = draft.text
                result.finish_reason = finish_reason
                calls = [draft.tool_calls[c] for c in draft.order]
                if not calls:
                    break
                tool_message, denied = await self._run_tools(calls, tool_map, session_id, draft, on_event, result, cancel_event)
                stuck = repeats.check(calls, tool_message["parts"])
                if stuck:
                    result.status = "stuck"
                    result.finish_reason = "repeated_failure"
                    result.error = stuck
                    draft.finish = {"reason": "repeated_failure", "time": now_ms(), "message": stuck}
                    draft.persist(force=True)
                    self._emit(on_event, AgentEvent("error", session_id, {"error": stuck}))
                    break
                if result.plan:  # plan mode: the plan is presented, the user answers next
                    result.finish_reason = "plan_presented"
                    break
                if denied:
                    result.status = "permission_denied"
                    result.finish_reason = "permission_denied"
                    draft.finish = {"reason": "permission_denied", "time": now_ms()}
                    draft.persist(force=True)
                    break
                stored.append({"role": "assistant", "parts": draft.parts(), "id": draft.message["id"]})
                stored.append({"role": "tool", "parts": tool_message["parts"], "id": tool_message["id"]})
                draft = None
                if agent_cfg.get("auto_compact", True):
                    threshold = float(agent_cfg.get("compact_threshold") or 0.85)
                    if await self._maybe_compact(session_id, resolved, window, threshold, usage, on_event):
                        stored = session = None  # continue from the summary
        except asyncio.CancelledError:
            result.status = "cancelled"
            result.finish_reason = "canceled"
            if draft is not None:
                self._finish_cancelled(draft, session_id)
                result.response = draft.text
        except (ProviderError, ToolError, PandoError) as exc:
            # the provider failed, a plugin refused (strict Lua hook, policy) or the store failed
            result.error_kind = getattr(exc, "kind", "")
            self._fail(result, draft, session_id, str(exc), on_event)
        except Exception as exc:  # noqa: BLE001 - a bug in a plugin hook must not crash the caller
            log.exception("turn failed")
            self._fail(result, draft, session_id, f"{type(exc).__name__}: {exc}", on_event)

    def _fail(self, result: TurnResult, draft: _AssistantDraft | None, session_id: str, message: str, on_event) -> None:
        result.status = "error"
        result.error = message
        result.finish_reason = "error"
        if draft is not None:
            draft.finish = {"reason": "error", "time": now_ms(), "message": message}
            try:
                draft.persist(force=True)
            except Exception:  # noqa: BLE001 - the store itself may be what failed
                log.debug("could not store the failed turn", exc_info=True)
        self._emit(on_event, AgentEvent("error", session_id, {"error": message}))

    def _finish_cancelled(self, draft: _AssistantDraft, session_id: str) -> None:
        draft.finish = {"reason": "canceled", "time": now_ms()}
        draft.persist(force=True)
        calls = [draft.tool_calls[c] for c in draft.order]
        if calls and not draft.tool_message_stored:
            self.app.messages.create(session_id, "tool", [_error_result(c, CANCELED_TOOL) for c in calls])

    async def _stream(self, provider, request, draft: _AssistantDraft, session_id, on_event) -> Usage:
        usage = Usage()
        async for event in provider.stream(request):
            kind = event.kind
            if kind == "text_delta":
                draft.text += event.text
                self._emit(on_event, AgentEvent("content_delta", session_id, {"delta": event.text}))
                draft.persist()
            elif kind == "reasoning_delta":
                if event.signature:
                    draft.reasoning_signature = event.signature
                draft.reasoning += event.text
                self._emit(on_event, AgentEvent("thinking_delta", session_id, {"delta": event.text}))
                draft.persist()
            elif kind == "tool_call_start":
                draft.add_call(event.tool_call_id, event.tool_name)
            elif kind == "tool_call_delta":
                call = draft.tool_calls.get(event.tool_call_id)
                if call is not None:
                    call["input"] += event.text
            elif kind == "tool_call_end":
                draft.add_call(event.tool_call_id, event.tool_name, event.arguments, finished=True)
                self._emit(on_event, AgentEvent("tool_call", session_id, {"tool_call": dict(draft.tool_calls[event.tool_call_id])}))
                draft.persist()
            elif kind == "complete":
                for call in event.tool_calls:
                    streamed = call["id"] in draft.tool_calls and draft.tool_calls[call["id"]]["finished"]
                    draft.add_call(call["id"], call["name"], call.get("input", ""), finished=True)
                    if not streamed:
                        self._emit(on_event, AgentEvent("tool_call", session_id, {"tool_call": dict(draft.tool_calls[call["id"]])}))
                reason = event.finish_reason or ("tool_use" if draft.tool_calls else "end_turn")
                draft.finish = {"reason": reason, "time": now_ms()}
                usage = event.usage or usage
        return usage

    def _account(self, session_id: str, resolved: ResolvedModel, usage: Usage, result: TurnResult) -> None:
        cost = request_cost(resolved.info, usage)
        prompt_tokens = usage.input_tokens + usage.cache_creation_tokens
        completion_tokens = usage.output_tokens + usage.cache_read_tokens
        result.tokens_in += prompt_tokens
        result.tokens_out += completion_tokens
        result.cost += cost
        self.app.store.sessions.add_usage(
            id=session_id, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost, model=resolved.ref
        )

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

    # -- compaction and titles -------------------------------------------------------------------

    def _wants_title(self, session: dict) -> bool:
        """Titles for top-level sessions of interactive use, or whenever a title model is configured."""
        if self.name != "coder" or session.get("parent_session_id") is not None:
            return False
        if self.app.config.section("agent").get("title_model"):
            return True
        return getattr(self.app.options, "startup_mode", "") == "interactive"

    async def _maybe_compact(self, session_id, resolved, window, threshold, usage, on_event) -> bool:
        """Compact when the last request's context fill nears the window; True when it did."""
        from .compaction import compact_session

        used = usage.input_tokens + usage.cache_creation_tokens + usage.output_tokens + usage.cache_read_tokens
        available = max(window - OUTPUT_RESERVE_TOKENS, 1)
        if used < available * threshold:
            return False
        self._emit(on_event, AgentEvent("compaction", session_id, {"state": "start", "used": used, "window": window}))
        summary = await compact_session(self.app, session_id, resolved)
        self._emit(on_event, AgentEvent("compaction", session_id, {"state": "done", "summarised": bool(summary)}))
        return bool(summary)

    async def _generate_title(self, session_id: str, prompt: str, resolved: ResolvedModel) -> None:
        from .title import generate_title

        try:
            await generate_title(self.app, session_id, prompt, resolved)
        except Exception:  # noqa: BLE001 - titles are best effort
            log.debug("title generation failed", exc_info=True)
