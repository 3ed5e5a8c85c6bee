"""The conversation history sent with a model request: repaired (no unanswered tool calls), started
at the compaction summary, and trimmed to the context budget."""

from __future__ import annotations

from typing import Any

from .turn_records import INTERRUPTED_TOOL, _error_result


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

