"""Applying parsed hunks to a file's text: each hunk's context is found in file order, exactly or with
a little whitespace or punctuation fuzz, and a patch that matches only loosely is refused."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from pando_core.agent.tools.base import ToolError
from pando_core.agent.tools.edit import SMART_MAP
from pando_core.agent.tools.patch_parsing import Hunk
from pando_core.agent.tools.write import restore_line_ends, to_lf

MAX_FUZZ = 3


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

