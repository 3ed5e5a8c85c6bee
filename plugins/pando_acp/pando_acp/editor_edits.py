"""``edit`` and ``patch`` through the editor, so the change lands in its buffer, not under it.

When the ACP client offers ``fs.writeTextFile`` these take the place of pando's own (as ``write``
does, see editor_files.py): the file's current text comes from the editor when it also offers
``fs.readTextFile`` (its buffer, unsaved changes included; else the disk), the change is worked out
by pando's own edit and patch logic, asked about with its diff, and the new text is handed to the
editor with ``fs/write_text_file``. Outside an ACP turn, for a client without the capability, and
for a patch that deletes or moves files (ACP has no call for either), pando's built-in tool runs
unchanged: the disk is changed and the editor reloads it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import PermissionRequest, ToolContext, ToolError, ToolResult
from pando_core.agent.tools.edit import EditTool, refuse_existing, replace_in_text
from pando_core.agent.tools.patch import (
    PatchTool,
    change_permission,
    locked_paths,
    patch_operations,
    patch_result,
    plan_change,
    record_changes,
)
from pando_core.agent.tools.write import (
    bool_arg,
    check_for_change,
    diff_stats,
    display_path,
    make_diff,
    path_lock,
    read_text,
    record_history,
    short_diff,
    str_arg,
)

from .editor_files import editor_turn


async def current_text(turn: Any, path: Path) -> str:
    """The text of ``path`` as the editor has it when it can read for pando, else as on disk."""
    fs = turn.capabilities.fs
    if getattr(fs, "read_text_file", False):
        response = await turn.client.read_text_file(turn.session.id, str(path))
        return response.content
    return read_text(path)


async def write_through(turn: Any, path: Path, shown: str, content: str) -> None:
    try:
        await turn.client.write_text_file(turn.session.id, str(path), content)
    except Exception as exc:  # noqa: BLE001 - the editor's refusal, in one line, to the model
        raise ToolError(f"The editor did not write {shown}: {exc}") from exc


def write_permission(tool_name: str, path: Path, shown: str, before: str | None, after: str, verb: str) -> tuple[PermissionRequest, str]:
    diff = make_diff(before, after, shown)
    request = PermissionRequest(
        tool_name=tool_name,
        action="write",
        description=f"{verb} {shown}\n{short_diff(diff)}",
        path=str(path),
        params={"file_path": str(path), "diff": diff},
    )
    return request, diff


class EditorEditTool:
    """pando's ``edit``, applied to the editor's buffer when it can write for pando."""

    name = "edit"
    read_only = False
    asks_permission = True  # with the diff against the buffer

    def __init__(self) -> None:
        self.builtin = EditTool()
        self.description = self.builtin.description
        self.parameters = self.builtin.parameters

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        turn = editor_turn("write_text_file")
        if turn is None:
            return await self.builtin.run(args, ctx)
        path = ctx.resolve_path(str_arg(args, "file_path", required=True))
        old, new = str_arg(args, "old_string"), str_arg(args, "new_string")
        shown = display_path(path, ctx)
        async with path_lock(path):
            if old == "":
                refuse_existing(path, shown)
                before, after, change = None, new, None
            else:
                check_for_change(ctx, path, shown, missing=f"File not found: {shown} (pass an empty old_string to create a new file)")
                try:
                    before = await current_text(turn, path)
                except Exception:  # noqa: BLE001 - the editor cannot show it (binary): pando edits it itself
                    return await self.builtin.run(args, ctx)
                change = replace_in_text(before, old, new, bool_arg(args, "replace_all"), shown)
                after = change.after
            request, diff = write_permission(self.name, path, shown, before, after, "Edit" if before is not None else "Create")
            await ctx.ask(request)
            await write_through(turn, path, shown, after)
            ctx.files.record(path)
            record_history(ctx, path, before, after)
        additions, removals = diff_stats(diff)
        metadata = {"diff": diff, "additions": additions, "removals": removals, "file_path": str(path), "editor": True}
        if change is None:
            return ToolResult(content=f"Created {shown} (+{additions} lines)", metadata=metadata)
        return change.result(shown, metadata)


class EditorPatchTool:
    """pando's ``patch``, its added and updated files written through the editor when it can."""

    name = "patch"
    read_only = False
    asks_permission = True  # per file, with its diff against the buffer

    def __init__(self) -> None:
        self.builtin = PatchTool()
        self.description = self.builtin.description
        self.parameters = self.builtin.parameters

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        turn = editor_turn("write_text_file")
        ops = patch_operations(args)
        if turn is None or any(op.kind == "delete" or op.move_to for op in ops):
            return await self.builtin.run(args, ctx)
        async with contextlib.AsyncExitStack() as stack:
            for lock_path in locked_paths(ops, ctx):
                await stack.enter_async_context(path_lock(lock_path))
            texts: dict[Path, str] = {}
            for op in ops:
                if op.kind == "update":
                    path = ctx.resolve_path(op.path)
                    check_for_change(ctx, path, display_path(path, ctx), missing=f"Cannot update {display_path(path, ctx)}: file not found")
                    try:
                        texts[path] = await current_text(turn, path)
                    except Exception:  # noqa: BLE001 - the editor cannot show it: pando patches the disk
                        return await self.builtin.run(args, ctx)
            changes = [plan_change(op, ctx, read=lambda path, shown, missing: texts[path]) for op in ops]
            for change in changes:
                await ctx.ask(change_permission(self.name, change, ctx))
            for change in changes:
                if change.before is not None and await current_text(turn, change.path) != change.before:
                    raise ToolError(
                        f"{display_path(change.path, ctx)} changed while waiting for permission; "
                        "no files were changed. View it again and redo the patch."
                    )
            await self._write_all(turn, changes, ctx)
            record_changes(changes, ctx)
        result = patch_result(changes, ctx)
        result.metadata["editor"] = True
        return result

    async def _write_all(self, turn: Any, changes: list[Any], ctx: ToolContext) -> None:
        """Every change through the editor; when one is refused, the ones written are undone."""
        written: list[Any] = []
        for change in changes:
            try:
                await write_through(turn, change.target, display_path(change.target, ctx), change.after or "")
            except ToolError as exc:
                for done in reversed(written):
                    with contextlib.suppress(Exception):
                        if done.before is not None:
                            await turn.client.write_text_file(turn.session.id, str(done.target), done.before)
                        else:
                            done.target.unlink(missing_ok=True)
                raise ToolError(f"{exc}; no files were changed") from exc
            written.append(change)
