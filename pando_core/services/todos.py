"""The session's todo list: what the model keeps with ``todo_write`` and reads with ``todo_read``.

Stored whole with the session (``session_state`` key ``todos``, through the write path, so every
instance sees it); goal mode does not accept completion while an item is pending or in progress.
"""

from __future__ import annotations

from typing import Any

from ..errors import ValidationError

STATE_KEY = "todos"
STATUSES = ("pending", "in_progress", "completed")
MAX_ITEMS = 100
_MARKS = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


def validate(items: Any) -> list[dict[str, str]]:
    """The list as stored: items with a unique ``id``, a ``content`` and a ``status``; else ValidationError."""
    if not isinstance(items, list):
        raise ValidationError("todos must be a list of {id, content, status} items")
    if len(items) > MAX_ITEMS:
        raise ValidationError(f"at most {MAX_ITEMS} todo items")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValidationError(f"todo item {index} must be an object with id, content and status")
        item_id = str(item.get("id") or "").strip() or str(index)
        content = " ".join(str(item.get("content") or "").split())
        status = str(item.get("status") or "pending").strip().lower()
        if not content:
            raise ValidationError(f"todo item {item_id}: content is empty")
        if status not in STATUSES:
            raise ValidationError(f"todo item {item_id}: status must be one of {', '.join(STATUSES)}")
        if item_id in seen:
            raise ValidationError(f"todo item id {item_id} is used twice")
        seen.add(item_id)
        out.append({"id": item_id, "content": content, "status": status})
    return out


def load(app: Any, session_id: str) -> list[dict[str, str]]:
    value = app.store.session_state.get(session_id=session_id, key=STATE_KEY)
    return list(value) if isinstance(value, list) else []


def save(app: Any, session_id: str, items: list[dict[str, str]]) -> None:
    app.store.session_state.put(session_id=session_id, key=STATE_KEY, value=items)


def open_items(items: list[dict[str, str]]) -> list[dict[str, str]]:
    """Items still pending or in progress."""
    return [item for item in items if item["status"] != "completed"]


def render(items: list[dict[str, str]]) -> str:
    """The list as a markdown checklist ("[~]" marks the item in progress)."""
    if not items:
        return "(the todo list is empty)"
    return "\n".join(f"- {_MARKS[i['status']]} {i['content']}  (id {i['id']})" for i in items)
