"""Summarise a long session into one hand-over message so the conversation can continue."""

from __future__ import annotations

import logging
from typing import Any

from .models import ResolvedModel, request_cost, resolve_model
from .providers.base import ChatRequest, ProviderError, attachment_text

log = logging.getLogger("pando.agent")

SUMMARY_INSTRUCTIONS = """You are summarising a coding session so that another coding agent can continue it.
Write a hand-over summary with these sections:
Objective: what the user wants.
Current state: what was done, files touched (with paths), commands run and their outcome.
Important context: decisions, constraints, identifiers, errors seen.
Remaining work: what is left, and anything interrupted.
Be concise; keep exact paths, names and identifiers."""

SUMMARY_PREFIX = "Summary of the earlier conversation (it continues below):\n\n"


def transcript(messages: list[dict[str, Any]]) -> str:
    lines = []
    for message in messages:
        lines.append(f"## {message['role']}" + (f" ({message['model']})" if message.get("model") else ""))
        for part in message.get("parts", []):
            data, kind = part.get("data", {}), part.get("type")
            if kind == "text":
                lines.append(data.get("text", ""))
            elif kind == "reasoning":
                lines.append(f"[thinking] {data.get('thinking', '')}")
            elif kind == "tool_call":
                lines.append(f"[tool call {data.get('name')}] {data.get('input', '')}")
            elif kind == "tool_result":
                flag = " (error)" if data.get("is_error") else ""
                lines.append(f"[tool result {data.get('name')}{flag}] {data.get('content', '')}")
            elif kind == "file":  # an @mention: the summary needs to know the file was shown
                lines.append(attachment_text(data))
            elif kind == "image":
                lines.append(f"[image {data.get('path', '')}]")
            elif kind == "finish":
                lines.append(f"[finish: {data.get('reason')}]")
    return "\n".join(lines)


def _tail(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[-max_chars:]
    newline = cut.find("\n")
    return cut[newline + 1 :] if 0 <= newline < 200 else cut


async def compact_session(app: Any, session_id: str, resolved: ResolvedModel) -> str:
    """Store a summary message and point the session at it; returns the summary ('' when skipped)."""
    messages = app.messages.list(session_id)
    if len(messages) < 4:
        return ""
    agent_cfg = app.config.section("agent")
    summarizer = resolved
    if agent_cfg.get("summarizer_model"):
        summarizer = resolve_model(app.config, agent_cfg["summarizer_model"])
    budget_chars = max(summarizer.info.context_window - 2560, 1024) * 4
    dump = _tail(transcript(messages), budget_chars)
    request = ChatRequest(
        model=summarizer.model_id,
        system=SUMMARY_INSTRUCTIONS,
        messages=[{"role": "user", "parts": [{"type": "text", "data": {"text": dump}}]}],
        tools=[],
        max_tokens=2048,
    )
    text, usage = "", None
    for candidate in (summarizer, resolved) if summarizer is not resolved else (resolved,):
        try:
            provider = app.provider_for(candidate)
            request.model = candidate.model_id
            text, usage = "", None
            async for event in provider.stream(request):
                if event.kind == "text_delta":
                    text += event.text
                elif event.kind == "complete":
                    usage = event.usage
            if text.strip():
                summarizer = candidate
                break
        except ProviderError as exc:
            log.warning("compaction with %s failed: %s", candidate.ref, exc)
    if not text.strip():
        return ""
    last = messages[-1]
    notice = ""
    if any(p["type"] == "tool_call" for p in last.get("parts", [])):
        notice = "(The previous request was interrupted while tools were running.)\n\n"
    message = app.messages.create(
        session_id, "assistant", [{"type": "text", "data": {"text": notice + SUMMARY_PREFIX + text.strip()}}], model=summarizer.model_id
    )
    cost = request_cost(summarizer.info, usage) if usage else 0.0
    app.store.sessions.update(
        id=session_id,
        summary_message_id=message["id"],
        prompt_tokens=0,
        completion_tokens=usage.output_tokens if usage else 0,
    )
    if cost:
        app.store.sessions.add_cost(id=session_id, cost=cost)
    return text
