"""``view`` and ``write`` through the editor, so the agent sees and changes unsaved buffers.

When the ACP client offers ``fs.readTextFile`` / ``fs.writeTextFile``, these two tools take the
place of pando's own (the App's tool filter drops the built-in ones): a read asks the editor for
the file's text (its buffer when the file is open, else the disk), a write hands the new text to
the editor, which applies it to the buffer. Outside an ACP turn, for a client without the
capability, for a path that is not a text file, or when the editor refuses, they run pando's
built-in tool unchanged. ``edit`` and ``patch`` go through the editor the same way (editor_edits.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import PermissionRequest, ToolContext, ToolError, ToolResult
from pando_core.agent.tools.view import DEFAULT_LIMIT, MAX_LINE_CHARS, ViewTool
from pando_core.agent.tools.write import (
    WriteTool,
    diff_stats,
    display_path,
    int_arg,
    make_diff,
    record_history,
    short_diff,
    str_arg,
)

from .turn import CURRENT_TURN


def editor_turn(capability: str):  # noqa: ANN201
    """The running ACP turn when its editor offers ``fs.<capability>``, else None."""
    turn = CURRENT_TURN.get()
    if turn is None or turn.client_gone:
        return None
    fs = turn.capabilities.fs
    return turn if fs is not None and getattr(fs, capability, False) else None


def number_lines(text: str, offset: int, limit: int) -> tuple[str, int, int]:
    """``text`` shown the way pando's view tool shows a file: ``(output, total lines, last line)``."""
    lines = text.splitlines()
    shown = []
    for index in range(offset, min(len(lines), offset + limit)):
        line = lines[index]
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + "..."
        shown.append(f"{index + 1:6d}|{line}")
    return "\n".join(shown), len(lines), offset + len(shown)


class EditorViewTool:
    """pando's ``view``, reading through the editor when it can."""

    name = "view"
    read_only = True

    def __init__(self) -> None:
        self.builtin = ViewTool()
        self.description = self.builtin.description
        self.parameters = self.builtin.parameters

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        turn = editor_turn("read_text_file")
        raw = str_arg(args, "file_path", required=True)
        path = ctx.resolve_path(raw)
        if turn is None or not path.is_file():
            return await self.builtin.run(args, ctx)
        try:
            response = await turn.client.read_text_file(turn.session.id, str(path))
        except Exception:  # noqa: BLE001 - a binary file, an editor error: pando reads it itself
            return await self.builtin.run(args, ctx)
        offset = int_arg(args, "offset", 0, minimum=0)
        limit = int_arg(args, "limit", DEFAULT_LIMIT)
        limit = limit if limit > 0 else DEFAULT_LIMIT
        body, total, last = number_lines(response.content, offset, limit)
        shown = display_path(path, ctx)
        ctx.files.record(path)
        if total == 0:
            return ToolResult(f"<file>\n(File {shown} is empty)\n</file>", metadata={"file_path": str(path), "editor": True})
        if offset >= total:
            raise ToolError(f"offset {offset} is beyond the end of {shown}, which has {total} lines")
        output = f"<file>\n{body}\n</file>"
        if last < total:
            output += f"\n\n(File has more lines: showing lines {offset + 1}-{last} of {total}. Use offset={last} to read beyond line {last}.)"
        metadata = {"file_path": str(path), "total_lines": total, "offset": offset, "lines_shown": last - offset, "editor": True}
        return ToolResult(output, metadata=metadata)


class EditorWriteTool:
    """pando's ``write``, handing the new text to the editor when it can.

    Like the built-in write it asks permission itself (``asks_permission``): the diff it shows is
    against the editor's buffer, which is known only once the tool has read it.
    """

    name = "write"
    read_only = False
    asks_permission = True

    def __init__(self) -> None:
        self.builtin = WriteTool()
        self.description = self.builtin.description
        self.parameters = self.builtin.parameters

    async def _before(self, turn, path: Path) -> str | None:  # noqa: ANN001
        if not path.exists():
            return None
        from .editor_edits import current_text

        return await current_text(turn, path)

    def _permission(self, path: Path, shown: str, before: str | None, content: str) -> PermissionRequest:
        diff = make_diff(before, content, shown)
        verb = "Create" if before is None else "Overwrite"
        return PermissionRequest(
            tool_name=self.name,
            action="write",
            description=f"{verb} {shown}\n{short_diff(diff)}",
            path=str(path),
            params={"file_path": str(path), "diff": diff},
        )

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        turn = editor_turn("write_text_file")
        if turn is None:
            return await self.builtin.run(args, ctx)
        content = str_arg(args, "content", required=True)
        path = ctx.resolve_path(str_arg(args, "file_path", required=True))
        shown = display_path(path, ctx)
        if path.exists() and not path.is_file():
            raise ToolError(f"{shown} is not a file")
        if path.exists():
            stale = ctx.files.check_unchanged(path)
            if stale:
                raise ToolError(stale)
        try:
            before = await self._before(turn, path)
        except Exception:  # noqa: BLE001 - the editor cannot show it: pando writes it itself
            return await self.builtin.run(args, ctx)
        if before == content:
            raise ToolError(f"{shown} already contains exactly this content; nothing to write")
        await ctx.ask(self._permission(path, shown, before, content))
        try:
            await turn.client.write_text_file(turn.session.id, str(path), content)
        except Exception as exc:  # noqa: BLE001 - the editor's refusal, in one line, to the model
            raise ToolError(f"The editor did not write {shown}: {exc}") from exc
        ctx.files.record(path)
        record_history(ctx, path, before, content)
        diff = make_diff(before, content, shown)
        additions, removals = diff_stats(diff)
        action = "created" if before is None else "written"
        return ToolResult(
            content=f"File successfully {action}: {shown} (+{additions} -{removals})",
            metadata={"diff": diff, "additions": additions, "removals": removals, "file_path": str(path), "editor": True},
        )
