"""The `view` tool: read a text file with line numbers (enables later edit/write of that file)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import ToolContext, ToolError, ToolResult
from pando_core.agent.tools.write import display_path, int_arg, str_arg

DEFAULT_LIMIT = 2000
MAX_LINE_CHARS = 2000
SNIFF_BYTES = 4096

IMAGE_TYPES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".gif": "GIF",
    ".bmp": "BMP",
    ".webp": "WebP",
    ".ico": "ICO",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".heic": "HEIC",
    ".avif": "AVIF",
}

VIEW_DESCRIPTION = """Read a text file and return its contents with line numbers.

Usage notes:
- file_path is relative to the working directory (or absolute inside it).
- Output lines look like `     7|text`: a right-aligned line number, a `|`, then the line exactly as in
  the file. The number and `|` are NOT part of the file — never copy them into edit/patch strings.
- By default up to 2000 lines are shown from the start. For big files pass `offset` (0-based line to
  start from) and `limit` (number of lines); `end_line` (exclusive, 0-based) may be used instead of limit.
- Lines longer than 2000 characters are cut and end with "...".
- Directories are refused (use `ls`), as are binary files and images.
- You must view a file before changing it with `edit`, `write` or `patch`; view it again if it may have
  changed since."""


def is_binary_sample(sample: bytes) -> bool:
    """NUL byte, or more than 30 % non-printable bytes (UTF-8 lead/continuation bytes count as text)."""
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    allowed = {7, 8, 9, 10, 12, 13, 27}
    odd = sum(1 for byte in sample if (byte < 32 and byte not in allowed) or byte == 127)
    return odd / len(sample) > 0.30


def similar_names(path: Path, limit: int = 3) -> list[str]:
    """Up to `limit` entries of the parent directory whose names resemble the missing file's name."""
    parent = path.parent
    if not parent.is_dir():
        return []
    try:
        names = [entry.name for entry in parent.iterdir()]
    except OSError:
        return []
    wanted = path.name.lower()
    found: list[str] = []
    lowered = {name.lower(): name for name in names}
    for match in difflib.get_close_matches(wanted, list(lowered), n=limit, cutoff=0.5):
        found.append(lowered[match])
    stem = Path(wanted).stem
    for name in sorted(names):
        if len(found) >= limit:
            break
        low = name.lower()
        if name not in found and stem and (stem in low or Path(low).stem in wanted):
            found.append(name)
    return [str(parent / name) for name in found[:limit]]


class ViewTool:
    name = "view"
    read_only = True
    description = VIEW_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "Path of the file to read"},
            "offset": {
                "type": "integer",
                "description": "0-based line number to start reading from (default 0)",
            },
            "limit": {"type": "integer", "description": "Number of lines to read (default 2000)"},
            "end_line": {
                "type": "integer",
                "description": "0-based line to stop before (exclusive); overrides limit when given",
            },
        },
        "required": ["file_path"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw_path = str_arg(args, "file_path", required=True)
        offset = int_arg(args, "offset", 0, minimum=0)
        limit = int_arg(args, "limit", DEFAULT_LIMIT)
        if limit <= 0:
            limit = DEFAULT_LIMIT
        end_line = int_arg(args, "end_line", 0)
        if end_line > offset:
            limit = end_line - offset
        path = ctx.resolve_path(raw_path)
        shown = display_path(path, ctx)

        if not path.exists():
            suggestions = similar_names(path)
            message = f"File not found: {shown}"
            if suggestions:
                message += "\n\nDid you mean one of these?\n" + "\n".join(suggestions)
            raise ToolError(message)
        if path.is_dir():
            raise ToolError(f"{shown} is a directory, not a file; use the ls tool to list it")
        kind = IMAGE_TYPES.get(path.suffix.lower())
        if kind:
            size = path.stat().st_size
            raise ToolError(
                f"{shown} is an image file ({kind}, {size} bytes); viewing images is not supported"
            )
        try:
            with open(path, "rb") as handle:
                sample = handle.read(SNIFF_BYTES)
        except OSError as exc:
            raise ToolError(f"Cannot read {shown}: {exc}") from exc
        if is_binary_sample(sample):
            raise ToolError(f"{shown} appears to be a binary file; it cannot be displayed as text")

        shown_lines: list[str] = []
        total = 0
        cut = 0
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            for index, line in enumerate(handle):
                total = index + 1
                if index < offset or index >= offset + limit:
                    continue
                text = line.rstrip("\n").rstrip("\r")
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS] + "..."
                    cut += 1
                shown_lines.append(f"{index + 1:6d}|{text}")

        if total == 0:
            ctx.files.record(path)
            return ToolResult(
                content=f"<file>\n(File {shown} is empty)\n</file>",
                metadata={"file_path": str(path), "total_lines": 0, "lines_shown": 0},
            )
        if offset >= total:
            raise ToolError(f"offset {offset} is beyond the end of {shown}, which has {total} lines")

        last = offset + len(shown_lines)
        body = "\n".join(shown_lines)
        output = f"<file>\n{body}\n</file>"
        if last < total:
            output += (
                f"\n\n(File has more lines: showing lines {offset + 1}-{last} of {total}. "
                f"Use offset={last} to read beyond line {last}.)"
            )
        if cut:
            output += f"\n({cut} long line(s) were cut at {MAX_LINE_CHARS} characters.)"
        ctx.files.record(path)
        return ToolResult(
            content=output,
            metadata={
                "file_path": str(path),
                "total_lines": total,
                "offset": offset,
                "lines_shown": len(shown_lines),
            },
        )
