""".gitignore / .pandoignore rules with git's semantics, shared by the snapshot service and the search tools.

* `parse_ignore_lines` — the rules of one ignore file: comments, negation (``!``), escaped ``\\!``/``\\#``,
  dir-only patterns (trailing ``/``), anchoring (a ``/`` anywhere but at the end), ``*``/``?``/``[...]``
  within one path component and ``**`` across them. Braces are literal, as in git; trailing spaces are
  dropped unless escaped with a backslash.
* `is_ignored` — the verdict of a rule list for a path; the last matching rule wins.
* `IgnoreRules` — rules collected from the ignore files of the directories of a walk.

Paths are posix paths relative to the directory the walk starts from ("base").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from pathlib import Path

IGNORE_FILES = (".gitignore", ".pandoignore")

__all__ = ["IGNORE_FILES", "IgnoreRule", "IgnoreRules", "class_end", "is_ignored", "parse_ignore_lines", "translate_glob"]


@dataclass(frozen=True)
class IgnoreRule:
    base: str  # directory (relative, '' = root) holding the ignore file
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    anchored: bool


def class_end(pattern: str, start: int) -> int:
    """Where the character class opened by the ``[`` at *start* closes (-1: it does not, and the
    ``[`` is a literal one). Like git, a ``]`` first in the class (after ``!``/``^``) is literal."""
    i = start + 2 if pattern[start + 1 : start + 2] in ("!", "^") else start + 1
    if pattern[i : i + 1] == "]":
        i += 1
    return pattern.find("]", i)


def translate_glob(pattern: str) -> str:
    """gitignore glob -> regex: ``*``/``?`` stay within a path component, ``**`` crosses them."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == n:
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = class_end(pattern, i)
            if j == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def parse_ignore_lines(lines: Iterable[str], base: str = "") -> list[IgnoreRule]:
    """The rules of an ignore file held by the directory `base` (relative, '' = the walk's root)."""
    rules: list[IgnoreRule] = []
    for raw in lines:
        line = raw.rstrip("\n").rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        line = line.rstrip(" ") if not line.endswith("\\ ") else line
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        elif line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        try:
            regex = re.compile(translate_glob(line), re.DOTALL)
        except re.error:
            continue
        rules.append(IgnoreRule(base, regex, negate, dir_only, anchored))
    return rules


def _decide(sets: Iterable[tuple[str, Iterable[IgnoreRule]]], rel: str, is_dir: bool) -> bool:
    """The verdict for `rel` of rule sets given as (directory holding them, rules), parents first:
    only the sets of directories above `rel` apply, and the last matching rule wins."""
    ignored = False
    for directory, rules in sets:
        if directory:
            if not (rel.startswith(directory) and rel.startswith("/", len(directory))):
                continue
            sub = rel[len(directory) + 1 :]
        else:
            sub = rel
        name = sub.rsplit("/", 1)[-1]
        for rule in rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(sub if rule.anchored else name):
                ignored = not rule.negate
    return ignored


def is_ignored(rules: Iterable[IgnoreRule], rel: str, is_dir: bool) -> bool:
    """Whether `rel` is ignored: the last rule (of the ignore files above it) that matches decides."""
    return _decide(groupby(rules, key=attrgetter("base")), rel, is_dir)


class IgnoreRules:
    """The rules of the ignore files of a walk under `base`, each tied to the directory holding it.

    Load a directory's files (`load_dir`) before asking about its entries; parents must be loaded
    before their children (as a top-down walk does), so deeper rules come later and win.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        # (directory relative to base, the rules of its ignore files), parents before children; a
        # path is only checked against the rules of the directories above it
        self._sets: list[tuple[str, list[IgnoreRule]]] = []
        self._loaded: set[str] = set()

    def load_dir(self, directory: Path) -> None:
        try:
            rel = directory.relative_to(self.base).as_posix()
        except ValueError:
            return
        rel = "" if rel == "." else rel
        if rel in self._loaded:
            return
        self._loaded.add(rel)
        rules: list[IgnoreRule] = []
        for name in IGNORE_FILES:
            try:
                text = (directory / name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            rules.extend(parse_ignore_lines(text.splitlines(), rel))
        if rules:
            self._sets.append((rel, rules))

    def load_ancestors(self, directory: Path) -> None:
        """Load ignore files from `base` down to `directory` (inclusive)."""
        try:
            parts = directory.relative_to(self.base).parts
        except ValueError:
            return
        current = self.base
        self.load_dir(current)
        for part in parts:
            current = current / part
            self.load_dir(current)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether the path (posix, relative to base) is ignored."""
        return _decide(self._sets, rel, is_dir)
