"""The `grep` tool: search file contents with a regular expression (ripgrep when available)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pando_core.agent.tools.base import ToolContext, ToolError, ToolResult
from pando_core.agent.tools.glob import ALWAYS_SKIP_DIRS, GlobMatcher, search_root, walk_files
from pando_core.agent.tools.view import is_binary_sample
from pando_core.agent.tools.write import bool_arg, display_path, int_arg, str_arg

MAX_RESULTS = 100
MAX_LINE_CHARS = 500
MAX_FILE_BYTES = 20 * 1024 * 1024
RG_TIMEOUT_S = 60.0
RG_HARD_LIMIT = 5000  # matches gathered from rg before sorting; beyond this the result says "truncated"
MODES = ("content", "files_with_matches", "count")

GREP_DESCRIPTION = """Search file contents with a regular expression.

Usage notes:
- `pattern` is a regular expression (e.g. `def \\w+_handler`, `TODO|FIXME`, `log\\.error\\(`); set
  literal_text=true to search for the exact text instead (no need to escape `.`, `(`, `*`...).
- `path`: file or directory to search (default: working directory). `include`: glob filter on file names,
  e.g. `*.py` or `*.{ts,tsx}` (a pattern with `/` filters on the path as results show it, e.g.
  `src/**/*.py`).
- output_mode: `content` (default) shows matching lines grouped by file as `  LINE: text` (with
  `context` > 0, surrounding lines are shown as `  LINE- text`); `files_with_matches` lists only file
  names; `count` gives the number of matching lines per file.
- Files are listed newest first. Hidden files, binary files, .git, node_modules, .pando and files ignored
  by .gitignore/.pandoignore are skipped.
- At most 100 matches (or files) are returned; narrow the pattern, path or include when truncated.
- Use this instead of running grep/rg through bash."""


@dataclass
class FileHits:
    path: str
    lines: list[tuple[int, str, bool]] = field(default_factory=list)  # (number, text, is_match)
    matches: int = 0


@dataclass
class Collector:
    mode: str
    cap: int = MAX_RESULTS
    files: list[FileHits] = field(default_factory=list)
    total_matches: int = 0
    truncated: bool = False

    def full(self) -> bool:
        if self.mode == "content":
            return self.total_matches >= self.cap
        return len(self.files) >= self.cap

    def start_file(self, path: str) -> FileHits | None:
        if self.mode != "content" and self.full():
            self.truncated = True
            return None
        hits = FileHits(path)
        self.files.append(hits)
        return hits

    def add(self, hits: FileHits, number: int, text: str, is_match: bool) -> bool:
        """Record a line; False once the cap is exceeded (the caller should stop)."""
        if is_match:
            if self.mode == "content" and self.full():
                self.truncated = True
                return False
            hits.matches += 1
            self.total_matches += 1
        if self.mode == "content":
            if len(text) > MAX_LINE_CHARS:
                text = text[:MAX_LINE_CHARS] + "..."
            hits.lines.append((number, text, is_match))
        return True


def _include_matcher(include: str) -> GlobMatcher | None:
    include = include.strip()
    return GlobMatcher(include) if include else None


class GrepTool:
    name = "grep"
    read_only = True
    description = GREP_DESCRIPTION
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "pattern": {
                "type": "string",
                "description": "Regular expression (or literal text) to search for",
            },
            "path": {
                "type": "string",
                "description": "File or directory to search (default: working directory)",
            },
            "include": {"type": "string", "description": "Only search files matching this glob, e.g. *.py"},
            "literal_text": {
                "type": "boolean",
                "description": "Treat pattern as literal text instead of a regex (default false)",
            },
            "ignore_case": {"type": "boolean", "description": "Case-insensitive search (default false)"},
            "output_mode": {
                "type": "string",
                "enum": list(MODES),
                "description": "content (default), files_with_matches or count",
            },
            "context": {
                "type": "integer",
                "description": "Lines of context to show around each match in content mode (default 0)",
            },
        },
        "required": ["pattern"],
    }

    def __init__(self, use_ripgrep: bool | None = None) -> None:
        """use_ripgrep: None/True = use rg when found on PATH, False = always the pure-Python search."""
        self.use_ripgrep = use_ripgrep

    def _rg(self) -> str | None:
        if self.use_ripgrep is False:
            return None
        return shutil.which("rg")

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = str_arg(args, "pattern", required=True)
        if not pattern:
            raise ToolError("pattern is required")
        literal = bool_arg(args, "literal_text")
        ignore_case = bool_arg(args, "ignore_case")
        include = str_arg(args, "include")
        mode = str_arg(args, "output_mode", default="content").strip() or "content"
        if mode not in MODES:
            raise ToolError(f"output_mode must be one of {', '.join(MODES)}")
        context = int_arg(args, "context", 0, minimum=0, maximum=20) if mode == "content" else 0
        root = search_root(ctx, str_arg(args, "path").strip())

        flags = re.IGNORECASE if ignore_case else 0
        try:
            regex = re.compile(re.escape(pattern) if literal else pattern, flags)
        except re.error as exc:
            regex = None
            python_error = str(exc)
        else:
            python_error = ""

        collector = Collector(mode)
        rg = self._rg()
        used = "python"
        if rg:
            ok = await self._run_rg(rg, pattern, literal, ignore_case, include, context, root, ctx, collector)
            if ok:
                used = "ripgrep"
            else:
                collector = Collector(mode)
        if used == "python":
            if regex is None:
                raise ToolError(f"Invalid regular expression: {python_error}")
            await asyncio.to_thread(self._python_search, regex, include, context, root, ctx, collector)
        return self._format(collector, mode, used)

    # ------------------------------------------------------------------ ripgrep

    async def _run_rg(
        self,
        rg: str,
        pattern: str,
        literal: bool,
        ignore_case: bool,
        include: str,
        context: int,
        root: Path,
        ctx: ToolContext,
        collector: Collector,
    ) -> bool:
        """Search with ripgrep; False when rg could not handle the request (fall back to Python).

        rg only sorts within each directory, so results are gathered (up to RG_HARD_LIMIT matches), then
        ordered newest file first and cut to the collector's cap here.
        """
        cmd = [rg, "--json", "--no-messages", "--no-require-git"]
        if literal:
            cmd.append("--fixed-strings")
        if ignore_case:
            cmd.append("--ignore-case")
        if context:
            cmd += ["--context", str(context)]
        for skipped in sorted(ALWAYS_SKIP_DIRS):
            cmd += ["--glob", f"!{skipped}"]
        pando_ignore = ctx.root() / ".pandoignore"
        if pando_ignore.is_file():
            cmd += ["--ignore-file", str(pando_ignore)]
        if include.strip():
            cmd += ["--glob", include.strip()]
        cmd += ["--regexp", pattern, "--", str(root)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(ctx.workdir),
                limit=16 * 1024 * 1024,
            )
        except OSError:
            return False
        assert proc.stdout is not None and proc.stderr is not None
        gathered: list[tuple[Path, FileHits]] = []
        current: FileHits | None = None
        total = 0
        stopped = False
        stderr = b""
        try:
            async with asyncio.timeout(RG_TIMEOUT_S):
                while True:
                    line = await proc.stdout.readline()
                    if not line:
                        break
                    try:
                        message = json.loads(line)
                    except ValueError:
                        continue
                    kind = message.get("type")
                    data = message.get("data") or {}
                    if kind == "begin":
                        path = Path(_rg_text(data.get("path")))
                        current = FileHits(str(path))
                        gathered.append((path, current))
                    elif kind in ("match", "context") and current is not None:
                        text = _rg_text(data.get("lines")).rstrip("\n").rstrip("\r")
                        number = int(data.get("line_number") or 0)
                        for offset, part in enumerate(text.split("\n")):
                            current.lines.append((number + offset, part, kind == "match"))
                            if kind == "match":
                                current.matches += 1
                                total += 1
                    if total > RG_HARD_LIMIT:
                        stopped = True
                        break
                if not stopped:
                    stderr = await proc.stderr.read()
                    await proc.wait()
        except TimeoutError:
            stopped = True
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
        if not stopped and proc.returncode == 2 and total == 0:
            message = stderr.decode("utf-8", "replace").lower()
            if "regex" in message or "error" in message:
                return False  # e.g. look-around: Python's re may support it
        gathered = [(path, hits) for path, hits in gathered if hits.matches]
        gathered.sort(key=lambda item: (-_mtime(item[0]), str(item[0])))
        for path, hits in gathered:
            target = collector.start_file(display_path(path, ctx))
            if target is None:
                break
            for number, text, is_match in hits.lines:
                if not collector.add(target, number, text, is_match):
                    break
            if collector.truncated:
                break
        if stopped:
            collector.truncated = True
        return True

    # ------------------------------------------------------------------ pure Python

    @staticmethod
    def _python_search(
        regex: re.Pattern[str],
        include: str,
        context: int,
        root: Path,
        ctx: ToolContext,
        collector: Collector,
    ) -> None:
        matcher = _include_matcher(include)
        base = ctx.root()
        if root.is_file():
            candidates = [(root, root.stat())]
        else:
            candidates = []
            # an include is matched against the path the result shows (relative to the working
            # directory), as ripgrep matches its globs
            for path, rel, info in walk_files(root, base=base, skip_hidden=True):
                if matcher is not None and not matcher.matches(rel):
                    continue
                candidates.append((path, info))
            candidates.sort(key=lambda item: (-item[1].st_mtime, str(item[0])))
        for path, info in candidates:
            if info.st_size > MAX_FILE_BYTES:
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if is_binary_sample(data[:8192]):
                continue
            lines = data.decode("utf-8", "replace").splitlines()
            hit_numbers = [n for n, line in enumerate(lines) if regex.search(line)]
            if not hit_numbers:
                continue
            hits = collector.start_file(display_path(path, ctx))
            if hits is None:
                return
            shown: set[int] = set()
            for n in hit_numbers:
                for k in range(max(0, n - context), min(len(lines), n + context + 1)):
                    shown.add(k)
            hit_set = set(hit_numbers)
            for k in sorted(shown):
                if not collector.add(hits, k + 1, lines[k], k in hit_set):
                    return

    # ------------------------------------------------------------------ output

    @staticmethod
    def _format(collector: Collector, mode: str, used: str) -> ToolResult:
        files = [hits for hits in collector.files if hits.matches]
        metadata = {
            "matches": collector.total_matches,
            "files": len(files),
            "truncated": collector.truncated,
            "engine": used,
        }
        if not files:
            return ToolResult(content="No matches found", metadata=metadata)
        out: list[str] = []
        if mode == "files_with_matches":
            out.append(f"Found {len(files)} file(s)")
            out.extend(hits.path for hits in files)
        elif mode == "count":
            out.append(f"Found {collector.total_matches} matching line(s) in {len(files)} file(s)")
            out.extend(f"{hits.path}: {hits.matches}" for hits in files)
        else:
            out.append(f"Found {collector.total_matches} match(es) in {len(files)} file(s)")
            for hits in files:
                out.append("")
                out.append(f"{hits.path}:")
                previous = None
                for number, text, is_match in hits.lines:
                    if previous is not None and number > previous + 1:
                        out.append("  --")
                    out.append(f"  {number}{':' if is_match else '-'} {text}")
                    previous = number
        if collector.truncated:
            unit = "matches" if mode == "content" else "files"
            out.append("")
            out.append(
                f"(Results are truncated: showing the first {MAX_RESULTS} {unit}. Use a more specific "
                "pattern, path or include filter.)"
            )
        return ToolResult(content="\n".join(out), metadata=metadata)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _rg_text(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    if "text" in value:
        return str(value["text"])
    if "bytes" in value:
        try:
            return base64.b64decode(value["bytes"]).decode("utf-8", "replace")
        except (ValueError, TypeError):
            return ""
    return ""
