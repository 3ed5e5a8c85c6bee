"""One model response: streamed into the assistant draft (stored as it grows, throttled), and its
token usage and cost added to the session."""

from __future__ import annotations

import time
from typing import Any

from ..clock import now_ms
from .models import ResolvedModel, request_cost
from .providers.base import Usage
from .turn_records import AgentEvent, TurnResult, _part

PERSIST_INTERVAL_S = 0.25


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


class ResponseStreamMixin:
    """_stream() and _account() of CoderAgent."""

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

