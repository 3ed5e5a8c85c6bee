"""Where custom commands are found and how one file is read.

Directories, the first that defines a name wins:
  1. ``<workdir>/.pando/commands/``
  2. ``<workdir>/.claude/commands/``
  3. ``$XDG_CONFIG_HOME/pando/commands/`` (default ``~/.config/pando/commands/``)
  4. ``~/.claude/commands/``

``NAME.md`` is ``/NAME``; a file in a subdirectory, ``frontend/review.md``, is ``/frontend:review``
(and also answers to ``/review`` when no other command has that name, as Claude Code does now).
The optional YAML-style frontmatter between ``---`` lines gives ``description``, ``argument-hint``,
``allowed-tools`` (a comma-separated string or a list) and ``model``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*(:[A-Za-z0-9][\w.-]*)*$")


@dataclass
class CustomCommand:
    name: str  # without the slash: "review", "frontend:review"
    path: Path
    source: str  # project | claude-project | user | claude-user
    body: str
    description: str = ""
    argument_hint: str = ""
    allowed_tools: list[str] = field(default_factory=list)
    model: str = ""

    def summary(self) -> str:
        """What /help shows: the description, else the first line of the prompt."""
        if self.description:
            return self.description
        first = next((line.strip() for line in self.body.splitlines() if line.strip()), "")
        return first[:80]

    def as_dict(self) -> dict:
        return {
            "name": "/" + self.name,
            "source": self.source,
            "path": str(self.path),
            "description": self.summary(),
            "argument_hint": self.argument_hint,
            "allowed_tools": self.allowed_tools,
            "model": self.model,
        }


def command_dirs(workdir: Path, env: Mapping[str, str] | None = None) -> list[tuple[str, Path]]:
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or "~").expanduser()
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return [
        ("project", workdir / ".pando" / "commands"),
        ("claude-project", workdir / ".claude" / "commands"),
        ("user", config_home / "pando" / "commands"),
        ("claude-user", home / ".claude" / "commands"),
    ]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def split_frontmatter(text: str) -> tuple[dict[str, str | list[str]], str]:
    """``key: value`` lines (or a key followed by ``- item`` lines: a list) and the body."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return {}, text
    meta: dict[str, str | list[str]] = {}
    key = None
    for line in lines[1:end]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("- ") and key is not None:
            previous = meta.get(key)
            items = previous if isinstance(previous, list) else []
            meta[key] = [*items, _unquote(stripped[2:])]
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        meta[key] = _unquote(value)  # `argument-hint: [file]` is shown as written
    return meta, "\n".join(lines[end + 1 :]).lstrip("\n")


def split_tools(text: str) -> list[str]:
    """``Bash(git add:*), Bash(git status:*), Read`` → its entries (commas inside parentheses kept)."""
    entries, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            entries.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    entries.append(current)
    return [_unquote(e) for e in entries if e.strip()]


def read_command(path: Path, name: str, source: str) -> CustomCommand:
    meta, body = split_frontmatter(path.read_text(encoding="utf-8", errors="replace"))
    tools = meta.get("allowed-tools") or []
    if isinstance(tools, str) and tools.startswith("[") and tools.endswith("]"):
        tools = tools[1:-1]  # a YAML flow list
    return CustomCommand(
        name=name,
        path=path,
        source=source,
        body=body,
        description=str(meta.get("description") or ""),
        argument_hint=str(meta.get("argument-hint") or ""),
        allowed_tools=split_tools(tools) if isinstance(tools, str) else [str(t) for t in tools],
        model=str(meta.get("model") or ""),
    )


def find_commands(workdir: Path, env: Mapping[str, str] | None = None) -> dict[str, CustomCommand]:
    """Every custom command by name (without the slash), the first directory winning."""
    found: dict[str, CustomCommand] = {}
    for source, directory in command_dirs(workdir, env):
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*.md")):
            relative = path.relative_to(directory).with_suffix("")
            name = ":".join(relative.parts)
            if not NAME_PATTERN.match(name) or name in found or not path.is_file():
                continue
            try:
                found[name] = read_command(path, name, source)
            except OSError:
                continue  # unreadable: as if it were not there
    return found


def lookup(commands: Mapping[str, CustomCommand], name: str) -> CustomCommand | None:
    """``name`` (no slash) exactly, else the one namespaced command whose last part it is."""
    if name in commands:
        return commands[name]
    matches = [c for key, c in commands.items() if key.rsplit(":", 1)[-1] == name]
    return matches[0] if len(matches) == 1 else None
