"""The `ls` tool: a tree listing of a directory."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import ToolContext, ToolError, ToolResult
from pando_core.agent.tools.glob import GlobMatcher, search_root
from pando_core.agent.tools.write import display_path, list_arg, str_arg

MAX_ENTRIES = 1000
SKIP_DIRS = frozenset(
    {"__pycache__", "node_modules", "dist", "build", "target", "vendor", "bin", "obj", ".git", ".pando"}
)
BINARY_SUFFIXES = frozenset(
    {
        ".pyc",
        ".pyo",
        ".so",
        ".dll",
        ".dylib",
        ".exe",
        ".o",
        ".obj",
        ".a",
        ".lib",
        ".class",
        ".jar",
        ".wasm",
    }
)

LS_DESCRIPTION = """List files and directories as a tree.

Usage notes:
- `path`: the directory to list (default: the working directory).
- `ignore`: optional list of glob patterns to leave out (e.g. ["*.log", "tmp/**"]).
- Hidden entries (starting with '.'), build/dependency directories (__pycache__, node_modules, dist,
  build, target, vendor, bin, obj) and compiled binaries (.pyc, .so, .o, .exe, ...) are not shown.
- At most 1000 entries are listed (breadth first, so the top levels are always complete); list a
  subdirectory or use `glob` for more detail."""


class LsTool:
    name = "ls"
    read_only = True
    description = LS_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Directory to list (default: working directory)"},
            "ignore": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Glob patterns of entries to leave out",
            },
        },
        "required": [],
    }

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        root = search_root(ctx, str_arg(args, "path").strip())
        if not root.is_dir():
            raise ToolError(f"{display_path(root, ctx)} is not a directory")
        matchers = [GlobMatcher(pattern) for pattern in list_arg(args, "ignore")]
        entries, truncated = await asyncio.to_thread(self._collect, root, matchers)
        tree = self._render(root, entries)
        header = f"- {root}/"
        body = "\n".join([header, *tree]) if tree else f"{header}\n  (empty)"
        if truncated:
            body = (
                f"There are more than {self.max_entries} entries in {display_path(root, ctx)}; showing the "
                f"first {self.max_entries} (breadth first). List a subdirectory or use glob to see more.\n\n"
                + body
            )
        return ToolResult(
            content=body,
            metadata={"count": len(entries), "truncated": truncated, "path": str(root)},
        )

    def _collect(self, root: Path, matchers: list[GlobMatcher]) -> tuple[list[tuple[str, bool]], bool]:
        entries: list[tuple[str, bool]] = []  # (relative posix path, is_dir)
        queue: deque[Path] = deque([root])
        truncated = False
        while queue:
            directory = queue.popleft()
            try:
                children = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError:
                continue
            for child in children:
                name = child.name
                if name.startswith("."):
                    continue
                try:
                    is_dir = child.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir and name in SKIP_DIRS:
                    continue
                if not is_dir and Path(name).suffix.lower() in BINARY_SUFFIXES:
                    continue
                rel = Path(child.path).relative_to(root).as_posix()
                if any(m.matches(rel) or (is_dir and m.matches(rel + "/")) for m in matchers):
                    continue
                if len(entries) >= self.max_entries:
                    truncated = True
                    return entries, truncated
                entries.append((rel, is_dir))
                if is_dir:
                    queue.append(Path(child.path))
        return entries, truncated

    @staticmethod
    def _render(root: Path, entries: list[tuple[str, bool]]) -> list[str]:
        children: dict[str, list[tuple[str, bool]]] = {}
        for rel, is_dir in entries:
            parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
            children.setdefault(parent, []).append((rel, is_dir))
        lines: list[str] = []

        def emit(parent: str, depth: int) -> None:
            for rel, is_dir in sorted(children.get(parent, []), key=lambda item: item[0].rsplit("/", 1)[-1]):
                name = rel.rsplit("/", 1)[-1]
                lines.append(f"{'  ' * depth}- {name}{'/' if is_dir else ''}")
                if is_dir:
                    emit(rel, depth + 1)

        emit("", 1)
        return lines
