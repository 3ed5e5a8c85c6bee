"""The ``[lua]`` configuration section of pando-lua.

``LuaConfig.from_dict`` validates a plain mapping (from TOML/JSON/env) and fails with a
``LuaConfigError`` that names the offending key and the expected type.

Accepted keys (aliases from the Go configuration in brackets):

``scripts`` [``script_path``]
    list of script paths (a single string is accepted as a one-element list).
``timeout``
    seconds per call: a positive number, or a Go-style duration string (``"500ms"``, ``"2s"``, ``"1m30s"``,
    ``"1h"``; parsed by ``pando_core.frontends.goal.parse_duration``).
``strict`` [``strict_mode``]
    bool: errors and timeouts raise instead of passing data through unchanged.
``hot_reload``
    bool: reload a script when its file changes (checked before each call).
``memory_limit``
    bytes for the whole Lua runtime: a positive int, or a string such as ``"32MiB"`` / ``"64MB"``;
    at least 1 MiB.
``enabled``
    accepted and ignored (the plugin decides whether it is enabled).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pando_core.errors import ConfigError

from .plugin import SECTION  # the declared [lua] section holds the defaults

__all__ = ["LuaConfig", "LuaConfigError", "DEFAULT_MEMORY_LIMIT", "MIN_MEMORY_LIMIT"]

_DEFAULTS = SECTION.defaults()
DEFAULT_MEMORY_LIMIT: int = _DEFAULTS["memory_limit"]
MIN_MEMORY_LIMIT = 1024 * 1024

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

# Go spellings (script_path, strict_mode): SECTION declares them, so the core loader moves them to
# their keys itself; from_dict takes them too, for mappings given to it directly
_ALIASES = {alias: key for key, declared in SECTION.fields.items() for alias in declared.aliases}
_IGNORED = {"enabled"}
_KNOWN = tuple(SECTION.fields)


class LuaConfigError(ConfigError, ValueError):
    """Invalid ``[lua]`` configuration; the message names the key and the expected type.

    A core ``ConfigError``, so ``pando`` reports it as one line (exit code 2)."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


@dataclass
class LuaConfig:
    scripts: list[str] = field(default_factory=_DEFAULTS["scripts"].copy)
    timeout: float = _DEFAULTS["timeout"]
    strict: bool = _DEFAULTS["strict"]
    hot_reload: bool = _DEFAULTS["hot_reload"]
    memory_limit: int = _DEFAULTS["memory_limit"]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> LuaConfig:
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise LuaConfigError(f"lua: expected a table/mapping of settings, got {_describe(d)}")
        values: dict[str, Any] = {}
        for raw_key, value in d.items():
            if raw_key in _IGNORED:
                continue
            key = _ALIASES.get(raw_key, raw_key)
            if key not in _KNOWN:
                raise LuaConfigError(f"lua.{raw_key}: unknown setting (known: {', '.join(_KNOWN)})")
            if key in values:
                raise LuaConfigError(f"lua.{raw_key}: given twice (also as an alias)")
            values[key] = _VALIDATORS[key](raw_key, value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scripts(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value] if value.strip() else []
    if not isinstance(value, list | tuple):
        raise LuaConfigError(f"lua.{key}: expected a list of script paths (strings), got {_describe(value)}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise LuaConfigError(f"lua.{key}[{i}]: expected a non-empty string path, got {_describe(item)}")
        out.append(item)
    return out


def _timeout(key: str, value: Any) -> float:
    from pando_core.durations import parse_duration

    expected = "a positive number of seconds (or a duration string like '2s' / '500ms')"
    try:
        seconds = None if isinstance(value, bool) else parse_duration(value)
    except ValueError:
        seconds = None
    if seconds is None or not seconds > 0 or not math.isfinite(seconds):
        raise LuaConfigError(f"lua.{key}: expected {expected}, got {_describe(value)}")
    return seconds


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise LuaConfigError(f"lua.{key}: expected a bool (true/false), got {_describe(value)}")
    return value


def _memory(key: str, value: Any) -> int:
    expected = "a positive integer number of bytes (or a size string like '32MiB')"
    size: int | None = None
    if isinstance(value, bool):
        size = None
    elif isinstance(value, int):
        size = value
    elif isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = (m.group(2) or "").lower()[:1]
            size = int(m.group(1)) * _SIZE_FACTORS[unit]
    if size is None or size <= 0:
        raise LuaConfigError(f"lua.{key}: expected {expected}, got {_describe(value)}")
    if size < MIN_MEMORY_LIMIT:
        raise LuaConfigError(f"lua.{key}: must be at least {MIN_MEMORY_LIMIT} bytes (1 MiB), got {size}")
    return size


_VALIDATORS = {
    "scripts": _scripts,
    "timeout": _timeout,
    "strict": _bool,
    "hot_reload": _bool,
    "memory_limit": _memory,
}
