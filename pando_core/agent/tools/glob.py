"""The `glob` tool, plus the directory walker shared by glob, grep and ls.

Shared helpers:
* `glob_to_regex` — `*`, `?`, `[...]`, `{a,b}` and `**` (any number of directories).
* `IgnoreRules` (from pando_core.ignore) — .gitignore / .pandoignore rules with git's semantics (the
  same rules the snapshot service uses; braces are literal there, unlike in search patterns).
* `walk_files` — a pruned walk that never enters .git, node_modules or .pando.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import ToolContext, ToolError, ToolResult
from pando_core.agent.tools.write import display_path, int_arg, str_arg
from pando_core.ignore import IgnoreRules, class_end, translate_glob

ALWAYS_SKIP_DIRS = frozenset({".git", "node_modules", ".pando"})
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
    """The regex of a search pattern: git's glob syntax (`translate_glob`), plus `{a,b}`
    alternatives, which may nest and hold any glob syntax."""
    out: list[str] = []
    plain = index = 0  # plain: where the text not translated yet starts
    while index < len(pattern):
        ch = pattern[index]
        close = -1
        if ch == "\\":
            index += 2
            continue
        if ch == "[":
            close = class_end(pattern, index)
        elif ch == "{" and (close := _brace_end(pattern, index)) != -1:
            alternatives = _split_top_level(pattern[index + 1 : close])
            out.append(translate_glob(pattern[plain:index]))
            out.append("(?:" + "|".join(_translate(alt) for alt in alternatives) + ")")
            plain = close + 1
        index = max(index, close) + 1
    out.append(translate_glob(pattern[plain:]))
    return "".join(out)


def _brace_end(pattern: str, start: int) -> int:
    """Where the ``{`` at *start* is closed, nested braces counted (-1: it is not)."""
    depth = 0
    for pos in range(start, len(pattern)):
        if pattern[pos] == "{":
            depth += 1
        elif pattern[pos] == "}":
            depth -= 1
            if depth == 0:
                return pos
    return -1


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
    """Compile a search pattern into a regex to be used with fullmatch.

    Only for the tools' own patterns: `{a,b}` is an alternation here, while ignore files follow git,
    where braces are literal (see pando_core.ignore)."""
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


# --------------------------------------------------------------------------- walking


def walk_files(
    root: Path,
    *,
    base: Path | None = None,
    skip_hidden: bool = False,
) -> Iterator[tuple[Path, str, os.stat_result]]:
    """Yield (file path, its posix path relative to base, stat) for the files under root, pruning
    skipped/hidden/ignored directories.

    `base` is where ignore files start applying (normally the working directory); ignore files between
    base and root are honoured too. The root itself is never ignored. A root outside base is its own
    base (paths are then relative to it).
    """
    base, root_rel = walk_base(root, base if base is not None else root)
    rules = IgnoreRules(base)
    rules.load_ancestors(root)
    # (directory, its posix path relative to base): entries' relative paths are built by joining names
    stack = [(root, root_rel)]
    while stack:
        directory, dir_rel = stack.pop()
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
            if is_dir and name in ALWAYS_SKIP_DIRS:
                continue
            rel = f"{dir_rel}/{name}" if dir_rel else name
            if rules.ignored(rel, is_dir):
                continue
            if is_dir:
                subdirs.append((Path(entry.path), rel))
                continue
            try:
                info = entry.stat()  # follows symlinks to files
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):  # regular files, directly or through a link
                yield Path(entry.path), rel, info
        stack.extend(sorted(subdirs, reverse=True))


def walk_base(root: Path, base: Path) -> tuple[Path, str]:
    """The base a walk of *root* uses (*base*, or *root* itself when it is outside *base*) and
    root's posix path under it ("" when root is the base)."""
    try:
        rel = root.relative_to(base).as_posix()
    except ValueError:
        return root, ""
    return base, "" if rel == "." else rel


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
    read_only = True
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
        # the pattern applies under root; the walk gives paths relative to base
        root_rel = walk_base(root, base)[1]
        under_root = len(root_rel) + 1 if root_rel else 0

        def collect() -> list[tuple[float, str]]:
            found: list[tuple[float, str]] = []
            for path, rel, info in walk_files(root, base=base):
                if matcher.matches(rel[under_root:]):
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
