"""SkillManager: the glue the plugin wiring uses (discovery + per-agent activation + prompt text + tools)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .activation import ActiveSkills, active_section, match_skills, prompt_section
from .config import SkillsConfig
from .discovery import discover_skills
from .model import Skill
from .tools import make_tools


class SkillManager:
    """Holds the discovered skills of one process. Create one per process; call `new_context()` per agent
    (coder / task) and, every user turn, `activate(context, prompt)` then `system_prompt(context)`."""

    def __init__(
        self, workdir: Path | str, home: Path | str | None = None, config: SkillsConfig | None = None
    ):
        self.workdir = Path(workdir)
        self.home = Path(home) if home is not None else Path.home()
        self.config = config or SkillsConfig()
        self._skills: list[Skill] = []
        self._listing = ""  # the "Available Skills" section, built once per discovery

    def reload(self) -> list[str]:
        """(Re)discover the skills; returns the warnings (malformed files, duplicates)."""
        result = discover_skills(self.workdir, self.home, self.config.paths)
        self._skills = result.skills
        self._listing = prompt_section(self._skills, tools=self.config.tools)
        return result.warnings

    def new_context(self, budget_tokens: int | None = None) -> ActiveSkills:
        """Per-agent active-skill set (budget defaults to the configured budget_tokens)."""
        return ActiveSkills(budget_tokens or self.config.budget_tokens, self.config.max_active)

    def activate(self, context: ActiveSkills, prompt: str) -> list[Skill]:
        """Match this turn's (enriched) user text and activate the matches; returns the newly active skills."""
        context.refresh(self._skills)
        return context.update(match_skills(prompt, self._skills, match_names=self.config.match_names))

    def system_prompt(self, context: ActiveSkills | None = None) -> str:
        """The skills list plus the active skill blocks ("" when there are no skills)."""
        parts = [self._listing]
        if context is not None:
            parts.append(active_section(context))
        return "\n\n".join(part for part in parts if part)

    def tools(self) -> list[Any]:
        """skill_read / skill_resource bound to the current skills ([] when `tools` is turned off)."""
        return make_tools(lambda: self._skills) if self.config.tools else []
