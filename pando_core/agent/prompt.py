"""The system prompt: core sections, project context files, plugin sections, and the prompt pipeline."""

from __future__ import annotations

import datetime
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .context_files import MAX_CONTEXT_FILE_CHARS, find_context_files

__all__ = ["MAX_CONTEXT_FILE_CHARS", "PromptSection", "build_system_prompt", "context_files_section"]

IDENTITY = """You are Pando, an AI coding assistant working in the user's terminal.
Help with software engineering tasks: read code, run commands, edit files, explain.
Be concise. Prefer doing over describing: use the tools to inspect and change the project.
Before changing a file, view it. Make the smallest change that solves the task, then verify it
(run the tests or the program) when you can. Never invent file contents or command output."""

TOOL_GUIDANCE = """Tool use:
- Paths are relative to the working directory unless absolute.
- Use glob/grep/ls/view to explore; edit for small changes (old_string must match exactly once),
  write for new files, patch for multi-file changes, bash for commands (tests, builds, git).
- A tool result marked as an error tells you what went wrong; fix the call rather than repeating it.
- If a permission is denied, do not retry the same action; explain what you needed."""


@dataclass
class PromptSection:
    name: str
    text: str
    order: int = 100


def environment_section(workdir: Path) -> PromptSection:
    is_git = (workdir / ".git").exists()
    text = (
        "<env>\n"
        f"Working directory: {workdir}\n"
        f"Is a git repository: {'yes' if is_git else 'no'}\n"
        f"Platform: {platform.system().lower()}\n"
        f"Today's date: {datetime.date.today().isoformat()}\n"
        "</env>"
    )
    return PromptSection("environment", text, order=20)


def context_files_section(
    workdir: Path, names: list[str], *, env: Mapping[str, str] | None = None, global_file: str | None = None
) -> PromptSection | None:
    """The instruction files :func:`find_context_files` picks, global first, the workdir's last."""
    chunks = []
    for found in find_context_files(workdir, names, env=env, global_file=global_file):
        content = found.read().strip()
        if content:
            chunks.append(f"<file path=\"{found.shown}\">\n{content}\n</file>")
    if not chunks:
        return None
    return PromptSection("project_context", "Project instructions from the repository:\n" + "\n".join(chunks), 40)


def _normalise(item: Any) -> PromptSection | None:
    if isinstance(item, PromptSection):
        return item
    if isinstance(item, tuple | list) and len(item) == 2:
        return PromptSection(str(item[0]), str(item[1]))
    return None


async def build_system_prompt(app: Any, session_id: str, prompt: str, tools: list) -> tuple[str, list]:
    """Assemble the system prompt and the tools left after capability checks."""
    plugins = app.plugins
    kept_tools = []
    for tool in tools:
        enabled = await plugins.hooks.pando_check_capability.acall(enabled=True, app=app, capability=tool.name)
        if enabled:
            kept_tools.append(tool)

    sections = [
        PromptSection("identity", IDENTITY, order=0),
        environment_section(app.workdir),
        PromptSection("tools", TOOL_GUIDANCE, order=30),
    ]
    agent = app.config.section("agent")
    context = context_files_section(
        app.workdir, agent.get("context_files") or [], global_file=agent.get("global_context_file")
    )
    if context:
        sections.append(context)
    for result in await plugins.hooks.pando_system_prompt_sections.acall(app=app, session_id=session_id, prompt=prompt):
        for item in result if isinstance(result, list) else [result]:
            section = _normalise(item)
            if section is not None:
                sections.append(section)
    sections.sort(key=lambda s: s.order)

    filtered = []
    for section in sections:
        text = await plugins.hooks.pando_filter_prompt_section.acall(
            text=section.text, app=app, name=section.name, session_id=session_id
        )
        if text:
            filtered.append(PromptSection(section.name, str(text), section.order))
    composed = await plugins.hooks.pando_compose_prompt.acall(sections=filtered, app=app)
    composed = [s for s in (_normalise(item) for item in composed) if s is not None and s.text]
    text = "\n\n".join(section.text for section in composed)
    text = await plugins.hooks.pando_filter_system_prompt.acall(prompt=text, app=app, session_id=session_id)
    return str(text), kept_tools
