"""Which MCP servers a working directory has, and how to reach each one.

Two places declare servers: pando's own ``[mcp.servers.NAME]`` tables (any pando config file) and,
unless ``[mcp] read_mcp_json = false``, the project's ``.mcp.json`` in Claude Code's shape
(``{"mcpServers": {NAME: {...}}}``), so a repository set up for Claude Code works unchanged. On a
name clash pando's table wins. ``${VAR}`` and ``${VAR:-default}`` are expanded in command, args,
env, url and headers; an unset variable without a default expands to "" and is reported as a
warning of that server (``pando mcp list`` shows it). Every ``ServerSpec`` records where it came
from. This module imports nothing heavy: ``pando mcp list`` reads it before any connection.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pando_core.errors import ConfigError

DEFAULT_CALL_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 15.0
TRANSPORTS = ("stdio", "sse", "http")
# other spellings of the transports found in peers' files
_TRANSPORT_ALIASES = {
    "": "stdio",
    "local": "stdio",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamablehttp": "http",
    "remote": "http",
}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_KNOWN_KEYS = {"type", "command", "args", "env", "url", "headers", "timeout", "enabled", "disabled", "disabled_tools"}


@dataclass
class ServerSpec:
    """One configured MCP server, its variables expanded."""

    name: str
    transport: str  # stdio | sse | http
    source: str  # the file it was declared in
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    enabled: bool = True
    disabled_tools: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """What the server runs or where it is, for listings."""
        if self.transport == "stdio":
            return " ".join([self.command, *self.args])
        return self.url


class Expander:
    """``${VAR}`` / ``${VAR:-default}`` against an environment, remembering unset variables."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.missing: list[str] = []

    def __call__(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = self.env.get(name)
            if value is None or (value == "" and default is not None):
                if default is not None:
                    return default
                self.missing.append(name)
                return ""
            return value

        return _VARIABLE.sub(replace, text)


def parse_timeout(value: Any, where: str) -> float:
    """Seconds from a number or a duration ("45s", "1m", "500ms"); absent, zero or negative: default."""
    if value is None or value == "":
        return DEFAULT_CALL_TIMEOUT
    from pando_core.durations import parse_duration

    try:
        seconds = parse_duration(value) if not isinstance(value, bool) else None
    except ValueError:
        seconds = None
    if seconds is None:
        raise ConfigError(f"{where}: timeout must be seconds or a duration like 30s, got {value!r}")
    return seconds if seconds > 0 else DEFAULT_CALL_TIMEOUT


def _string_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str | int | float) for item in value):
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    return [str(item) for item in value]


def _string_table(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):  # the Go original's ["KEY=VALUE", ...]
        pairs = [str(item).partition("=") for item in value]
        return {key: val for key, _, val in pairs if key}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table of strings, got {value!r}")
    return {str(key): str(val) for key, val in value.items()}


def server_spec(name: str, raw: Any, source: str, env: Mapping[str, str]) -> ServerSpec:
    """Validate one server entry (pando's table or a ``.mcp.json`` entry) and expand its variables."""
    where = f"{source}: mcp server {name!r}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table, got {raw!r}")
    raw_type = str(raw.get("type") or raw.get("transport") or "").strip()
    transport = _TRANSPORT_ALIASES.get(raw_type.lower(), raw_type.lower())
    if not raw_type and raw.get("url") and not raw.get("command"):
        transport = "http"  # a bare url means streamable HTTP, as in Claude Code
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where}: type must be stdio, sse or http, got {raw_type!r}")
    expand = Expander(env)
    command = raw.get("command") or ""
    args = _string_list(raw.get("args"), f"{where}: args")
    if isinstance(command, list):  # opencode's ["cmd", "arg", ...]
        command, args = (str(command[0]) if command else ""), [str(a) for a in command[1:]] + args
    spec = ServerSpec(
        name=name,
        transport=transport,
        source=source,
        command=expand(str(command)),
        args=[expand(arg) for arg in args],
        env={key: expand(val) for key, val in _string_table(raw.get("env"), f"{where}: env").items()},
        url=expand(str(raw.get("url") or "")),
        headers={key: expand(val) for key, val in _string_table(raw.get("headers"), f"{where}: headers").items()},
        call_timeout=parse_timeout(raw.get("timeout"), where),
        enabled=bool(raw.get("enabled", True)) and not bool(raw.get("disabled", False)),
        disabled_tools=_string_list(raw.get("disabled_tools"), f"{where}: disabled_tools"),
    )
    # a server's own timeout is for its calls; it may lengthen the opening (a slow start-up) but
    # not shorten it below 15 s (npx or a Python server can take seconds to start on a busy machine)
    if raw.get("timeout"):
        spec.connect_timeout = max(DEFAULT_CONNECT_TIMEOUT, spec.call_timeout)
    if transport == "stdio" and not spec.command:
        raise ConfigError(f"{where}: a stdio server needs a command")
    if transport != "stdio" and not spec.url:
        raise ConfigError(f"{where}: a {transport} server needs a url")
    spec.warnings.extend(f"${{{var}}} is not set" for var in dict.fromkeys(expand.missing))
    unknown = sorted(set(raw) - _KNOWN_KEYS - {"transport"})
    if unknown:
        spec.warnings.append(f"unknown keys ignored: {', '.join(unknown)}")
    return spec


def read_mcp_json(workdir: Path) -> dict[str, Any]:
    """The ``mcpServers`` of a project's ``.mcp.json`` ({} when there is none)."""
    path = workdir / ".mcp.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    servers = data.get("mcpServers", {}) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}: mcpServers must be an object")
    return servers


def _pando_sources(workdir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """For each server name of pando's tables, the last config file that declares it."""
    from pando_core.config import project_config_paths, read_config_file, user_config_paths

    sources: dict[str, str] = {}
    for path in [*user_config_paths(None, env), *project_config_paths(workdir)]:
        if not path.is_file():
            continue
        try:
            servers = read_config_file(path).get("mcp", {}).get("servers", {})
        except (ConfigError, AttributeError):
            continue
        for name in servers if isinstance(servers, dict) else ():
            sources[name] = str(path)
    return sources


def load_servers(section: Mapping[str, Any], workdir: Path, env: Mapping[str, str] | None = None) -> list[ServerSpec]:
    """Every server of ``[mcp.servers]`` and (unless turned off) ``.mcp.json``; pando's table wins."""
    env = os.environ if env is None else env
    declared = section.get("servers") or {}
    if not isinstance(declared, Mapping):
        raise ConfigError("[mcp] servers must be a table of [mcp.servers.NAME] tables")
    specs: dict[str, ServerSpec] = {}
    if section.get("read_mcp_json", True):
        json_path = str(workdir / ".mcp.json")
        for name, raw in read_mcp_json(workdir).items():
            specs[name] = server_spec(name, raw, json_path, env)
    if declared:
        sources = _pando_sources(workdir, env)
        for name, raw in declared.items():
            specs[name] = server_spec(name, raw, sources.get(name, "pando config"), env)
    return list(specs.values())
