"""The `[skills]` configuration section and the settings the CLI runs with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .model import type_name
from .plugin import SECTION  # the declared [skills] section holds the defaults

_DEFAULTS = SECTION.defaults()
SCOPES: tuple[str, ...] = SECTION.fields["default_scope"].choices or ()


@dataclass
class SkillsConfig:
    """`[skills]` section (defaults: `SECTION`).

    - enabled: discover skills and add them to the system prompt (default true)
    - paths: extra discovery roots after the four standard ones (relative → working directory)
    - catalog_url: skills.sh catalog base URL; catalog_enabled: allow search/install from it
    - default_scope: where `pando skills install/new/uninstall` act without --scope
    - budget_tokens / max_active: active skill bodies budget (eviction at 80 %) and count cap
    - tools: expose the skill_read / skill_resource agent tools (on by default; the Go original has none)
    - match_names: also activate a skill the user names explicitly (off by default)
    """

    enabled: bool = _DEFAULTS["enabled"]
    paths: list[str] = field(default_factory=_DEFAULTS["paths"].copy)
    catalog_url: str = _DEFAULTS["catalog_url"]
    catalog_enabled: bool = _DEFAULTS["catalog_enabled"]
    catalog_timeout: float = _DEFAULTS["catalog_timeout"]
    default_scope: str = _DEFAULTS["default_scope"]
    budget_tokens: int = _DEFAULTS["budget_tokens"]
    max_active: int = _DEFAULTS["max_active"]
    tools: bool = _DEFAULTS["tools"]
    match_names: bool = _DEFAULTS["match_names"]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, section: str = "skills") -> SkillsConfig:
        """Build from a config mapping. Keys may be snake_case, kebab-case or CamelCase (`BaseURL` and
        `base_url` mean `catalog_url`); a nested `catalog` mapping (`[SkillsCatalog]` style) is accepted.
        Unknown keys and wrong types raise ConfigError naming the key."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{section} must be a table/mapping, got {type(data).__name__}")
        config = cls()
        for raw_key, value in data.items():
            key = _norm(raw_key)
            if key in ("catalog", "skillscatalog") and isinstance(value, Mapping):
                for sub_key, sub_value in value.items():
                    _apply(config, f"catalog{_norm(sub_key)}", sub_value, f"{section}.catalog.{sub_key}")
                continue
            _apply(config, key, value, f"{section}.{raw_key}")
        return config

    def settings(self, workdir: Path | str, home: Path | str | None = None) -> SkillsSettings:
        return SkillsSettings(
            workdir=Path(workdir),
            home=Path(home) if home is not None else Path.home(),
            paths=list(self.paths),
            catalog_url=self.catalog_url if self.catalog_enabled else "",
            default_scope=self.default_scope,
            catalog_timeout=self.catalog_timeout,
        )


@dataclass
class SkillsSettings:
    """What the `pando skills` commands need; set by the plugin when the CLI runs."""

    workdir: Path
    home: Path
    paths: list[str] = field(default_factory=_DEFAULTS["paths"].copy)
    catalog_url: str = _DEFAULTS["catalog_url"]  # "" = catalog disabled
    default_scope: str = _DEFAULTS["default_scope"]
    catalog_timeout: float = _DEFAULTS["catalog_timeout"]


def _norm(key: object) -> str:
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", str(key).strip())
    return text.lower().replace("-", "").replace("_", "")


# normalised key -> (attribute, kind). The spellings other than the SECTION names and their declared
# aliases are for mappings given to from_dict directly; the core loader passes them on too, but warns
# that they are unknown keys.
_KEYS: dict[str, tuple[str, str]] = {
    "enabled": ("enabled", "bool"),
    "paths": ("paths", "paths"),
    "catalogurl": ("catalog_url", "url"),
    "baseurl": ("catalog_url", "url"),
    "catalogbaseurl": ("catalog_url", "url"),
    "catalogenabled": ("catalog_enabled", "bool"),
    "catalogtimeout": ("catalog_timeout", "float"),
    "defaultscope": ("default_scope", "scope"),
    "catalogdefaultscope": ("default_scope", "scope"),
    "budgettokens": ("budget_tokens", "int"),
    "maxactive": ("max_active", "int"),
    "tools": ("tools", "bool"),
    "toolsenabled": ("tools", "bool"),
    "matchnames": ("match_names", "bool"),
    "catalogautoupdate": ("", "ignored"),  # Go: AutoUpdate (unused)
    "autoupdate": ("", "ignored"),
}


def _apply(config: SkillsConfig, key: str, value: Any, where: str) -> None:
    if key not in _KEYS:
        valid = ", ".join(f.name for f in fields(SkillsConfig))
        raise ConfigError(f"unknown config key {where} (valid keys: {valid})")
    attr, kind = _KEYS[key]
    if kind == "ignored":
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {type_name(value)} {value!r}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {type_name(value)} {value!r}")
        if value <= 0:
            raise ConfigError(f"{where} must be positive, got {value}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {type_name(value)} {value!r}")
        if value <= 0:
            raise ConfigError(f"{where} must be positive, got {value}")
        value = float(value)
    elif kind == "paths":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{where} must be a list of strings, got {type_name(value)} {value!r}")
        value = list(value)
    elif kind == "url":
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {type_name(value)} {value!r}")
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ConfigError(f"{where} must be an http:// or https:// URL, got {value!r}")
    elif kind == "scope":
        if value not in SCOPES:
            raise ConfigError(f"{where} must be 'project' or 'global', got {value!r}")
    setattr(config, attr, value)
