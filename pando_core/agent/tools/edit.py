"""The `edit` tool: replace one exact occurrence of a string in a file (or create a new file).

Matching cascade (each stage must find exactly one match unless replace_all is set):
1. exact text;
2. smart quotes / dashes / non-breaking spaces / ellipsis normalised to ASCII;
3. (2) plus trailing whitespace of every line ignored;
4. whole lines with a different common indentation (the replacement is re-indented to match);
5. (2) plus runs of spaces/tabs collapsed and line indentation ignored.
Normalised stages map match offsets back to the original text, so the untouched text is never rewritten.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import ToolContext, ToolError, ToolResult
from pando_core.agent.tools.write import (
    bool_arg,
    display_path,
    path_lock,
    read_for_change,
    restore_line_ends,
    str_arg,
    to_lf,
    write_with_permission,
)

EDIT_DESCRIPTION = """Edit a file by replacing an exact piece of text with new text. Also creates new files.

Usage notes:
- You must `view` the file first; the edit is refused if the file changed on disk since you viewed it.
- old_string must match the file text exactly, including indentation and blank lines, and must identify
  ONE location: include enough surrounding lines (typically 3-5) to make it unique. Do not include the
  line-number prefix (`   12|`) shown by `view`.
- If old_string occurs several times, the edit fails and tells you how many matches there are; add more
  context, or set replace_all=true to change every occurrence (e.g. renaming a variable).
- new_string replaces old_string; an empty new_string deletes the text. It must differ from old_string.
- To create a new file, pass an empty old_string and the whole file as new_string (fails if it exists).
- Small differences in quotes (curly vs straight), dashes, trailing spaces or indentation are tolerated
  when the match is still unique, but exact text is always safest.
- For several changes to one file make several edit calls (or use `patch`)."""

SMART_MAP = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u00a0": " ",
    "\u2007": " ",
    "\u202f": " ",
    "\u2026": "...",
}

HSPACE = " \t"

Chars = tuple[list[str], list[int]]


# --------------------------------------------------------------------------- normalisers
# Each takes (chars, origin) — normalised characters and, for each, its index in the original text —
# and returns a new pair. The original length is appended when mapping a match end back.


def _start(text: str) -> Chars:
    return list(text), list(range(len(text)))


def _smart(data: Chars) -> Chars:
    chars, origin = data
    out_c: list[str] = []
    out_o: list[int] = []
    for ch, idx in zip(chars, origin, strict=True):
        mapped = SMART_MAP.get(ch)
        if mapped is None:
            out_c.append(ch)
            out_o.append(idx)
        else:
            out_c.extend(mapped)
            out_o.extend([idx] * len(mapped))
    return out_c, out_o


def _trim_trailing(data: Chars) -> Chars:
    chars, origin = data
    out_c: list[str] = []
    out_o: list[int] = []
    pending: list[tuple[str, int]] = []
    for ch, idx in zip(chars, origin, strict=True):
        if ch in HSPACE:
            pending.append((ch, idx))
            continue
        if ch not in "\r\n":
            for p_ch, p_idx in pending:
                out_c.append(p_ch)
                out_o.append(p_idx)
        pending = []
        if ch == "\r":
            continue
        out_c.append(ch)
        out_o.append(idx)
    return out_c, out_o


def _collapse(data: Chars) -> Chars:
    chars, origin = data
    out_c: list[str] = []
    out_o: list[int] = []
    at_line_start = True
    space_at: int | None = None
    for ch, idx in zip(chars, origin, strict=True):
        if ch in HSPACE or ch == "\r":
            if not at_line_start and space_at is None:
                space_at = idx
            continue
        if ch == "\n":
            space_at = None
            at_line_start = True
            out_c.append(ch)
            out_o.append(idx)
            continue
        if space_at is not None:
            out_c.append(" ")
            out_o.append(space_at)
            space_at = None
        at_line_start = False
        out_c.append(ch)
        out_o.append(idx)
    return out_c, out_o


def _chain(*steps: Callable[[Chars], Chars]) -> Callable[[str], Chars]:
    def run(text: str) -> Chars:
        data = _start(text)
        for step in steps:
            data = step(data)
        return data

    return run


@dataclass
class Match:
    start: int
    end: int
    replacement: str


def _find_all(haystack: str, needle: str) -> list[int]:
    found: list[int] = []
    if not needle:
        return found
    pos = haystack.find(needle)
    while pos != -1:
        found.append(pos)
        pos = haystack.find(needle, pos + len(needle))
    return found


def _normalised_matches(
    content: str, old: str, new: str, normalise: Callable[[str], Chars], *, extend_indent: bool
) -> list[Match]:
    hay_chars, hay_origin = normalise(content)
    needle = "".join(normalise(old)[0])
    if not needle.strip():
        return []
    hay = "".join(hay_chars)
    origin = hay_origin + [len(content)]
    matches: list[Match] = []
    for pos in _find_all(hay, needle):
        start = origin[pos]
        end_index = pos + len(needle)
        # the match ends right after its last normalised character
        end = origin[end_index - 1] + 1
        if end_index < len(hay):
            # swallow characters the normaliser dropped between the match and the next character
            # only when they are trailing whitespace of the matched line
            gap = content[end : origin[end_index]]
            if gap and all(ch in HSPACE for ch in gap) and hay[end_index] == "\n":
                end = origin[end_index]
        if extend_indent and old[:1] in (" ", "\t"):
            while start > 0 and content[start - 1] in HSPACE:
                start -= 1
        matches.append(Match(start, end, new))
    return matches


def _indent_matches(content: str, old: str, new: str) -> list[Match]:
    old_lines = old.split("\n")
    keep_newline = False
    if len(old_lines) > 1 and old_lines[-1] == "":
        old_lines.pop()
        keep_newline = True
    nonblank = [line for line in old_lines if line.strip()]
    if not nonblank:
        return []
    old_indent = _common_indent(nonblank)
    wanted = [line[len(old_indent) :].rstrip() if line.strip() else "" for line in old_lines]

    file_lines = content.split("\n")
    starts: list[int] = []
    offset = 0
    for line in file_lines:
        starts.append(offset)
        offset += len(line) + 1
    count = len(wanted)
    matches: list[Match] = []
    index = 0
    while index + count <= len(file_lines):
        indent = _match_block(file_lines, index, wanted)
        if indent is None:
            index += 1
            continue
        last = index + count - 1
        start = starts[index]
        end = starts[last] + len(file_lines[last])
        if keep_newline and end < len(content):
            end += 1
        replacement = _reindent(new, old_indent, indent)
        matches.append(Match(start, end, replacement))
        index += count
    return matches


def _common_indent(lines: list[str]) -> str:
    indents = [line[: len(line) - len(line.lstrip(HSPACE))] for line in lines]
    prefix = indents[0]
    for item in indents[1:]:
        while not item.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def _match_block(file_lines: list[str], index: int, wanted: list[str]) -> str | None:
    indent: str | None = None
    for offset, want in enumerate(wanted):
        line = file_lines[index + offset].rstrip()
        if not want:
            if line.strip():
                return None
            continue
        if not line.endswith(want):
            return None
        prefix = line[: len(line) - len(want)]
        if prefix.strip(HSPACE):
            return None
        if indent is None:
            indent = prefix
        elif prefix != indent:
            return None
    return indent


def _reindent(text: str, old_indent: str, indent: str) -> str:
    out: list[str] = []
    for line in text.split("\n"):
        if not line.strip():
            out.append("")
        elif line.startswith(old_indent):
            out.append(indent + line[len(old_indent) :])
        else:
            out.append(indent + line.lstrip(HSPACE))
    return "\n".join(out)


def _exact(content: str, old: str, new: str) -> list[Match]:
    return [Match(pos, pos + len(old), new) for pos in _find_all(content, old)]


Strategy = tuple[str, Callable[[str, str, str], list[Match]]]

STRATEGIES: list[Strategy] = [
    ("exact", _exact),
    (
        "quotes/dashes normalised",
        lambda c, o, n: _normalised_matches(c, o, n, _chain(_smart), extend_indent=False),
    ),
    (
        "trailing whitespace ignored",
        lambda c, o, n: _normalised_matches(c, o, n, _chain(_smart, _trim_trailing), extend_indent=False),
    ),
    ("indentation adjusted", _indent_matches),
    (
        "whitespace collapsed",
        lambda c, o, n: _normalised_matches(c, o, n, _chain(_smart, _collapse), extend_indent=True),
    ),
]


def find_matches(content: str, old: str, new: str) -> tuple[str, list[Match]]:
    """The first strategy that finds at least one match, with its matches (empty when none matched)."""
    for name, strategy in STRATEGIES:
        matches = strategy(content, old, new)
        if matches:
            return name, matches
    return "", []


def apply_matches(content: str, matches: list[Match]) -> str:
    out: list[str] = []
    cursor = 0
    for match in sorted(matches, key=lambda m: m.start):
        if match.start < cursor:
            continue
        out.append(content[cursor : match.start])
        out.append(match.replacement)
        cursor = match.end
    out.append(content[cursor:])
    return "".join(out)


def closest_line_hint(content: str, old: str) -> str:
    first = next((line.strip() for line in old.splitlines() if line.strip()), "")
    if not first:
        return ""
    lines = content.splitlines()
    stripped = [line.strip() for line in lines]
    close = difflib.get_close_matches(first, stripped, n=1, cutoff=0.6)
    if not close:
        return ""
    number = stripped.index(close[0]) + 1
    return f"\nThe most similar line in the file is line {number}: {lines[number - 1].strip()[:200]}"


def snippet(content: str, start: int, length: int, context: int = 3, max_lines: int = 40) -> str:
    """Numbered lines around content[start:start+length]."""
    lines = content.split("\n")
    first = content.count("\n", 0, start)
    last = first + content.count("\n", start, start + length)
    lo = max(0, first - context)
    hi = min(len(lines), last + context + 1)
    if hi - lo > max_lines:
        hi = lo + max_lines
    return "\n".join(f"{n + 1:6d}|{lines[n]}" for n in range(lo, hi))


class EditTool:
    name = "edit"
    read_only = False
    asks_permission = True  # asks with the diff, before changing anything
    description = EDIT_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "Path of the file to modify (or create)"},
            "old_string": {
                "type": "string",
                "description": "The exact text to replace (empty to create a new file)",
            },
            "new_string": {"type": "string", "description": "The text to replace it with"},
            "replace_all": {
                "type": "boolean",
                "description": "Replace every occurrence of old_string (default false)",
            },
        },
        "required": ["file_path", "old_string", "new_string"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw_path = str_arg(args, "file_path", required=True)
        old = str_arg(args, "old_string")
        new = str_arg(args, "new_string")
        replace_all = bool_arg(args, "replace_all")
        path = ctx.resolve_path(raw_path)
        async with path_lock(path):
            if old == "":
                return await self._create(path, new, ctx)
            return await self._replace(path, old, new, replace_all, ctx)

    async def _create(self, path: Path, content: str, ctx: ToolContext) -> ToolResult:
        shown = display_path(path, ctx)
        refuse_existing(path, shown)
        metadata = await write_with_permission(
            ctx, self.name, path, shown, None, content, verb="Create", failure="create"
        )
        return ToolResult(content=f"Created {shown} (+{metadata['additions']} lines)", metadata=metadata)

    async def _replace(
        self, path: Path, old: str, new: str, replace_all: bool, ctx: ToolContext
    ) -> ToolResult:
        shown = display_path(path, ctx)
        before = read_for_change(
            ctx, path, shown, missing=f"File not found: {shown} (pass an empty old_string to create a new file)"
        )
        change = replace_in_text(before, old, new, replace_all, shown)
        metadata = await write_with_permission(ctx, self.name, path, shown, before, change.after, verb="Edit")
        return change.result(shown, metadata)


def refuse_existing(path: Path, shown: str) -> None:
    """An edit with an empty old_string creates a file: refused when it exists."""
    if path.exists():
        raise ToolError(
            f"{shown} already exists. To change it, view it and pass the text to replace as "
            "old_string (or use the write tool to overwrite it)."
        )


@dataclass
class Replacement:
    """An edit worked out on a file's text, before anything is written."""

    after: str  # the new text of the file (its line ends kept)
    edited: str  # the new text with LF line ends, for the excerpt
    strategy: str
    matches: list[Match]

    def result(self, shown: str, metadata: dict[str, Any]) -> ToolResult:
        """The tool result once written (``metadata``: diff, additions, removals, file_path)."""
        count = len(self.matches)
        first = min(self.matches, key=lambda m: m.start)
        occurrences = "1 occurrence" if count == 1 else f"{count} occurrences"
        summary = f"Edited {shown}: replaced {occurrences} (+{metadata['additions']} -{metadata['removals']})"
        if self.strategy != "exact":
            summary += f" [matched with {self.strategy}]"
        excerpt = snippet(self.edited, first.start, len(first.replacement))
        return ToolResult(
            content=f"{summary}\n\n{excerpt}",
            metadata={**metadata, "replacements": count, "strategy": self.strategy},
        )


def replace_in_text(before: str, old: str, new: str, replace_all: bool, shown: str) -> Replacement:
    """The edit of ``before`` (the text of file ``shown``); a ToolError when old_string is not found
    once (or at all with ``replace_all``) or the edit changes nothing. Used by every front-end that
    keeps files elsewhere than on disk (an editor's buffers) as well as by the tool itself."""
    if old == new:
        raise ToolError("old_string and new_string are identical; there is nothing to change")
    work, crlf = to_lf(before, convert="\r\n" not in old)
    strategy, matches = find_matches(work, old, new)
    if not matches:
        raise ToolError(
            f"old_string was not found in {shown}. It must match the file exactly, including "
            "whitespace and indentation; view the file again and copy the text precisely."
            + closest_line_hint(work, old)
        )
    if len(matches) > 1 and not replace_all:
        raise ToolError(
            f"Found {len(matches)} matches of old_string in {shown}; it must be unique. Provide more "
            "surrounding context to identify the one to change, or set replace_all=true to replace "
            "every occurrence."
        )
    edited = apply_matches(work, matches)
    if edited == work:
        raise ToolError(f"The edit would not change {shown}; new content is identical")
    return Replacement(restore_line_ends(edited, crlf), edited, strategy, matches)
