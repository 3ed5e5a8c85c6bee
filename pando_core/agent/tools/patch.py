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
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import PermissionRequest, ToolContext, ToolError, ToolResult
from pando_core.agent.tools.edit import SMART_MAP
from pando_core.agent.tools.write import (
    HUNK_HEADER,
    diff_stats,
    display_path,
    make_diff,
    path_lock,
    read_for_change,
    read_text,
    record_history,
    restore_line_ends,
    short_diff,
    str_arg,
    to_lf,
    write_temp_for,
    write_text_atomic,
)
from pando_core.fsutil import discard

MAX_FUZZ = 3
# the section headers of the apply_patch format and the operation each starts
FILE_HEADERS = (("*** Add File:", "add"), ("*** Delete File:", "delete"), ("*** Update File:", "update"))

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
class Hunk:
    old_lines: list[str] = field(default_factory=list)
    new_lines: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    hint: int | None = None  # 0-based line where the old text is expected (unified diffs)
    eof: bool = False
    old_no_eol: bool = False
    new_no_eol: bool = False
    ops: list[tuple[str, str]] = field(default_factory=list)  # (" " | "-" | "+", text) in order

    def add(self, kind: str, text: str) -> None:
        self.ops.append((kind, text))
        if kind != "+":
            self.old_lines.append(text)
        if kind != "-":
            self.new_lines.append(text)

    def replacement(self, matched: list[str]) -> list[str]:
        """The new lines, keeping the file's own text for context lines (which may differ by fuzz)."""
        out: list[str] = []
        old_index = 0
        for kind, text in self.ops:
            if kind == " ":
                out.append(matched[old_index])
                old_index += 1
            elif kind == "-":
                old_index += 1
            else:
                out.append(text)
        return out


@dataclass
class FileOp:
    kind: str  # "add" | "update" | "delete"
    path: str
    move_to: str | None = None
    hunks: list[Hunk] = field(default_factory=list)
    content: str | None = None  # for "add"
    add_lines: list[tuple[str, bool]] = field(default_factory=list)  # (text, was a bare blank line)


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


# --------------------------------------------------------------------------- parsing


def _strip_fences(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if len(lines) >= 2 and lines[0].startswith("```") and lines[-1].strip() == "```":
        lines = lines[1:-1]
    return lines


def parse_patch(text: str) -> list[FileOp]:
    lines = _strip_fences(text.replace("\r\n", "\n").split("\n"))
    if not lines:
        raise ToolError("patch_text is empty")
    prefixes = tuple(prefix for prefix, _kind in FILE_HEADERS)
    if any(line.strip() == "*** Begin Patch" or line.startswith(prefixes) for line in lines):
        return _parse_apply_patch(lines)
    if any(line.startswith("--- ") for line in lines) and any(line.startswith("+++ ") for line in lines):
        return _parse_unified(lines)
    raise ToolError(
        "Unrecognised patch format: expected '*** Begin Patch' ... '*** End Patch' or a unified diff "
        "with '--- a/file' / '+++ b/file' headers"
    )


def _parse_apply_patch(lines: list[str]) -> list[FileOp]:
    index = 0
    while index < len(lines) and lines[index].strip() != "*** Begin Patch":
        if lines[index].startswith("*** "):
            break
        index += 1
    if index < len(lines) and lines[index].strip() == "*** Begin Patch":
        index += 1
    ops: list[FileOp] = []
    current: FileOp | None = None
    hunk: Hunk | None = None

    def header_value(line: str, prefix: str) -> str:
        value = line[len(prefix) :].strip()
        if not value:
            raise ToolError(f"Missing file path in patch line: {line!r}")
        return value

    while index < len(lines):
        line = lines[index]
        number = index + 1
        index += 1
        if line.strip() == "*** End Patch":
            break
        header = next(((prefix, kind) for prefix, kind in FILE_HEADERS if line.startswith(prefix)), None)
        if header is not None:
            prefix, kind = header
            current = FileOp(kind, header_value(line, prefix))
            ops.append(current)
            hunk = None
            continue
        if line.startswith("*** Move to:"):
            if current is None or current.kind != "update" or current.hunks:
                raise ToolError(
                    f"Patch line {number}: '*** Move to:' must directly follow '*** Update File:'"
                )
            current.move_to = header_value(line, "*** Move to:")
            continue
        if line.strip() == "*** End of File":
            if hunk is not None:
                hunk.eof = True
            continue
        if current is None:
            if not line.strip():
                continue
            raise ToolError(
                f"Patch line {number}: expected a '*** Add/Update/Delete File:' header, got {line!r}"
            )
        if current.kind == "add":
            if line.startswith("+"):
                current.add_lines.append((line[1:], False))
            elif not line.strip():
                current.add_lines.append(("", True))
            else:
                raise ToolError(
                    f"Patch line {number}: lines of an added file must start with '+', got {line!r}"
                )
            continue
        if current.kind == "delete":
            if line.strip():
                raise ToolError(f"Patch line {number}: unexpected content after '*** Delete File:': {line!r}")
            continue
        # update
        if line.startswith("@@"):
            anchor = line[2:].strip()
            unified = HUNK_HEADER.match(line)
            if hunk is not None and not hunk.old_lines and not hunk.new_lines:
                target = hunk
            else:
                target = Hunk()
                current.hunks.append(target)
                hunk = target
            if unified:
                target.hint = max(int(unified.group(1)) - 1, 0)
                trailing = unified.group(5).strip()
                if trailing:
                    target.anchors.append(trailing)
            elif anchor:
                target.anchors.append(anchor)
            continue
        if hunk is None:
            hunk = Hunk()
            current.hunks.append(hunk)
        if line.startswith(" ") or line == "":
            hunk.add(" ", line[1:])
        elif line.startswith("-"):
            hunk.add("-", line[1:])
        elif line.startswith("+"):
            hunk.add("+", line[1:])
        else:
            raise ToolError(
                f"Patch line {number}: every line of an update hunk must start with ' ', '-' or '+', got {line!r}"
            )
    for op in ops:
        if op.kind == "add":
            while op.add_lines and op.add_lines[-1][1]:
                op.add_lines.pop()
            op.content = "".join(text + "\n" for text, _bare in op.add_lines)
        if op.kind == "update":
            op.hunks = [h for h in op.hunks if h.old_lines or h.new_lines]
            for h in op.hunks:
                _trim_blank_context(h)
            if not op.hunks and not op.move_to:
                raise ToolError(f"Update of {op.path} contains no changes")
    if not ops:
        raise ToolError("The patch contains no file operations")
    return ops


def _trim_blank_context(hunk: Hunk) -> None:
    """Drop trailing blank context lines (a blank line after the last hunk line is usually an artefact)."""
    while len(hunk.ops) > 1 and hunk.ops[-1] == (" ", ""):
        hunk.old_lines.pop()
        hunk.new_lines.pop()
        hunk.ops.pop()


def _diff_path(raw: str, prefix: str) -> str | None:
    value = raw.split("\t", 1)[0].strip()
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        value = value[1:-1]
    if value == "/dev/null":
        return None
    if value.startswith(prefix):
        value = value[len(prefix) :]
    return value


def _parse_unified(lines: list[str]) -> list[FileOp]:
    ops: list[FileOp] = []
    index = 0
    current: FileOp | None = None
    while index < len(lines):
        line = lines[index]
        if line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
            old = _diff_path(line[4:], "a/")
            new = _diff_path(lines[index + 1][4:], "b/")
            index += 2
            if old is None and new is None:
                raise ToolError("A diff header names /dev/null on both sides")
            if old is None:
                current = FileOp("add", new or "")
            elif new is None:
                current = FileOp("delete", old)
            else:
                current = FileOp("update", old, move_to=new if new != old else None)
            ops.append(current)
            continue
        if line.startswith("@@"):
            if current is None:
                raise ToolError(f"Diff line {index + 1}: hunk before any '--- / +++' file header")
            index = _read_unified_hunk(lines, index, HUNK_HEADER.match(line), current)
            continue
        index += 1  # "diff --git", "index ...", mode lines and other noise
    if not ops:
        raise ToolError("The diff contains no '--- / +++' file headers")
    for op in ops:
        if op.kind == "add":
            content_lines: list[str] = []
            no_eol = False
            for hunk in op.hunks:
                content_lines.extend(hunk.new_lines)
                no_eol = hunk.new_no_eol
            op.content = "\n".join(content_lines) + ("" if no_eol or not content_lines else "\n")
            op.hunks = []
        elif op.kind == "update" and not op.hunks and not op.move_to:
            raise ToolError(f"The diff for {op.path} contains no hunks")
    return ops


def _read_unified_hunk(lines: list[str], index: int, header: re.Match[str] | None, op: FileOp) -> int:
    hunk = Hunk()
    old_count = new_count = None
    if header:
        old_count = int(header.group(2)) if header.group(2) is not None else 1
        new_count = int(header.group(4)) if header.group(4) is not None else 1
        # "-5,0" means "insert after line 5"; otherwise the hunk starts at line 5 (1-based)
        start = int(header.group(1))
        hunk.hint = start if old_count == 0 else max(start - 1, 0)
    op.hunks.append(hunk)
    index += 1
    seen_old = seen_new = 0
    last_kind = ""
    while index < len(lines):
        line = lines[index]
        counts_done = old_count is not None and seen_old >= old_count and seen_new >= (new_count or 0)
        if line.startswith("@@") or line.startswith("diff --git "):
            break
        if line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
            if old_count is None or counts_done:
                break
        if line.startswith("\\"):
            if last_kind == "-":
                hunk.old_no_eol = True
            elif last_kind == "+":
                hunk.new_no_eol = True
            elif last_kind == " ":
                hunk.old_no_eol = hunk.new_no_eol = True
            index += 1
            continue
        if line == "" or line.startswith(" "):
            if line == "" and counts_done:
                break
            hunk.add(" ", line[1:])
            seen_old += 1
            seen_new += 1
            last_kind = " "
        elif line.startswith("-"):
            hunk.add("-", line[1:])
            seen_old += 1
            last_kind = "-"
        elif line.startswith("+"):
            hunk.add("+", line[1:])
            seen_new += 1
            last_kind = "+"
        else:
            break
        index += 1
    _trim_blank_context(hunk)
    return index


# --------------------------------------------------------------------------- applying


# smart quotes, dashes, special spaces and the ellipsis → ASCII (the table the edit tool matches with)
_PUNCTUATION = str.maketrans(SMART_MAP)


def _normalise_punctuation(text: str) -> str:
    return unicodedata.normalize("NFC", text).translate(_PUNCTUATION).strip()


# (fuzz, line normaliser); None = exact comparison
_LEVELS: list[tuple[int, Callable[[str], str] | None]] = [
    (0, None),
    (1, str.rstrip),
    (2, str.strip),
    (2, _normalise_punctuation),
]


def _seek(
    lines: list[str], pattern: list[str], start: int, hint: int | None, eof: bool
) -> tuple[int, int] | None:
    """(index, fuzz) of the first place >= start where `pattern` matches, preferring positions near hint."""
    size = len(pattern)
    last = len(lines) - size
    if last < start:
        return None
    candidates = list(range(start, last + 1))
    if eof:
        candidates.sort(key=lambda i: -i)
    elif hint is not None:
        candidates.sort(key=lambda i: (abs(i - hint), i))
    for fuzz, norm in _LEVELS:
        if norm is None:
            wanted, view, offset = pattern, lines, 0
        else:
            # the file's lines from `start` on are normalised once per level
            wanted = [norm(item) for item in pattern]
            view, offset = [norm(line) for line in lines[start:]], start
        first = wanted[0]
        for idx in candidates:
            at = idx - offset
            if view[at] == first and view[at : at + size] == wanted:
                return idx, fuzz
    return None


def _seek_anchor(lines: list[str], anchor: str, start: int) -> int | None:
    for norm in (lambda s: s, lambda s: s.strip(), _normalise_punctuation):
        wanted = norm(anchor)
        for idx in range(start, len(lines)):
            if norm(lines[idx]) == wanted:
                return idx
    # a shorter anchor such as "def main" names the start of a longer line
    for idx in range(start, len(lines)):
        if lines[idx].strip().startswith(anchor.strip()):
            return idx
    return None


def apply_hunks(content: str, hunks: list[Hunk], name: str) -> str:
    work, crlf = to_lf(content)
    had_eol = work.endswith("\n")
    lines = work.split("\n")
    if had_eol or work == "":
        lines.pop()
    position = 0
    fuzz = 0
    delta = 0  # how far earlier hunks shifted line numbers (for unified-diff line hints)
    new_eol = had_eol or work == ""
    for number, hunk in enumerate(hunks, start=1):
        anchor_at: int | None = None
        for anchor in hunk.anchors:
            found = _seek_anchor(lines, anchor, position)
            if found is None:
                raise ToolError(f"{name}: hunk {number}: could not find the context line '@@ {anchor}'")
            anchor_at = position = found
        hint = None if hunk.hint is None else hunk.hint + delta
        if not hunk.old_lines:
            if anchor_at is not None:
                at = anchor_at + 1
            elif hint is not None:
                at = min(max(hint, position), len(lines))
            else:
                at = len(lines)
            lines[at:at] = hunk.new_lines
            position = at + len(hunk.new_lines)
        else:
            found_at = _seek(lines, hunk.old_lines, position, hint, hunk.eof)
            if found_at is None:
                expected = "\n".join(hunk.old_lines[:12])
                raise ToolError(
                    f"{name}: hunk {number} does not apply: these lines were not found in the file "
                    f"(searching from line {position + 1}):\n{expected}\nView the file and regenerate the "
                    "patch with the exact current text."
                )
            at, level = found_at
            fuzz += level
            end = at + len(hunk.old_lines)
            at_end = end == len(lines)
            lines[at:end] = hunk.replacement(lines[at:end]) if level else hunk.new_lines
            position = at + len(hunk.new_lines)
            if at_end:
                if hunk.new_no_eol:
                    new_eol = False
                elif hunk.old_no_eol:
                    new_eol = True
        delta += len(hunk.new_lines) - len(hunk.old_lines)
    if fuzz > MAX_FUZZ:
        raise ToolError(
            f"{name}: the patch context matches only loosely (fuzz {fuzz} > {MAX_FUZZ}); view the file and "
            "regenerate the patch with the exact current text"
        )
    result = "\n".join(lines)
    if lines and new_eol:
        result += "\n"
    return restore_line_ends(result, crlf)


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


def _missing_dirs(path: Path) -> list[Path]:
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    return missing


def _commit(changes: list[PlannedChange]) -> None:
    """Write every change via temp files + renames; on any failure restore the previous state."""
    created_dirs: list[Path] = []
    staged: dict[int, str] = {}
    try:
        for number, change in enumerate(changes):
            if change.after is None:
                continue
            missing = _missing_dirs(change.target)
            change.target.parent.mkdir(parents=True, exist_ok=True)
            created_dirs.extend(missing)
            staged[number] = write_temp_for(change.target, change.after)
    except OSError as exc:
        _discard(staged.values(), created_dirs)
        raise ToolError(f"Failed to apply the patch; no files were changed: {exc}") from exc

    undo: list[tuple[str, PlannedChange, str | None]] = []
    try:
        for number, change in enumerate(changes):
            tmp = staged.get(number)
            moved = change.target != change.path
            if change.op.kind == "add" or moved:
                assert tmp is not None
                os.link(tmp, change.target)  # no-clobber: fails if the target appeared meanwhile
                os.unlink(tmp)
                staged.pop(number)
                undo.append(("created", change, None))
            if change.op.kind == "delete" or moved:
                backup = write_temp_for(change.path, "")
                os.replace(change.path, backup)
                undo.append(("removed", change, backup))
            elif change.op.kind == "update":
                assert tmp is not None
                os.replace(tmp, change.path)
                staged.pop(number)
                undo.append(("replaced", change, None))
    except OSError as exc:
        for kind, change, backup in reversed(undo):
            with contextlib.suppress(OSError):
                if kind == "created":
                    os.unlink(change.target)
                elif kind == "removed" and backup:
                    os.replace(backup, change.path)
                elif kind == "replaced" and change.before is not None:
                    write_text_atomic(change.path, change.before)
        _discard(staged.values(), created_dirs)
        raise ToolError(f"Failed to apply the patch; no files were changed: {exc}") from exc
    for kind, _change, backup in undo:
        if kind == "removed" and backup:
            discard(backup)


def _discard(temps: Any, created_dirs: list[Path]) -> None:
    for tmp in list(temps):
        discard(tmp)
    for directory in sorted(created_dirs, key=lambda d: len(d.parts), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
