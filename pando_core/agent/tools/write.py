"""The `write` tool, plus the file helpers shared by the file-changing tools (edit, patch, view).

Shared helpers live here (rather than in a separate module) so every file tool reads, diffs and
writes files the same way:

* `read_text` / `write_text_atomic` — UTF-8 with `surrogateescape` (undecodable bytes survive a
  read/modify/write round trip) and no newline translation (CRLF files stay CRLF).
* `read_for_change` — the checks before changing an existing file (not a directory, viewed and
  unchanged since) and its current text.
* `to_lf` / `restore_line_ends` — match on LF text, write CRLF files back with CRLF.
* `make_diff` / `diff_stats` / `short_diff` — unified diffs for permission prompts and metadata.
* `path_lock` — one asyncio lock per path (per event loop), used by write, edit and patch.
* `str_arg` / `int_arg` / `bool_arg` — lenient argument coercion (models send "10" for 10).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import PermissionRequest, ToolContext, ToolError, ToolResult
from pando_core.fsutil import atomic_write, write_temp_beside
from pando_core.textdiff import unified_diff

ENCODING = "utf-8"
ERRORS = "surrogateescape"
TEMP_SUFFIX = ".pando-tmp"
SHORT_DIFF_LINES = 60

# --------------------------------------------------------------------------- arguments


def str_arg(args: dict[str, Any], name: str, *, required: bool = False, default: str = "") -> str:
    """A string argument; `required` refuses a missing/None value (an empty string is still allowed)."""
    value = args.get(name)
    if value is None:
        if required:
            raise ToolError(f"{name} is required")
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise ToolError(f"{name} must be a string")


def int_arg(
    args: dict[str, Any],
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """An integer argument; missing/empty/non-numeric → default, then clamped to [minimum, maximum]."""
    value = args.get(name)
    result = default
    if isinstance(value, bool):
        result = default
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float):
        result = int(value)
    elif isinstance(value, str) and value.strip():
        try:
            result = int(float(value.strip()))
        except ValueError as exc:
            raise ToolError(f"{name} must be an integer, got {value!r}") from exc
    if minimum is not None and result < minimum:
        result = minimum
    if maximum is not None and result > maximum:
        result = maximum
    return result


def bool_arg(args: dict[str, Any], name: str, default: bool = False) -> bool:
    value = args.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "y", "on"}
    return default


def list_arg(args: dict[str, Any], name: str) -> list[str]:
    """A list of strings; a single string (or a comma-separated one) is accepted too."""
    value = args.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value if str(item).strip()]
    raise ToolError(f"{name} must be a list of strings")


# --------------------------------------------------------------------------- paths & text


def display_path(path: Path, ctx: ToolContext) -> str:
    """The path relative to the working directory when inside it, else absolute."""
    try:
        return path.relative_to(ctx.root()).as_posix() or "."
    except ValueError:
        return str(path)


def read_text(path: Path) -> str:
    with open(path, encoding=ENCODING, errors=ERRORS, newline="") as handle:
        return handle.read()


def check_for_change(ctx: ToolContext, path: Path, shown: str, *, missing: str = "") -> None:
    """The checks of :func:`read_for_change` alone, for a caller that reads the text elsewhere (an
    editor's buffer)."""
    if not path.exists():
        raise ToolError(missing or f"File not found: {shown}")
    if path.is_dir():
        raise ToolError(f"{shown} is a directory, not a file")
    reason = ctx.files.check_unchanged(path)
    if reason:
        raise ToolError(reason)


def read_for_change(ctx: ToolContext, path: Path, shown: str, *, missing: str = "") -> str:
    """The current text of an existing file a tool is about to change, after the checks every such
    tool makes: refuses a missing file (ToolError `missing`), a directory, and a file not viewed (or
    changed on disk) since the last view."""
    check_for_change(ctx, path, shown, missing=missing)
    try:
        return read_text(path)
    except OSError as exc:
        raise ToolError(f"Cannot read {shown}: {exc}") from exc


def uses_crlf(content: str) -> bool:
    """True when every line end of `content` is CRLF (and there is at least one)."""
    newlines = content.count("\n")
    return newlines > 0 and content.count("\r\n") == newlines


def to_lf(content: str, *, convert: bool = True) -> tuple[str, bool]:
    """(text with LF line ends, True) for CRLF content when `convert`; else (content, False).

    Matching works on the LF text; `restore_line_ends(result, crlf)` gives the file its CRLF back.
    """
    if convert and uses_crlf(content):
        return content.replace("\r\n", "\n"), True
    return content, False


def restore_line_ends(text: str, crlf: bool) -> str:
    return text.replace("\n", "\r\n") if crlf else text


def write_temp_for(path: Path, content: str) -> str:
    """Write `content` to a temp file next to `path` (same filesystem, `path`'s mode) and return its name."""
    return write_temp_beside(path, content.encode(ENCODING, ERRORS), suffix=TEMP_SUFFIX)


def write_text_atomic(path: Path, content: str) -> None:
    """Create parent directories, write to a temp file and rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, content.encode(ENCODING, ERRORS), suffix=TEMP_SUFFIX)


# --------------------------------------------------------------------------- diffs


def make_diff(before: str | None, after: str | None, name: str) -> str:
    """A unified diff between two texts (None = file absent)."""
    fromfile = "/dev/null" if before is None else f"a/{name}"
    tofile = "/dev/null" if after is None else f"b/{name}"
    return unified_diff(before or "", after or "", fromfile, tofile)


# a unified-diff hunk header: old start, old count, new start, new count, trailing text
HUNK_HEADER = re.compile(r"^@@+ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@+(.*)$")


def diff_stats(diff: str) -> tuple[int, int]:
    """(additions, removals) of a unified diff (hunk line counts tell headers from "---" content lines)."""
    additions = removals = 0
    old_left = new_left = 0
    for line in diff.splitlines():
        if old_left <= 0 and new_left <= 0:
            header = HUNK_HEADER.match(line)
            if header:
                old_left = int(header.group(2)) if header.group(2) is not None else 1
                new_left = int(header.group(4)) if header.group(4) is not None else 1
            continue
        if line.startswith("\\"):
            continue
        if line.startswith("+"):
            additions += 1
            new_left -= 1
        elif line.startswith("-"):
            removals += 1
            old_left -= 1
        else:
            old_left -= 1
            new_left -= 1
    return additions, removals


def short_diff(diff: str, max_lines: int = SHORT_DIFF_LINES) -> str:
    lines = diff.splitlines()
    if len(lines) <= max_lines:
        return diff.rstrip("\n")
    return "\n".join(lines[:max_lines]) + f"\n... ({len(lines) - max_lines} more diff lines)"


# --------------------------------------------------------------------------- locks

_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def path_lock(path: Path) -> asyncio.Lock:
    """The asyncio lock serialising changes to `path` (shared by write, edit and patch)."""
    loop = asyncio.get_running_loop()
    locks = _LOCKS.setdefault(loop, {})
    key = str(path)
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


def record_history(ctx: ToolContext, path: Path, before: str | None, after: str) -> None:
    if ctx.history is not None:
        ctx.history.record_change(ctx.session_id, str(path), before, after)


async def write_with_permission(
    ctx: ToolContext,
    tool_name: str,
    path: Path,
    shown: str,
    before: str | None,
    after: str,
    *,
    verb: str,
    failure: str = "write",
) -> dict[str, Any]:
    """Ask to write `after` to `path` (the prompt reads "<verb> <shown>" plus the diff), write it
    atomically, count the write as a read and record the change. Returns the result metadata:
    diff, additions, removals and file_path."""
    diff = make_diff(before, after, shown)
    additions, removals = diff_stats(diff)
    await ctx.ask(
        PermissionRequest(
            tool_name=tool_name,
            action="write",
            description=f"{verb} {shown}\n{short_diff(diff)}",
            path=str(path),
            params={"file_path": str(path), "diff": diff},
        )
    )
    try:
        write_text_atomic(path, after)
    except OSError as exc:
        raise ToolError(f"Failed to {failure} {shown}: {exc}") from exc
    ctx.files.record(path)
    record_history(ctx, path, before, after)
    return {"diff": diff, "additions": additions, "removals": removals, "file_path": str(path)}


# --------------------------------------------------------------------------- the tool

WRITE_DESCRIPTION = """Create a new file or overwrite an existing file with the given content.

Usage notes:
- file_path is relative to the working directory (or absolute inside it).
- Overwriting an existing file requires that you have read it with the `view` tool first and that it
  has not changed on disk since; otherwise the write is refused. View it again, then retry.
- Parent directories are created as needed.
- Writing content identical to the current file is refused (nothing to do).
- Prefer `edit` (or `patch`) for changing part of an existing file; use `write` for new files or
  complete rewrites. Always send the COMPLETE file content — nothing is merged.
- The user may be asked to approve the change; a refusal ends the turn."""


class WriteTool:
    name = "write"
    read_only = False
    asks_permission = True  # asks with the diff, before changing anything
    description = WRITE_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "Path of the file to write"},
            "content": {"type": "string", "description": "The complete new content of the file"},
        },
        "required": ["file_path", "content"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw_path = str_arg(args, "file_path", required=True)
        content = str_arg(args, "content", required=True)
        path = ctx.resolve_path(raw_path)
        shown = display_path(path, ctx)
        async with path_lock(path):
            before = read_for_change(ctx, path, shown) if path.exists() else None
            if before == content:
                raise ToolError(f"{shown} already contains exactly this content; nothing to write")
            verb = "Create" if before is None else "Overwrite"
            metadata = await write_with_permission(ctx, self.name, path, shown, before, content, verb=verb)
        action = "created" if before is None else "written"
        return ToolResult(
            content=f"File successfully {action}: {shown} (+{metadata['additions']} -{metadata['removals']})",
            metadata=metadata,
        )
