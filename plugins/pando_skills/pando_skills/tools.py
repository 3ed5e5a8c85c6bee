"""Agent tools `skill_read` and `skill_resource` (core Tool protocol; on unless `[skills] tools = false`)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from pando_core.agent.tools.base import ToolContext, ToolError, ToolResult

from .model import SKILL_FILE, SKIP_DIRS, Skill, path_inside

SkillsProvider = Callable[[], Iterable[Skill] | Mapping[str, Skill]]

MAX_RESOURCE_BYTES = 256 * 1024
MAX_LISTED_RESOURCES = 200


def _as_list(skills: Iterable[Skill] | Mapping[str, Skill]) -> list[Skill]:
    if isinstance(skills, Mapping):
        return list(skills.values())
    return list(skills)


def find_skill(skills: Iterable[Skill], name: str) -> Skill | None:
    """Exact name first, then a case-insensitive match."""
    skills = list(skills)
    for skill in skills:
        if skill.name == name:
            return skill
    lowered = name.strip().lower()
    for skill in skills:
        if skill.name.lower() == lowered:
            return skill
    return None


def unknown_skill_message(name: str, skills: Iterable[Skill]) -> str:
    names = sorted(skill.name for skill in skills)
    if not names:
        return f"Unknown skill '{name}': no skills are available"
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=0.5)
    close += [
        n.lower() for n in names if name.lower() and name.lower() in n.lower() and n.lower() not in close
    ]
    if close:
        suggestions = ", ".join(lowered[c] for c in close[:5])
        return f"Unknown skill '{name}'. Did you mean: {suggestions}?"
    shown = ", ".join(names[:20]) + (", …" if len(names) > 20 else "")
    return f"Unknown skill '{name}'. Available skills: {shown}"


def resolve_resource(skill: Skill, raw: str) -> Path:
    """The real path of resource `raw` of `skill`. Refuses absolute paths, `..` components and paths
    (including symlinks) that resolve outside the skill directory."""
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("path is required")
    raw = raw.strip()
    if "\x00" in raw:
        raise ToolError("path contains a NUL character")
    if raw.startswith(("/", "\\", "~")) or PureWindowsPath(raw).drive or PurePosixPath(raw).is_absolute():
        raise ToolError(f"Absolute paths are not allowed: {raw} (use a path relative to the skill directory)")
    parts = raw.replace("\\", "/").split("/")
    if ".." in parts:
        raise ToolError(f"Path {raw} escapes the skill directory ('..' is not allowed)")
    root = os.path.realpath(skill.root)
    target = os.path.realpath(os.path.join(root, *[part for part in parts if part not in ("", ".")]))
    if not path_inside(target, root):
        raise ToolError(f"Path {raw} resolves outside the skill directory")
    return Path(target)


def list_resources(skill: Skill, limit: int = MAX_LISTED_RESOURCES) -> tuple[list[str], bool]:
    """Relative paths (posix) of the files of a skill besides SKILL.md, sorted; symlinks that leave the
    skill directory are left out. Returns (paths, truncated)."""
    root = os.path.realpath(skill.root)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS and path_inside(os.path.realpath(os.path.join(dirpath, d)), root)
        )
        for filename in sorted(filenames):
            full = os.path.join(dirpath, filename)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel == SKILL_FILE or not path_inside(os.path.realpath(full), root):
                continue
            found.append(rel)
            if len(found) > limit:
                return sorted(found)[:limit], True
    return sorted(found), False


def read_resource(skill: Skill, raw: str, max_bytes: int = MAX_RESOURCE_BYTES) -> tuple[str, dict[str, Any]]:
    """(text, metadata) of a resource file, truncated to `max_bytes` with a note."""
    target = resolve_resource(skill, raw)
    if not target.exists():
        raise ToolError(f"Skill '{skill.name}' has no file {raw}")
    if not target.is_file():
        raise ToolError(f"{raw} is not a file in skill '{skill.name}'")
    try:
        size = target.stat().st_size
        with target.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ToolError(f"Cannot read {raw}: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise ToolError(f"{raw} is a binary file ({size} bytes); only text resources can be read")
    truncated = len(data) > max_bytes
    text = data[:max_bytes].decode("utf-8", errors="replace")
    if truncated:
        text += f"\n\n[truncated: {raw} is {size} bytes, showing the first {max_bytes}]"
    return text, {"skill": skill.name, "path": str(target), "size": size, "truncated": truncated}


class _SkillTool:
    read_only = True  # reads skill files only: never asks permission

    def __init__(self, get_skills: SkillsProvider, max_bytes: int = MAX_RESOURCE_BYTES) -> None:
        self._get_skills = get_skills
        self.max_bytes = max_bytes

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        # the agent loop turns a ToolError into an error result too; callers of run() get a result
        try:
            return self._run(self._lookup(args), args)
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)

    def _run(self, skill: Skill, args: dict[str, Any]) -> ToolResult:
        raise NotImplementedError

    def _lookup(self, args: dict[str, Any]) -> Skill:
        """The skill named by ``args["name"]``; a ToolError (shown to the model) when there is none."""
        from pando_core.agent.tools.write import str_arg  # write.py imports asyncio

        name = str_arg(args, "name").strip()
        if not name:
            raise ToolError("name is required (the skill name)")
        skills = _as_list(self._get_skills())
        skill = find_skill(skills, name)
        if skill is None:
            raise ToolError(unknown_skill_message(name, skills))
        return skill


class SkillReadTool(_SkillTool):
    """`skill_read(name)`: the instructions (SKILL.md body) of a skill plus the list of its resource files."""

    name = "skill_read"
    description = (
        "Read the full instructions of a skill listed under Available Skills, and the list of its resource "
        "files (read those with skill_resource). Follow the instructions when they apply to the task."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"name": {"type": "string", "description": "The skill name, as listed"}},
        "required": ["name"],
    }

    def _run(self, skill: Skill, args: dict[str, Any]) -> ToolResult:
        body = skill.body.strip()
        if len(body.encode("utf-8")) > self.max_bytes:
            body = body.encode("utf-8")[: self.max_bytes].decode("utf-8", errors="ignore")
            body += "\n\n[truncated]"
        resources, more = list_resources(skill)
        parts = [
            f"# Skill: {skill.name}",
            f"Directory: {skill.root}",
            "",
            body or "(this skill has no instructions)",
        ]
        if resources:
            parts += ["", "## Resource files (read with skill_resource)", *[f"- {r}" for r in resources]]
            if more:
                parts.append(f"- … (more than {MAX_LISTED_RESOURCES} files)")
        return ToolResult(
            "\n".join(parts),
            metadata={"skill": skill.name, "path": str(skill.path), "resources": resources},
        )


class SkillResourceTool(_SkillTool):
    """`skill_resource(name, path)`: the text of one file of a skill, by path relative to its directory."""

    name = "skill_resource"
    description = (
        "Read a resource file of a skill (scripts/, references/, assets/ …) by its path relative to the "
        "skill directory, as listed by skill_read."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The skill name"},
            "path": {"type": "string", "description": "File path relative to the skill directory"},
        },
        "required": ["name", "path"],
    }

    def _run(self, skill: Skill, args: dict[str, Any]) -> ToolResult:
        from pando_core.agent.tools.write import str_arg

        text, metadata = read_resource(skill, str_arg(args, "path"), self.max_bytes)
        return ToolResult(text, metadata=metadata)


def make_tools(get_skills: SkillsProvider, max_bytes: int = MAX_RESOURCE_BYTES) -> list[Any]:
    """Both tools, sharing the provider of the current skills."""
    return [SkillReadTool(get_skills, max_bytes), SkillResourceTool(get_skills, max_bytes)]
