"""The `glob` tool, plus the directory walker shared by glob, grep and ls.

Shared helpers:
* `glob_to_regex` — `*`, `?`, `[...]`, `{a,b}` and `**` (any number of directories).
* `IgnoreRules` — a small .gitignore / .pandoignore implementation (negation, anchoring, dir-only
  patterns, one rule set per directory, last match wins).
* `walk_files` — a pruned walk that never enters .git, node_modules or .pando.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import ToolContext, ToolError, ToolResult
from pando_core.agent.tools.write import display_path, int_arg, str_arg

ALWAYS_SKIP_DIRS = frozenset({".git", "node_modules", ".pando"})
IGNORE_FILES = (".gitignore", ".pandoignore")
DEFAULT_LIMIT = 100
GLOB_CHARS = set("*?[{")

GLOB_DESCRIPTION = """Find files by name pattern. Results are sorted by modification time, newest first.

Usage notes:
- Patterns: `*` matches within one path segment, `**` matches any number of directories, `?` one
  character, `[abc]` a character class, `{py,pyi}` alternatives. Examples: `**/*.py`, `src/**/*.{ts,tsx}`,
  `*test*`, `docs/*.md`.
- A pattern without `/` matches file names at any depth (`*.py` finds every Python file); a pattern with
  `/` is matched against the path relative to the search directory.
- `path` is the directory to search (default: the working directory).
- .git, node_modules and .pando are skipped, and files ignored by .gitignore/.pandoignore are left out.
- At most 100 results are returned (`head_limit`); use `offset` to page through more, or a narrower
  pattern. Use `grep` to search file contents."""


# --------------------------------------------------------------------------- glob → regex


def _translate(pattern: str) -> str:
    out: list[str] = []
    index = 0
    size = len(pattern)
    while index < size:
        ch = pattern[index]
        if ch == "*":
            if pattern.startswith("**", index):
                if pattern.startswith("**/", index):
                    out.append("(?:.*/)?")
                    index += 3
                else:
                    out.append(".*")
                    index += 2
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            start = index + 1
            if pattern[start : start + 1] in ("!", "^"):
                start += 1
            if pattern[start : start + 1] == "]":
                start += 1
            close = pattern.find("]", start)
            if close == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[index + 1 : close]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append(f"[{'^' if negate else ''}{body}]")
                index = close
        elif ch == "{":
            depth = 0
            close = -1
            for pos in range(index, size):
                if pattern[pos] == "{":
                    depth += 1
                elif pattern[pos] == "}":
                    depth -= 1
                    if depth == 0:
                        close = pos
                        break
            if close == -1:
                out.append(re.escape(ch))
            else:
                alternatives = _split_top_level(pattern[index + 1 : close])
                out.append("(?:" + "|".join(_translate(alt) for alt in alternatives) + ")")
                index = close
        elif ch == "\\" and index + 1 < size:
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(ch))
        index += 1
    return "".join(out)


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob pattern into a regex to be used with fullmatch."""
    return re.compile(_translate(pattern), re.DOTALL)


class GlobMatcher:
    """Matches relative posix paths: basename anywhere when the pattern has no '/', else the whole path."""

    def __init__(self, pattern: str, anchored: bool | None = None) -> None:
        pattern = pattern.strip()
        while pattern.startswith("./"):
            pattern = pattern[2:]
        self.pattern = pattern
        self.anchored = ("/" in pattern) if anchored is None else anchored
        self.regex = glob_to_regex(pattern)

    def matches(self, rel: str) -> bool:
        if self.anchored:
            return self.regex.fullmatch(rel) is not None
        return self.regex.fullmatch(rel.rsplit("/", 1)[-1]) is not None


# --------------------------------------------------------------------------- ignore files


@dataclass(frozen=True)
class IgnoreRule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    anchored: bool


def parse_ignore_lines(lines: list[str]) -> list[IgnoreRule]:
    rules: list[IgnoreRule] = []
    for raw in lines:
        line = raw.rstrip("\n").rstrip("\r")
        if not line.endswith("\\ "):
            line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = False
        if line.startswith("!"):
            negate = True
            line = line[1:]
        elif line.startswith(("\\!", "\\#")):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        if line.startswith("**/"):
            # "**/x" matches x at any depth, exactly like an unanchored "x" — unless more slashes follow
            if "/" not in line[3:]:
                anchored = False
                line = line[3:]
        rules.append(IgnoreRule(glob_to_regex(line), negate, dir_only, anchored))
    return rules


class IgnoreRules:
    """Rule sets from ignore files, each tied to the directory (relative to `base`) holding it."""

    def __init__(self, base: Path) -> None:
        self.base = base
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
        collected: list[IgnoreRule] = []
        for name in IGNORE_FILES:
            try:
                text = (directory / name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            collected.extend(parse_ignore_lines(text.splitlines()))
        if collected:
            self._sets.append((rel, collected))
            self._sets.sort(key=lambda item: item[0].count("/") + (1 if item[0] else 0))

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
        result = False
        for directory, rules in self._sets:
            if directory:
                if not rel.startswith(directory + "/"):
                    continue
                sub = rel[len(directory) + 1 :]
            else:
                sub = rel
            name = sub.rsplit("/", 1)[-1]
            for rule in rules:
                if rule.dir_only and not is_dir:
                    continue
                target = sub if rule.anchored else name
                if rule.regex.fullmatch(target):
                    result = not rule.negate
        return result


# --------------------------------------------------------------------------- walking


def walk_files(
    root: Path,
    *,
    base: Path | None = None,
    gitignore: bool = True,
    skip_hidden: bool = False,
    skip_dirs: frozenset[str] = ALWAYS_SKIP_DIRS,
) -> Iterator[tuple[Path, os.stat_result]]:
    """Yield (file path, stat) under root, pruning skipped/hidden/ignored directories.

    `base` is where ignore files start applying (normally the working directory); ignore files between
    base and root are honoured too. The root itself is never ignored.
    """
    base = base if base is not None else root
    try:
        root.relative_to(base)
    except ValueError:
        base = root
    rules = IgnoreRules(base) if gitignore else None
    if rules is not None:
        rules.load_ancestors(root)
    root_rel = root.relative_to(base).as_posix()
    # (directory, its posix path relative to base): entries' relative paths are built by joining names
    stack = [(root, "" if root_rel == "." else root_rel)]
    while stack:
        directory, dir_rel = stack.pop()
        if rules is not None:
            rules.load_dir(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        subdirs: list[tuple[Path, str]] = []
        for entry in entries:
            name = entry.name
            if skip_hidden and name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir and name in skip_dirs:
                continue
            rel = f"{dir_rel}/{name}" if dir_rel else name
            if rules is not None and rules.ignored(rel, is_dir):
                continue
            if is_dir:
                subdirs.append((Path(entry.path), rel))
                continue
            try:
                info = entry.stat()  # follows symlinks to files
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):  # regular files, directly or through a link
                yield Path(entry.path), info
        stack.extend(sorted(subdirs, reverse=True))


def split_literal_prefix(pattern: str) -> tuple[str, str]:
    """Split 'src/app/**/*.py' into ('src/app', '**/*.py'); the prefix has no glob characters."""
    parts = pattern.split("/")
    literal: list[str] = []
    for part in parts[:-1]:
        if any(ch in GLOB_CHARS for ch in part):
            break
        literal.append(part)
    rest = "/".join(parts[len(literal) :])
    return "/".join(literal), rest


def search_root(ctx: ToolContext, raw: str) -> Path:
    root = ctx.resolve_path(raw) if raw else ctx.root()
    if not root.exists():
        raise ToolError(f"Path not found: {raw}")
    return root


class GlobTool:
    name = "glob"
    description = GLOB_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Glob pattern, e.g. **/*.py or src/**/*.{ts,tsx}"},
            "path": {"type": "string", "description": "Directory to search in (default: working directory)"},
            "head_limit": {"type": "integer", "description": "Maximum number of results (default 100)"},
            "offset": {"type": "integer", "description": "Number of results to skip (for paging)"},
        },
        "required": ["pattern"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = str_arg(args, "pattern", required=True).strip()
        if not pattern:
            raise ToolError("pattern is required")
        raw_path = str_arg(args, "path").strip()
        limit = int_arg(args, "head_limit", DEFAULT_LIMIT, minimum=1, maximum=1000)
        offset = int_arg(args, "offset", 0, minimum=0)

        while pattern.startswith("./"):
            pattern = pattern[2:]
        if pattern.startswith("/"):
            prefix, rest = split_literal_prefix(pattern)
            raw_path = prefix or "/"
            pattern = rest
        root = search_root(ctx, raw_path)
        if not root.is_dir():
            raise ToolError(f"{display_path(root, ctx)} is not a directory")
        anchored = "/" in pattern
        prefix, rest = split_literal_prefix(pattern)
        if prefix:
            narrowed = (root / prefix).resolve()
            if not narrowed.is_dir():
                return ToolResult(content="No files found", metadata={"count": 0, "truncated": False})
            root = ctx.resolve_path(str(narrowed))
            pattern = rest
        matcher = GlobMatcher(pattern, anchored=anchored)
        base = ctx.root()

        def collect() -> list[tuple[float, str]]:
            found: list[tuple[float, str]] = []
            for path, info in walk_files(root, base=base):
                rel = path.relative_to(root).as_posix()
                if matcher.matches(rel):
                    found.append((info.st_mtime, display_path(path, ctx)))
            found.sort(key=lambda item: (-item[0], item[1]))
            return found

        found = await asyncio.to_thread(collect)
        total = len(found)
        if total == 0:
            return ToolResult(content="No files found", metadata={"count": 0, "truncated": False})
        page = found[offset : offset + limit]
        if not page:
            return ToolResult(
                content=f"No more files: offset {offset} is past the {total} matches",
                metadata={"count": total, "truncated": False},
            )
        lines = [name for _mtime, name in page]
        truncated = offset + len(page) < total
        if truncated:
            lines.append(
                f"\n(Showing results {offset + 1}-{offset + len(page)} of {total}, newest first. Use "
                f"offset={offset + len(page)} for more, or a more specific pattern/path.)"
            )
        return ToolResult(
            content="\n".join(lines),
            metadata={"count": total, "shown": len(page), "offset": offset, "truncated": truncated},
        )
