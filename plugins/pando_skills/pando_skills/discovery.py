"""Finding SKILL.md files under the discovery roots, first name wins."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SkillParseError
from .model import SKILL_FILE, SKIP_DIRS, STAGING_PREFIX, Skill
from .parser import parse_skill


@dataclass
class DiscoveryResult:
    skills: list[Skill] = field(default_factory=list)  # sorted by name
    warnings: list[str] = field(default_factory=list)  # malformed files, duplicate names, unreadable roots


def standard_roots(workdir: Path | str, home: Path | str | None = None) -> list[tuple[str, Path]]:
    """The standard roots with the label `pando skills list` shows, in precedence order:
    ~/.pando/skills (global), <wd>/.agents/skills (project: where project skills are created, a
    folder that is committed with the project), <wd>/.pando/skills (project too: where earlier
    versions created them; .pando/ is usually git-ignored), ~/.claude/skills (claude-global),
    <wd>/.claude/skills (claude-project). Paths are absolute and normalised."""
    workdir = Path(workdir).expanduser().absolute()
    home_dir = Path(home).expanduser().absolute() if home is not None else Path.home()
    return [
        (label, Path(os.path.normpath(base / tool / "skills")))
        for label, base, tool in (
            ("global", home_dir, ".pando"),
            ("project", workdir, ".agents"),
            ("project", workdir, ".pando"),
            ("claude-global", home_dir, ".claude"),
            ("claude-project", workdir, ".claude"),
        )
    ]


def discovery_roots(
    workdir: Path | str, home: Path | str | None = None, extra_paths: Iterable[str] = ()
) -> list[Path]:
    """The roots in precedence order, highest first (duplicates removed, missing ones kept): the
    `standard_roots`, then each configured path (`~` expanded; relative paths joined to the working
    directory)."""
    roots = [root for _, root in standard_roots(workdir, home)]
    workdir = Path(workdir).expanduser().absolute()
    for raw in extra_paths:
        if not str(raw).strip():
            continue
        candidate = Path(str(raw).strip()).expanduser()
        roots.append(candidate if candidate.is_absolute() else workdir / candidate)
    unique: list[Path] = []
    seen: set[str] = set()
    for root in roots:
        key = os.path.normpath(str(root))
        if key not in seen:
            seen.add(key)
            unique.append(Path(key))
    return unique


def find_skill_files(root: Path) -> Iterator[Path]:
    """Every SKILL.md under `root`, in a stable order. A directory holding a SKILL.md is a skill: its
    subdirectories (scripts/, references/, assets/, templates) are resources and are not searched.
    Symlinked directories are followed once (loops are cut)."""
    visited: set[str] = set()

    def walk(directory: Path) -> Iterator[Path]:
        try:
            real = os.path.realpath(directory)
        except OSError:
            return
        if real in visited:
            return
        visited.add(real)
        candidate = directory / SKILL_FILE
        if candidate.is_file():
            yield candidate
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            if entry.name in SKIP_DIRS or entry.name.startswith(STAGING_PREFIX):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                continue
            if is_dir:
                yield from walk(Path(entry.path))

    if root.is_dir():
        yield from walk(root)


def discover_skills(
    workdir: Path | str, home: Path | str | None = None, extra_paths: Iterable[str] = ()
) -> DiscoveryResult:
    """All skills of the discovery roots, sorted by name. The first occurrence of a name wins (a note is
    added for each later duplicate); malformed files are skipped with a warning naming the file and problem."""
    result = DiscoveryResult()
    by_name: dict[str, Skill] = {}
    for root in discovery_roots(workdir, home, extra_paths):
        if root.exists() and not root.is_dir():
            result.warnings.append(f"{root}: skills path is not a directory")
            continue
        for skill_file in find_skill_files(root):
            try:
                skill = parse_skill(skill_file, source_root=root)
            except SkillParseError as exc:
                result.warnings.append(f"skipped {exc}")
                continue
            first = by_name.get(skill.name)
            if first is not None:
                if os.path.realpath(first.path) == os.path.realpath(skill.path):
                    continue  # the same file reached through two roots (symlink): not a conflict
                result.warnings.append(
                    f"skill '{skill.name}' at {skill.path} ignored: already defined by {first.path}"
                )
                continue
            by_name[skill.name] = skill
    result.skills = sorted(by_name.values(), key=lambda skill: skill.name)
    return result
