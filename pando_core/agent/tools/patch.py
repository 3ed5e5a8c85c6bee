"""The `patch` tool: apply a multi-file patch atomically.

Two input formats are accepted:

* the "apply_patch" format::

      *** Begin Patch
      *** Update File: src/app.py
      @@ def main():
       context line
      -removed line
      +added line
      *** Add File: docs/new.md
      +file content
      *** Delete File: old.txt
      *** End Patch

  (`*** Move to: new/path` may follow an Update File header; `*** End of File` anchors a hunk at the end);

* a standard (git) unified diff with `--- a/x` / `+++ b/x` / `@@ -l,n +l,n @@` hunks, including new
  files (`--- /dev/null`) and deletions (`+++ /dev/null`).

Everything is validated first (files read and unchanged, added files absent, every hunk applies with
little fuzz), one permission is asked per file, then all files are written through temp files and
renames; if anything fails nothing is left changed.

Parsing is in ``patch_parsing``, applying hunks in ``patch_apply``, the all-or-nothing write in
``patch_commit``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import PermissionRequest, ToolContext, ToolError, ToolResult
from pando_core.agent.tools.patch_apply import apply_hunks
from pando_core.agent.tools.patch_commit import _commit
from pando_core.agent.tools.patch_parsing import FileOp, parse_patch
from pando_core.agent.tools.write import (
    diff_stats,
    display_path,
    make_diff,
    path_lock,
    read_for_change,
    read_text,
    record_history,
    short_diff,
    str_arg,
)

PATCH_DESCRIPTION = """Apply a patch that adds, updates and/or deletes one or more files in one step.

Preferred format:
*** Begin Patch
*** Update File: path/to/file.py
@@ def some_function():
     unchanged context line
-    line to remove
+    line to add
     unchanged context line
*** Add File: path/to/new_file.txt
+first line of the new file
+second line
*** Delete File: path/to/obsolete.txt
*** End Patch

Rules:
- In Update File sections every line starts with ' ' (context), '-' (remove) or '+' (add). Give about 3
  lines of unchanged context around each change. An optional `@@ <line>` header names a line (such as a
  function or class signature) that appears before the change, to anchor it when the context is not unique.
  Hunks must appear in file order. `*** Move to: new/path` right after the Update File line renames it.
- In Add File sections every line starts with '+'.
- A standard unified diff (`--- a/file`, `+++ b/file`, `@@ -1,4 +1,5 @@` hunks; /dev/null for created
  or deleted files) is accepted too.
- Files to update or delete must have been read with `view` first and not changed since; files to add
  must not exist yet. Context must match the file (only tiny whitespace differences are tolerated).
- The patch is all-or-nothing: if any part fails to apply, no file is changed and the error says why.
- The user may be asked to approve each file change."""


@dataclass
class PlannedChange:
    op: FileOp
    path: Path
    target: Path  # where the new content goes (== path unless moved)
    before: str | None
    after: str | None  # None for delete
    diff: str = ""

    @property
    def action(self) -> str:
        return {"add": "create", "update": "update", "delete": "delete"}[self.op.kind]


# --------------------------------------------------------------------------- the tool


class PatchTool:
    name = "patch"
    read_only = False
    asks_permission = True  # asks per file, with its diff, before changing anything
    description = PATCH_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "patch_text": {
                "type": "string",
                "description": "The full patch text ('*** Begin Patch' format or a unified diff)",
            }
        },
        "required": ["patch_text"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        ops = patch_operations(args)
        async with contextlib.AsyncExitStack() as stack:
            for lock_path in locked_paths(ops, ctx):
                await stack.enter_async_context(path_lock(lock_path))
            changes = [plan_change(op, ctx) for op in ops]
            for change in changes:
                await ctx.ask(change_permission(self.name, change, ctx))
            for change in changes:
                if change.before is not None and _current(change.path) != change.before:
                    raise ToolError(
                        f"{display_path(change.path, ctx)} changed while waiting for permission; "
                        "no files were changed. View it again and redo the patch."
                    )
            _commit(changes)
            record_changes(changes, ctx)
        return patch_result(changes, ctx)


# the pieces of the tool a front-end that keeps files elsewhere (an editor's buffers) reuses


def patch_operations(args: dict[str, Any]) -> list[FileOp]:
    text = str_arg(args, "patch_text", required=True)
    if not text.strip():
        raise ToolError("patch_text is empty")
    return parse_patch(text)


def locked_paths(ops: list[FileOp], ctx: ToolContext) -> list[Path]:
    """Every path the patch touches, in lock order; a ToolError when one is named twice."""
    paths: list[Path] = []
    for op in ops:
        paths.append(ctx.resolve_path(op.path))
        if op.move_to:
            paths.append(ctx.resolve_path(op.move_to))
    if len({str(p) for p in paths}) != len(paths):
        raise ToolError("The patch names the same file more than once; combine those changes")
    return sorted(paths, key=str)


def plan_change(op: FileOp, ctx: ToolContext, read: Callable[[Path, str, str], str] | None = None) -> PlannedChange:
    """What ``op`` changes, checked; ``read(path, shown, missing)`` gives a file's current text (by
    default :func:`read_for_change`: the disk, after the checks)."""
    path = ctx.resolve_path(op.path)
    shown = display_path(path, ctx)
    if op.kind == "add":
        if path.exists():
            raise ToolError(f"Cannot add {shown}: it already exists (use an Update File section)")
        after = op.content or ""
        return PlannedChange(op, path, path, None, after, make_diff(None, after, shown))
    missing = f"Cannot {op.kind} {shown}: file not found"
    before = read(path, shown, missing) if read else read_for_change(ctx, path, shown, missing=missing)
    if op.kind == "delete":
        return PlannedChange(op, path, path, before, None, make_diff(before, None, shown))
    target = ctx.resolve_path(op.move_to) if op.move_to else path
    if target != path and target.exists():
        raise ToolError(f"Cannot move {shown} to {display_path(target, ctx)}: the destination exists")
    after = apply_hunks(before, op.hunks, shown) if op.hunks else before
    if after == before and target == path:
        raise ToolError(f"The patch does not change {shown}")
    return PlannedChange(op, path, target, before, after, make_diff(before, after, shown))


def change_permission(tool_name: str, change: PlannedChange, ctx: ToolContext) -> PermissionRequest:
    shown = display_path(change.path, ctx)
    label = shown
    if change.target != change.path:
        label = f"{shown} -> {display_path(change.target, ctx)}"
    return PermissionRequest(
        tool_name=tool_name,
        action=change.action,
        description=f"{change.action.capitalize()} {label}\n{short_diff(change.diff)}",
        path=str(change.target),
        params={"file_path": str(change.target), "diff": change.diff},
    )


def record_changes(changes: list[PlannedChange], ctx: ToolContext) -> None:
    """After the changes are written: the files count as read, the history has every change."""
    for change in changes:
        if change.after is not None:
            ctx.files.record(change.target)
        if change.op.kind == "delete":
            record_history(ctx, change.path, change.before, "")
        elif change.target != change.path:
            record_history(ctx, change.path, change.before, "")
            record_history(ctx, change.target, None, change.after or "")
        else:
            record_history(ctx, change.target, change.before, change.after or "")


def patch_result(changes: list[PlannedChange], ctx: ToolContext) -> ToolResult:
    combined = "".join(change.diff for change in changes)
    additions, removals = diff_stats(combined)
    letters = {"add": "A", "update": "M", "delete": "D"}
    lines = []
    files = []
    for change in changes:
        shown = display_path(change.path, ctx)
        if change.target != change.path:
            lines.append(f"R {shown} -> {display_path(change.target, ctx)}")
        else:
            lines.append(f"{letters[change.op.kind]} {shown}")
        files.append({"path": str(change.target), "action": change.action})
    summary = f"Patch applied: {len(changes)} file(s) changed (+{additions} -{removals})\n" + "\n".join(lines)
    return ToolResult(
        content=summary,
        metadata={"diff": combined, "additions": additions, "removals": removals, "files": files},
    )


def _current(path: Path) -> str | None:
    try:
        return read_text(path)
    except OSError:
        return None
