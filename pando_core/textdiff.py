"""Unified diffs of two texts, as the file tools, the file history and the snapshots show them."""

from __future__ import annotations

import difflib


def unified_diff(old: str, new: str, fromfile: str, tofile: str) -> str:
    """A unified diff of two texts (3 lines of context); a last line without a newline gets git's
    ``\\ No newline at end of file`` marker."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile, tofile)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
