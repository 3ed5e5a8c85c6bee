"""Exceptions raised by pando_skills. Every message is one line, ready to show to a user."""

from __future__ import annotations

from pathlib import Path

from pando_core.errors import ConfigError as CoreConfigError


class SkillsError(Exception):
    """Base class of every error this plugin raises on purpose."""


class SkillParseError(SkillsError):
    """A SKILL.md file could not be parsed. The message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class InstallError(SkillsError):
    """Installing, uninstalling or scaffolding a skill failed."""


class CatalogError(SkillsError):
    """The skills catalog could not be reached or answered something unusable."""


class ConfigError(SkillsError, CoreConfigError):
    """The skills configuration section has a wrong key or a wrong type. Also a core ConfigError, so
    `pando` reports it as one line (exit code 2) when the App is built."""
