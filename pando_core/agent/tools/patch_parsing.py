"""Parsing the `patch` tool's input, the "apply_patch" format or a unified diff, into file
operations (add, update with hunks, delete, move)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pando_core.agent.tools.base import ToolError
from pando_core.agent.tools.write import HUNK_HEADER

# the section headers of the apply_patch format and the operation each starts
FILE_HEADERS = (("*** Add File:", "add"), ("*** Delete File:", "delete"), ("*** Update File:", "update"))


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

