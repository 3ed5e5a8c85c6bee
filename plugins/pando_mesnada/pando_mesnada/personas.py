"""Personas: a text put before a task's prompt. Files ``.pando/mesnada/personas/NAME.md`` override
or add to the built-ins."""

from __future__ import annotations

import re
from pathlib import Path

from pando_core.errors import ValidationError

BUILTIN = {
    "assistant": "You are a helpful assistant. Answer precisely and say when you are unsure.",
    "software-engineer": (
        "You are a senior software engineer. Make the smallest correct change, follow the project's"
        " conventions, run the relevant tests, and report what you changed and why."
    ),
    "qa": (
        "You are a QA engineer. Look for bugs, edge cases and missing tests; write failing tests first"
        " and report each finding with the steps to reproduce it."
    ),
    "system-engineer": (
        "You are a systems engineer. Care about processes, files, permissions, resources and failure"
        " modes; prefer commands that are safe to run twice."
    ),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def available(persona_dir: Path) -> dict[str, str]:
    """Every persona by name: the built-ins, then the files of *persona_dir* over them."""
    personas = dict(BUILTIN)
    if persona_dir.is_dir():
        for path in sorted(persona_dir.glob("*.md")):
            personas[path.stem] = path.read_text(encoding="utf-8").strip()
    return personas


def resolve(name: str, persona_dir: Path) -> str:
    if not _NAME.match(name):
        raise ValidationError(f"persona name {name!r} is not valid (letters, digits, '-', '_', '.')")
    personas = available(persona_dir)
    if name not in personas:
        raise ValidationError(f"unknown persona {name!r}: available are {', '.join(sorted(personas))}")
    return personas[name]


def apply(persona_text: str, prompt: str) -> str:
    return f"{persona_text}\n\n{prompt}"
