"""The Skill record shared by every module of the plugin."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKILL_FILE = "SKILL.md"
# Prefix of the installer's temporary directories inside a skills root (never discovered as skills).
STAGING_PREFIX = ".pando-staging-"
# Directories never entered while walking a root or a skill (VCS data, dependency trees, caches).
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a skill name (it becomes a directory name), or None when it is fine."""
    if not name or not name.strip():
        return "skill name is empty"
    if name != name.strip():
        return f"skill name {name!r} has leading or trailing whitespace"
    if "/" in name or "\\" in name:
        return f"skill name {name!r} contains a path separator"
    if ".." in name:
        return f"skill name {name!r} contains '..'"
    if name.startswith("."):
        return f"skill name {name!r} starts with '.'"
    if _CONTROL.search(name):
        return f"skill name {name!r} contains control characters"
    return None


def path_inside(path: str, root: str) -> bool:
    """True when the (already real) `path` is `root` or below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def estimate_tokens(text: str) -> int:
    """The rough token count used for the activation budget: ceil(len(trimmed text) / 4)."""
    return math.ceil(len(text.strip()) / 4)


def type_name(value: Any) -> str:
    """`value`'s type for an error message: "a string", "a list", "a mapping" ..."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def split_triggers(when_to_use: str) -> list[str]:
    """The comma-separated triggers of a `when-to-use` value, trimmed, empty ones dropped."""
    return [part.strip() for part in when_to_use.split(",") if part.strip()]


@dataclass
class Skill:
    """One parsed SKILL.md.

    `path` is the SKILL.md file, `root` the skill directory (resources are addressed relative to it),
    `source_root` the discovery root it was found under (None when parsed directly).
    `metadata` holds every front-matter key this plugin does not interpret (plus the entries of a
    `metadata:` mapping, Agent Skills style).
    """

    name: str
    description: str
    body: str
    path: Path
    root: Path
    source_root: Path | None = None
    when_to_use: str = ""
    when_not_to_use: str = ""
    disable_model_invocation: bool = False
    user_invocable: bool = True
    version: str | None = None
    license: str | None = None
    author: str | None = None
    compatibility: str | None = None
    context: str | None = None
    allowed_tools: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def triggers(self) -> list[str]:
        return split_triggers(self.when_to_use)

    @property
    def tokens(self) -> int:
        """Estimated tokens of the body (what activation costs in the budget)."""
        return estimate_tokens(self.body)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (used by `pando skills list --json` and the web API)."""
        return {
            "name": self.name,
            "description": self.description,
            "when_to_use": self.when_to_use,
            "triggers": self.triggers,
            "when_not_to_use": self.when_not_to_use,
            "disable_model_invocation": self.disable_model_invocation,
            "user_invocable": self.user_invocable,
            "version": self.version,
            "license": self.license,
            "author": self.author,
            "compatibility": self.compatibility,
            "context": self.context,
            "allowed_tools": list(self.allowed_tools),
            "metadata": _jsonable(self.metadata),
            "path": str(self.path),
            "root": str(self.root),
            "source_root": str(self.source_root) if self.source_root is not None else None,
            "tokens": self.tokens,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # dates and other YAML scalars
