"""Which instruction files go into the system prompt, and why each one was picked.

The AGENTS.md family (``AGENTS.md``, ``PANDO.md``, ``CLAUDE.md``, in the order ``[agent]
context_files`` names them) is read the way the peers define it: in every directory from the
repository root (the nearest parent holding ``.git``) down to the working directory, the first
member of the family that exists; outside a git repository only the working directory is read.
Before them comes the user's global file, the first of ``$XDG_CONFIG_HOME/pando/AGENTS.md``,
``.../pando/PANDO.md`` and ``~/.claude/CLAUDE.md`` (``[agent] global_context_file`` names another
one, or ``""`` turns it off). Other names in ``context_files`` (``.cursorrules``,
``.github/copilot-instructions.md``) are read from the working directory only.

The order is general → specific (global, root, ..., working directory), so that the nearest
instructions come last and win where they disagree. `pando context` lists the same choice.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_CONTEXT_FILE_CHARS = 20_000

# one instruction file of this family per directory: the first that exists, in the configured order
INSTRUCTION_FAMILY = ("agents.md", "pando.md", "claude.md")

RULE_GLOBAL = "global"
RULE_ROOT = "repository root"
RULE_PARENT = "parent directory"
RULE_WORKDIR = "working directory"
RULE_EXTRA = "working directory (extra file)"


@dataclass(frozen=True)
class ContextFile:
    path: Path
    shown: str  # the path as the model and the user see it (relative to the workdir, or ~/...)
    rule: str
    bytes: int

    def read(self) -> str:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return text[:MAX_CONTEXT_FILE_CHARS]

    def as_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "shown": self.shown,
            "rule": self.rule,
            "bytes": self.bytes,
            "truncated": self.bytes > MAX_CONTEXT_FILE_CHARS,
        }


def repository_root(workdir: Path) -> Path | None:
    """The nearest directory at or above *workdir* holding ``.git`` (a directory or a worktree's file)."""
    for directory in (workdir, *workdir.parents):
        if (directory / ".git").exists():
            return directory
    return None


def global_candidates(env: Mapping[str, str] | None = None, configured: str | None = None) -> list[Path]:
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or "~").expanduser()
    if configured is not None:
        if not configured:
            return []
        return [home / configured[2:] if configured.startswith("~/") else Path(configured)]
    xdg = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return [xdg / "pando" / "AGENTS.md", xdg / "pando" / "PANDO.md", home / ".claude" / "CLAUDE.md"]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _first_of_family(directory: Path, family: list[str]) -> Path | None:
    for name in family:
        if _size(directory / name) is not None:
            return directory / name
    return None


def _shown(path: Path, workdir: Path, home: Path) -> str:
    """Relative to the workdir (``../AGENTS.md`` for a parent's file), else ``~/...``, else absolute."""
    if path.parent == workdir or path.parent in workdir.parents:
        return os.path.relpath(path, workdir)
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def find_context_files(
    workdir: Path,
    names: list[str],
    *,
    env: Mapping[str, str] | None = None,
    global_file: str | None = None,
) -> list[ContextFile]:
    """The instruction files for *workdir*, global first, the working directory's last."""
    env = os.environ if env is None else env
    workdir = workdir.resolve()
    home = Path(env.get("HOME") or "~").expanduser()
    family = [n for n in dict.fromkeys(names) if n.lower() in INSTRUCTION_FAMILY]
    extras = [n for n in dict.fromkeys(names) if n.lower() not in INSTRUCTION_FAMILY]
    found: list[ContextFile] = []
    seen: set[Path] = set()

    def add(path: Path, rule: str) -> None:
        real = path.resolve()
        size = _size(real)
        if real in seen or size is None:
            return
        seen.add(real)
        found.append(ContextFile(path, _shown(path, workdir, home), rule, size))

    for candidate in global_candidates(env, global_file):
        if _size(candidate) is not None:
            add(candidate, RULE_GLOBAL)
            break
    if family:
        root = repository_root(workdir)
        if root is None:
            directories = [workdir]
        else:
            rel = workdir.relative_to(root)
            directories = [(root / step).resolve() for step in (*reversed(rel.parents), rel)]
        for directory in dict.fromkeys(directories):
            path = _first_of_family(directory, family)
            if path is None:
                continue
            if directory == workdir:
                rule = RULE_WORKDIR
            elif directory == root:
                rule = RULE_ROOT
            else:
                rule = RULE_PARENT
            add(path, rule)
    for name in extras:
        add(workdir / name, RULE_EXTRA)
    return found
