"""Where shell hooks are defined and how a definition is read.

The shape is Claude Code's, in TOML or JSON: event name → list of matcher groups, each
``{matcher, hooks: [{type = "command", command, timeout}]}``. Definitions from every source add
up (pando's config files first, then ``~/.claude/settings.json``, ``.claude/settings.json`` and
``.claude/settings.local.json``);
the same command listed twice for one event runs once.

A matcher is a regular expression matched against the whole tool name, tried with pando's name
(``bash``) and Claude Code's (``Bash``); ``""``, ``"*"`` or no matcher match every tool. For
SessionStart the matcher is tried against the source (``startup``, ``resume``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

EVENTS = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "SessionStart", "SessionEnd")
DEFAULT_TIMEOUT_S = 60.0
CLAUDE_SETTINGS = (".claude/settings.json", ".claude/settings.local.json")


def claude_settings_hooks(workdir: Path, *, strict: bool) -> Iterator[tuple[Path, Any]]:
    """``(path, hooks)`` of each Claude Code settings file that exists, in Claude Code's order: the
    user's (``~/.claude/settings.json``), then the project's shared and local ones; their hooks add
    up. *strict*: a file that is not valid JSON is a ConfigError, else it is skipped."""
    for path in (Path.home() / ".claude" / "settings.json", *(workdir / name for name in CLAUDE_SETTINGS)):
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            if strict:
                raise ConfigError(f"{path}: not valid JSON: {exc}") from None
            continue
        yield path, data.get("hooks") if isinstance(data, dict) else None


@dataclass(frozen=True)
class HookCommand:
    command: str
    timeout_s: float
    source: str  # the file it was defined in


@dataclass
class MatcherGroup:
    matcher: str
    commands: list[HookCommand]
    pattern: re.Pattern[str] | None = None  # None: matches everything

    def matches(self, *names: str) -> bool:
        if self.pattern is None:
            return True
        return any(self.pattern.fullmatch(name) for name in names if name)


@dataclass
class HookSet:
    """Every configured hook, by event."""

    groups: dict[str, list[MatcherGroup]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # definitions skipped (events, types pando lacks)

    def commands_for(self, event: str, *names: str) -> list[HookCommand]:
        chosen: dict[str, HookCommand] = {}
        for group in self.groups.get(event, []):
            if group.matches(*names):
                for command in group.commands:
                    chosen.setdefault(command.command, command)
        return list(chosen.values())

    def __bool__(self) -> bool:
        return any(self.groups.values())


def _compile(matcher: str, where: str) -> re.Pattern[str] | None:
    if matcher in ("", "*"):
        return None
    try:
        return re.compile(matcher)
    except re.error as exc:
        raise ConfigError(f"{where}: the hook matcher {matcher!r} is not a valid regular expression: {exc}") from None


def _timeout(value: Any, where: str) -> float:
    if value is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: a hook's timeout must be a positive number of seconds, got {value!r}")
    return float(value)


def parse_hooks(data: Any, source: str, into: HookSet) -> None:
    """Add the definitions of one source (the value of its ``hooks`` key) to *into*."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: hooks must be a table of events, got {type(data).__name__}")
    for event, groups in data.items():
        where = f"{source}: hooks.{event}"
        if event not in EVENTS:  # Claude Code has more (Notification, PreCompact...): skipped, said once
            into.warnings.append(f"{where}: pando has no such hook event (it has {', '.join(EVENTS)}); ignored")
            continue
        if not isinstance(groups, list):
            raise ConfigError(f"{where} must be a list of {{matcher, hooks}} groups")
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                raise ConfigError(f"{where}: each group needs a 'hooks' list of commands")
            matcher = str(group.get("matcher") or "")
            commands = []
            for hook in group["hooks"]:
                if isinstance(hook, dict) and hook.get("type", "command") != "command":
                    into.warnings.append(f"{where}: hook type {hook.get('type')!r} is not supported (only \"command\"); ignored")
                    continue
                if not isinstance(hook, dict) or not isinstance(hook.get("command"), str) or not hook["command"].strip():
                    raise ConfigError(f"{where}: each hook needs a 'command' string")
                commands.append(HookCommand(hook["command"], _timeout(hook.get("timeout"), where), source))
            into.groups.setdefault(event, []).append(MatcherGroup(matcher, commands, _compile(matcher, where)))


def load_hooks(workdir: Path, config_hooks: dict[str, Any] | None, config_source: str = "[hooks]") -> HookSet:
    """The hooks of pando's configuration (the merged ``[hooks]`` section) and of the working
    directory's Claude Code settings files."""
    hooks = HookSet()
    # other keys of [hooks] were reported by the config loader already (unknown key, did you mean)
    parse_hooks({k: v for k, v in (config_hooks or {}).items() if v and k in EVENTS}, config_source, hooks)
    for path, file_hooks in claude_settings_hooks(workdir, strict=True):
        parse_hooks(file_hooks, str(path), hooks)
    return hooks


def defines_event(workdir: Path, config_hooks: Any, event: str) -> bool:
    """Whether the raw config ``[hooks]`` or a Claude Code settings file has *event* (before the
    configuration is validated; a file that cannot be read says no here and is reported later)."""
    if isinstance(config_hooks, dict) and config_hooks.get(event):
        return True
    return any(
        isinstance(hooks, dict) and bool(hooks.get(event)) for _, hooks in claude_settings_hooks(workdir, strict=False)
    )
