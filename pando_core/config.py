"""Configuration: files, then environment, validated against sections declared by core and plugins.

Sources, later wins:
  1. ``$XDG_CONFIG_HOME/pando/config.toml`` (default ``~/.config/pando/config.toml``)
  2. ``~/.pando.toml``
  3. ``<workdir>/.pando.toml`` (or ``.pando.json``)
  4. ``PANDO_<SECTION>__<KEY>=value`` environment variables (``PANDO_AGENT__MODEL=openai/gpt-4o``)

TOML and JSON are both accepted for every file (by extension).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list of strings",
    "dict": "a table",
    "any": "any value",
}
SECRET_MARKERS = ("key", "token", "secret", "password")
# what the bash sandbox hides by default ([tools] hidden_paths; pando_core.agent.tools.sandbox)
DEFAULT_HIDDEN_PATHS: tuple[str, ...] = (
    "~/.ssh",
    "~/.aws",
    "~/.config/gcloud",
    "~/.azure",
    "~/.gnupg",
    "~/.netrc",
    "~/.docker/config.json",
    "~/.kube",
    "~/.pypirc",
    "~/.npmrc",
    "~/.git-credentials",
    "~/.config/gh",
    "~/.password-store",
)


@dataclass
class Field:
    type: str  # str | int | float | bool | list | dict | any
    default: Any = None
    help: str = ""
    secret: bool = False
    choices: tuple[str, ...] | None = None
    # other names this key may be given under in a config file (e.g. the Go original's); the loader
    # moves such a value to the key itself
    aliases: tuple[str, ...] = ()


@dataclass
class ConfigSection:
    """A named ``[section]`` with typed fields. ``open`` sections accept keys they do not declare."""

    name: str
    fields: dict[str, Field] = field(default_factory=dict)
    help: str = ""
    open: bool = False

    def defaults(self) -> dict[str, Any]:
        return {key: copy.deepcopy(f.default) for key, f in self.fields.items()}


CORE_SECTIONS = [
    ConfigSection(
        "plugins",
        {
            "enabled": Field("list", None, "plugins to load (default: all installed)"),
            "disabled": Field("list", [], "plugins never loaded unless named by --plugins"),
        },
        "plugin selection",
    ),
    ConfigSection(
        "runtime",
        {
            "failover": Field("bool", True, "a secondary takes over when the primary dies"),
            "heartbeat_interval": Field("float", 1.0, "seconds between primary heartbeats"),
            "transport": Field("str", "auto", "ipc, tcp or auto", choices=("auto", "ipc", "tcp")),
            # the bus's own default (runtime.protocol.DEFAULT_MAX_MESSAGE_BYTES), so a runtime
            # bootstrapped without this configuration caps messages the same way
            "max_message_bytes": Field("int", 16 * 1024 * 1024, "largest accepted bus message"),
            "ping_timeout": Field("float", 2.0, "seconds before ensure_primary reports a hung primary"),
            "write_timeout": Field("float", 30.0, "seconds a proxied write may wait for the primary"),
            "lease_check_interval": Field("float", 1.0, "seconds between the primary's checks of its lock file"),
        },
        "multi-instance runtime",
    ),
    ConfigSection(
        "agent",
        {
            "model": Field("str", "", "default model as provider/model, e.g. openai/gpt-4o-mini"),
            "title_model": Field("str", "", "model for session titles (default: the main model)"),
            "summarizer_model": Field("str", "", "model for compaction summaries (default: main model)"),
            "max_requests_per_turn": Field("int", 50, "cap on model requests in one user turn"),
            "max_repeated_failures": Field(
                "int", 3, "stop a turn when the model makes the same failing tool call this many times in a row"
            ),
            "max_tokens": Field("int", 4096, "output tokens per request"),
            "max_stop_continuations": Field(
                "int", 3, "follow-up turns a Stop hook (pando_turn_stopping) may ask for in a row; 0: none"
            ),
            "auto_compact": Field("bool", True, "summarise the session when the context nears the window"),
            "compact_threshold": Field("float", 0.85, "fraction of the window that triggers compaction"),
            "context_window": Field("int", 0, "override the model's context window (tokens)"),
            "idle_minutes": Field(
                "float", 30.0, "a session untouched this long has ended (pando_session_ended fires); 0: never"
            ),
            "context_files": Field(
                "list",
                ["AGENTS.md", "PANDO.md", "CLAUDE.md", ".cursorrules", ".github/copilot-instructions.md"],
                "project files added to the system prompt (the AGENTS.md family: the first per directory, repository root to workdir)",
            ),
            "global_context_file": Field(
                "any",
                None,
                "the user's own instructions file (default: ~/.config/pando/AGENTS.md, PANDO.md or ~/.claude/CLAUDE.md; \"\": none)",
            ),
            "mention_max_bytes": Field("int", 100_000, "an @file mention attaches at most this many bytes of the file"),
            "max_image_bytes": Field("int", 5 * 1024 * 1024, "largest image --image or a prompt may attach"),
        },
        "the coder agent",
    ),
    ConfigSection(
        "snapshots",
        {
            "enabled": Field("bool", True, "snapshot the working tree when a session starts and ends"),
            "max_file_size": Field("int", 10 * 1024 * 1024, "larger untracked files are left out"),
            "checkpoints": Field("bool", True, "checkpoint the working tree around each turn that changes files (rewind)"),
            "keep_checkpoints": Field(
                "int", 50, "checkpoints kept per working directory (all sessions), the newest; older ones are pruned; 0: no limit"
            ),
            "checkpoint_max_age_days": Field("float", 30.0, "checkpoints older than this are pruned; 0: no age limit"),
        },
        "working-tree snapshots",
    ),
    ConfigSection(
        "goal",
        {
            "max_iterations": Field("int", 20, "iterations before a goal stops (status failed)"),
            "max_duration": Field("any", 3600, "seconds (or 90s, 5m, 1h) before a goal times out"),
            "stall_iterations": Field("int", 3, "iterations without progress before a goal is stalled"),
        },
        "goal mode",
    ),
    ConfigSection(
        "providers",
        {},
        "provider accounts: [providers.NAME] type, base_url, api_key_env, api_key, models",
        open=True,
    ),
    ConfigSection(
        "permissions",
        {
            "allow_tools": Field("list", [], "tools approved without asking (e.g. write, edit)"),
            "allow_bash": Field("list", [], "bash command patterns approved without asking (fnmatch; `git add:*`: git add, alone or with arguments)"),
            "deny_bash": Field("list", [], "bash command patterns always refused"),
            "allow_outside_workdir": Field("bool", False, "let tools touch paths outside the workdir"),
        },
        "tool permissions",
    ),
    ConfigSection(
        "tools",
        {
            "bash_timeout_ms": Field("int", 60_000, "default bash timeout (ms)"),
            "bash_max_timeout_ms": Field("int", 600_000, "largest bash timeout a call may ask for (ms)"),
            "banned_commands": Field("list", None, "replace the list of banned bash commands"),
            "allowed_commands": Field("list", [], "remove commands from the banned list"),
            "shell_path": Field("str", "", "bash-compatible shell for the bash tool (default: bash)"),
            "shell_args": Field("list", [], "arguments passed to the shell before -c"),
            "fetch_enabled": Field("bool", True, "offer the fetch tool"),
            "fetch_max_size_mb": Field("float", 5.0, "largest response the fetch tool reads (MiB)"),
            "use_ripgrep": Field("bool", True, "grep with ripgrep when installed (false: built-in search)"),
            "sandbox": Field(
                "str", "auto", "run bash under bubblewrap: auto (when installed), bwrap (required) or off",
                choices=("auto", "bwrap", "off"),
            ),
            "writable_paths": Field("list", [], "paths a sandboxed bash may write besides the workdir and /tmp"),
            "network": Field("bool", False, "give sandboxed bash commands the network"),
            "network_commands": Field(
                "list", [], "bash command patterns (fnmatch) that get the network when every command of the line matches"
            ),
            "hidden_paths": Field(
                "list", list(DEFAULT_HIDDEN_PATHS), "paths a sandboxed bash sees empty (credentials in $HOME)"
            ),
        },
        "built-in tools",
    ),
    ConfigSection(
        "web",
        {
            "host": Field("str", "127.0.0.1", "address `pando serve` binds (loopback unless a token is set)"),
            "port": Field("int", 8765, "port `pando serve` listens on"),
            "token": Field("str", "", "token a browser or client must send (also PANDO_WEB_TOKEN)", secret=True),
        },
        "the web UI and REST API of `pando serve` (pip install 'pando-core[web]')",
    ),
    ConfigSection(
        "database",
        {
            "url": Field(
                "str",
                "",
                "team mode: a PostgreSQL URL, postgresql+psycopg://USER@HOST:PORT/DB (empty: SQLite in .pando/pando.db)",
            ),
            "password_env": Field(
                "str", "", "environment variable holding the database password (else the URL's, PGPASSWORD or ~/.pgpass)"
            ),
        },
        "the database: SQLite per working directory, or PostgreSQL shared by a team (pip install 'pando-core[postgres]')",
    ),
]


def core_defaults(section: str) -> dict[str, Any]:
    """The declared defaults of one of the core's sections (for code that may run without a
    loaded configuration)."""
    return next(s for s in CORE_SECTIONS if s.name == section).defaults()


def user_config_paths(home: Path | None = None, env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    home = Path(env.get("HOME", "~")).expanduser() if home is None else home
    xdg = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return [xdg / "pando" / "config.toml", xdg / "pando" / "config.json", home / ".pando.toml"]


def project_config_paths(workdir: Path) -> list[Path]:
    return [workdir / ".pando.toml", workdir / ".pando.json"]


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    import tomllib  # only when there is a file to read

    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must contain a table at the top level")
    return data


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def _parse_env_value(raw: str, kind: str) -> Any:
    text = raw.strip()
    if kind == "bool":
        lowered = text.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        return raw
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            return raw
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            return raw
    if kind == "list":
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return raw
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind in {"dict", "any"}:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    return raw


def _env_overlay(env: Mapping[str, str], sections: Mapping[str, ConfigSection]) -> dict[str, Any]:
    overlay: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith("PANDO_") or "__" not in name:
            continue
        path = [part.lower() for part in name[len("PANDO_") :].split("__") if part]
        if len(path) < 2:
            continue
        section = sections.get(path[0])
        kind = "str"
        if section is not None and len(path) == 2 and path[1] in section.fields:
            kind = section.fields[path[1]].type
        node = overlay
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _parse_env_value(raw, kind)
    return overlay


def _check_type(value: Any, f: Field) -> bool:
    if value is None:
        return f.default is None
    match f.type:
        case "str":
            ok = isinstance(value, str)
            return ok and (f.choices is None or value in f.choices)
        case "int":
            return isinstance(value, int) and not isinstance(value, bool)
        case "float":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "bool":
            return isinstance(value, bool)
        case "list":
            return isinstance(value, list) and all(isinstance(item, str) for item in value)
        case "dict":
            return isinstance(value, dict)
    return True


class Config:
    """The merged configuration, with each declared section validated and defaulted."""

    def __init__(self, data: dict[str, Any], sections: dict[str, ConfigSection], sources: list[str]):
        self.data = data
        self.sections = sections
        self.sources = sources
        self.warnings: list[str] = []  # unknown keys, filled by load_config

    def section(self, name: str) -> dict[str, Any]:
        declared = self.sections.get(name)
        values = declared.defaults() if declared else {}
        raw = self.data.get(name, {})
        if isinstance(raw, dict):
            values.update(copy.deepcopy(raw))
        return values

    def get(self, dotted: str, default: Any = None) -> Any:
        section, _, rest = dotted.partition(".")
        node: Any = self.section(section)
        for part in rest.split(".") if rest else []:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def as_dict(self) -> dict[str, Any]:
        merged = copy.deepcopy(self.data)
        for name in self.sections:
            merged[name] = self.section(name)
        return merged

    def redacted(self) -> dict[str, Any]:
        return _redact(self.as_dict(), self.sections)


def _redact(node: Any, sections: Mapping[str, ConfigSection], section: str | None = None) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            declared = sections.get(section) if section else None
            is_secret = bool(declared and key in declared.fields and declared.fields[key].secret)
            if isinstance(value, str) and value and (is_secret or _looks_secret(key)):
                out[key] = "***"
            elif isinstance(value, str) and "://" in value:
                out[key] = redact_url(value)
            else:
                out[key] = _redact(value, sections, section or key)
        return out
    if isinstance(node, list):
        return [_redact(item, sections, section) for item in node]
    return node


_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:?#]*):(?P<password>[^/@?#]*)@")


def redact_url(url: str) -> str:
    """*url* with the password of its user part replaced by ``***`` (``scheme://user:***@host``)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", url, count=1)


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    # names of environment variables holding a key are not secrets themselves
    if lowered.endswith("_env"):
        return False
    return any(marker in lowered for marker in SECRET_MARKERS)


def validate(data: dict[str, Any], sections: Mapping[str, ConfigSection], origin: Mapping[tuple[str, str], str]) -> list[str]:
    """Raise ConfigError for a bad value; return warnings (unknown keys)."""
    warnings: list[str] = []
    for name, section in sections.items():
        raw = data.get(name)
        if raw is None:
            continue
        where = origin.get((name, ""), "configuration")
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: [{name}] must be a table, got {type(raw).__name__}")
        for key, value in raw.items():
            where = origin.get((name, key), "configuration")
            f = section.fields.get(key)
            if f is None:
                if not section.open:
                    import difflib

                    close = difflib.get_close_matches(key, list(section.fields), n=1)
                    hint = f"; did you mean {name}.{close[0]}?" if close else ""
                    warnings.append(f"{where}: unknown key {name}.{key} (ignored){hint}")
                continue
            if not _check_type(value, f):
                expected = _TYPE_NAMES.get(f.type, f.type)
                if f.choices:
                    expected = "one of " + ", ".join(f.choices)
                raise ConfigError(
                    f"{where}: {name}.{key} must be {expected}, got {value!r} ({type(value).__name__})"
                )
    return warnings


@dataclass
class ConfigFiles:
    """The config files found for a working directory, read and merged once (later files win)."""

    data: dict[str, Any] = field(default_factory=dict)
    origin: dict[tuple[str, str], str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


def read_config_files(workdir: Path, *, env: Mapping[str, str] | None = None, home: Path | None = None) -> ConfigFiles:
    files = ConfigFiles()
    for path in [*user_config_paths(home, env), *project_config_paths(workdir)]:
        if not path.is_file():
            continue
        data = read_config_file(path)
        files.sources.append(str(path))
        for name, value in data.items():
            files.origin[(name, "")] = str(path)
            if isinstance(value, dict):
                for key in value:
                    files.origin[(name, key)] = str(path)
        _merge(files.data, data)
    return files


def load_config(
    workdir: Path,
    sections: list[ConfigSection] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    files: ConfigFiles | None = None,
) -> Config:
    """Read every source (or use ``files`` already read), merge, validate.

    Bad values raise ConfigError naming file, key and type. Environment variables are parsed
    against the declared sections, so they are applied here rather than when files are read.
    """
    env = os.environ if env is None else env
    files = files if files is not None else read_config_files(workdir, env=env, home=home)
    declared = {section.name: section for section in [*CORE_SECTIONS, *(sections or [])]}
    merged = copy.deepcopy(files.data)
    origin = dict(files.origin)
    sources = list(files.sources)
    overlay = _env_overlay(env, declared)
    if overlay:
        sources.append("environment")
        for name, value in overlay.items():
            for key in value if isinstance(value, dict) else ():
                origin[(name, key)] = f"environment variable PANDO_{name.upper()}__{key.upper()}"
        _merge(merged, overlay)
    _resolve_aliases(merged, declared, origin, sources)
    config = Config(merged, declared, sources)
    config.warnings = validate(merged, declared, origin)
    return config


def _resolve_aliases(
    data: dict[str, Any], sections: Mapping[str, ConfigSection], origin: dict[tuple[str, str], str], sources: list[str]
) -> None:
    """Move each value given under a declared alias to its key. When both are given, the later
    source wins (a project file over the user's, the environment over both); one source giving
    both is an error."""

    def rank(label: str) -> int:
        label = "environment" if label.startswith("environment variable") else label
        return sources.index(label) if label in sources else -1

    for name, section in sections.items():
        raw = data.get(name)
        if not isinstance(raw, dict):
            continue
        for key, declared in section.fields.items():
            for alias in declared.aliases:
                if alias not in raw:
                    continue
                value = raw.pop(alias)
                alias_from = origin.pop((name, alias), "configuration")
                if key in raw:
                    key_from = origin.get((name, key), "configuration")
                    if key_from == alias_from:
                        raise ConfigError(
                            f"{alias_from}: {name}.{alias} and {name}.{key} are the same setting; give one of them"
                        )
                    if rank(key_from) > rank(alias_from):
                        continue
                raw[key] = value
                origin[(name, key)] = alias_from
