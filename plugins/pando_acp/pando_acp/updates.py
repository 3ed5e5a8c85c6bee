"""What pando's agent events and stored messages look like as ACP session updates.

Pure functions from pando's dicts to ``acp.schema`` models: a tool call's kind, title, locations and
diff; the stop reason of a finished turn; the replay of a stored session. Nothing here talks to
the client, so each mapping is testable on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import acp
from acp.schema import ToolCallLocation

# pando tool -> ACP tool kind (what icon and grouping the editor shows)
TOOL_KINDS = {
    "view": "read",
    "ls": "read",
    "result_page": "read",
    "glob": "search",
    "grep": "search",
    "write": "edit",
    "edit": "edit",
    "patch": "edit",
    "bash": "execute",
    "fetch": "fetch",
    "agent": "think",
}

# pando finish reasons (providers' neutral spelling) -> ACP stop reasons
STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "end_turn",
    "stop": "end_turn",
    "max_tokens": "max_tokens",
    "length": "max_tokens",
    "refusal": "refusal",
    "content_filter": "refusal",
    "max_requests": "max_turn_requests",
    "canceled": "cancelled",
    "cancelled": "cancelled",
}


def stop_reason(status: str, finish_reason: str) -> str:
    """The ACP stop reason of a turn that ended with pando's ``status`` and ``finish_reason``."""
    if status == "cancelled":
        return "cancelled"
    if status in ("max_requests", "stuck"):  # stuck: the same failing tool call again and again
        return "max_turn_requests"
    return STOP_REASONS.get(finish_reason, "end_turn")


def parse_arguments(raw: Any) -> dict[str, Any]:
    """A tool call's input as a dict (the model's JSON text; {} when it is not an object)."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def absolute(workdir: Path, raw: str) -> str:
    """ACP wants absolute paths; the model usually gives them relative to the working directory."""
    path = Path(raw).expanduser()
    return str(path if path.is_absolute() else (workdir / path))


def _path_argument(args: dict[str, Any]) -> str:
    return str(args.get("file_path") or args.get("path") or "")


def tool_title(name: str, args: dict[str, Any]) -> str:
    """One line the editor shows for the call: "Edit src/app.py", "Run `pytest -x`"."""
    path = _path_argument(args)
    if name == "bash" and args.get("command"):
        command = " ".join(str(args["command"]).split())
        return f"Run `{command[:80]}`"
    if name in ("grep", "glob") and args.get("pattern"):
        where = f" in {path}" if path else ""
        return f"{'Search' if name == 'grep' else 'Find'} {args['pattern']!s}{where}"
    if name == "fetch" and args.get("url"):
        return f"Fetch {args['url']}"
    if name == "agent":
        return "Sub-agent: " + " ".join(str(args.get("prompt", "")).split())[:60]
    verbs = {"view": "Read", "ls": "List", "write": "Write", "edit": "Edit", "patch": "Patch"}
    if name in verbs:
        return f"{verbs[name]} {path}".rstrip() if path else verbs[name]
    return name


def tool_locations(workdir: Path, args: dict[str, Any]) -> list[ToolCallLocation] | None:
    path = _path_argument(args)
    if not path:
        return None
    line = args.get("offset")
    location = ToolCallLocation(path=absolute(workdir, path))
    if isinstance(line, int) and line > 0:
        location.line = line + 1
    return [location]


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def tool_diff(workdir: Path, name: str, args: dict[str, Any], old_text: str | None = None) -> list[Any] | None:
    """The ACP diff content of an edit or a write, from the call's arguments.

    A write shows the whole file (old text: ``old_text`` when given -- the editor's buffer -- else
    the file on disk); an edit shows the replaced fragment.
    """
    path = _path_argument(args)
    if not path:
        return None
    full = absolute(workdir, path)
    if name == "write" and isinstance(args.get("content"), str):
        before = old_text if old_text is not None else _read_text(full)
        return [acp.tool_diff_content(full, args["content"], before or None)]
    if name == "edit" and isinstance(args.get("new_string"), str):
        old = args.get("old_string")
        return [acp.tool_diff_content(full, args["new_string"], old if isinstance(old, str) and old else None)]
    return None


def tool_call_start(workdir: Path, call: dict[str, Any], old_text: str | None = None) -> Any:
    """The ``tool_call`` update announcing a call the model made (status pending); ``old_text`` is
    a write's current text when the caller knows it better than the disk ("" for unknown)."""
    args = parse_arguments(call.get("input"))
    name = call.get("name", "")
    return acp.start_tool_call(
        call["id"],
        tool_title(name, args),
        kind=TOOL_KINDS.get(name, "other"),
        status="pending",
        content=tool_diff(workdir, name, args, old_text),
        locations=tool_locations(workdir, args),
        raw_input=args,
    )


def tool_call_running(call_id: str) -> Any:
    return acp.update_tool_call(call_id, status="in_progress")


def tool_call_finished(call_id: str, result: dict[str, Any], diff: list[Any] | None = None) -> Any:
    """The ``tool_call_update`` with the result: completed or failed, the output as text, and the
    ``diff`` announced with the call again when it succeeded (editors show it as the change made)."""
    failed = bool(result.get("is_error"))
    content: list[Any] = list(diff or []) if not failed else []
    text = str(result.get("content") or "")
    if text:
        content.append(acp.tool_content(acp.text_block(text)))
    return acp.update_tool_call(
        call_id,
        status="failed" if failed else "completed",
        content=content or None,
        raw_output={"content": text, "is_error": failed},
    )


def replay(workdir: Path, messages: list[dict[str, Any]]) -> list[Any]:
    """The updates that show a stored session again, in order (``session/load``). A write's diff
    is shown without its old text, which is no longer known."""
    updates: list[Any] = []
    diffs: dict[str, list[Any] | None] = {}
    for message in messages:
        role = message.get("role")
        for part in message.get("parts", []):
            kind, data = part.get("type"), part.get("data", {})
            if role == "user" and kind == "text" and data.get("text"):
                updates.append(acp.update_user_message_text(data["text"]))
            elif role == "user" and kind == "image" and data.get("data"):
                mime = data.get("mime_type") or data.get("mimeType") or "image/png"
                updates.append(acp.update_user_message(acp.image_block(data["data"], mime)))
            elif role == "assistant" and kind == "reasoning" and data.get("thinking"):
                updates.append(acp.update_agent_thought_text(data["thinking"]))
            elif role == "assistant" and kind == "text" and data.get("text"):
                updates.append(acp.update_agent_message_text(data["text"]))
            elif role == "assistant" and kind == "tool_call":
                start = tool_call_start(workdir, data, old_text="")
                diffs[data["id"]] = start.content
                updates.append(start)
            elif role == "tool" and kind == "tool_result":
                call_id = data.get("tool_call_id", "")
                updates.append(tool_call_finished(call_id, data, diffs.get(call_id)))
    return updates
