"""The coder agent: one user turn = stream from the model, run its tool calls, repeat until it stops.

Everything the model says is stored as it happens (throttled), so a cancelled or crashed turn
leaves a consistent, loadable session: the partial answer is kept with finish reason
``canceled`` and every tool call has a result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..clock import now_ms
from ..errors import PandoError, UsageError
from . import plan_mode
from .attachments import DEFAULT_MAX_IMAGE_BYTES, check_message_fits, check_model_takes_images
from .mentions import DEFAULT_MAX_BYTES as DEFAULT_MENTION_BYTES
from .mentions import mention_parts
from .models import ResolvedModel, resolve_model
from .prompt import build_system_prompt
from .providers.base import ChatRequest, ProviderError
from .request_history import history_for_request, sanitize_history, trim_to_budget
from .response_stream import ResponseStreamMixin, _AssistantDraft
from .tool_runs import ToolRunsMixin, _RepeatedFailures
from .tools.base import ToolError, tool_schema
from .turn_records import CANCELED_TOOL, AgentEvent, TurnResult, _error_result, _part

log = logging.getLogger("pando.agent")

OUTPUT_RESERVE_TOKENS = 2048 + 512


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


class PromptTooLarge(UsageError):
    """A prompt that cannot fit the model's context window: refused before any request."""



class CoderAgent(ToolRunsMixin, ResponseStreamMixin):
    """Runs user turns for sessions of one App."""

    def __init__(self, app: Any, *, name: str = "coder", tool_filter: Callable[[Any], bool] | None = None) -> None:
        self.app = app
        self.name = name
        self.tool_filter = tool_filter
        self._cancel_events: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._busy: set[str] = set()
        self._background: set[asyncio.Future] = set()
        self._planning: dict[str, set[str]] = {}  # sessions whose turn is in plan mode -> tools held back

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
