"""Bash command patterns: fnmatch, plus Claude Code's prefix form.

``git status:*`` (as in ``Bash(git status:*)``) is the command ``git status`` alone or followed by
a space and anything: the prefix is a whole word, so ``git statusx`` is not covered. Any other
pattern is fnmatch as written (``git status*`` does cover ``git statusx``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

PREFIX_SUFFIX = ":*"


def expand(pattern: str) -> list[str]:
    """The fnmatch patterns one pattern stands for (an empty one: every command)."""
    if not pattern.endswith(PREFIX_SUFFIX):
        return [pattern or "*"]
    prefix = pattern[: -len(PREFIX_SUFFIX)].rstrip()
    return [prefix, prefix + " *"] if prefix else ["*"]


def matches(command: str, pattern: str) -> bool:
    return any(fnmatch.fnmatchcase(command, p) for p in expand(pattern))


def matches_any(command: str, patterns: Iterable[str]) -> bool:
    return any(matches(command, pattern) for pattern in patterns)
