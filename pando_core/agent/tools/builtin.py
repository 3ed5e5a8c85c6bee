"""The built-in coder tools, in the order the model sees them (spec §7.1)."""

from __future__ import annotations

from typing import Any

from pando_core.agent.tools.base import Tool
from pando_core.agent.tools.bash import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, BashTool
from pando_core.agent.tools.edit import EditTool
from pando_core.agent.tools.fetch import MAX_BYTES, FetchTool
from pando_core.agent.tools.glob import GlobTool
from pando_core.agent.tools.grep import GrepTool
from pando_core.agent.tools.ls import LsTool
from pando_core.agent.tools.paging import DEFAULT_PAGER, ResultPager, ResultPageTool
from pando_core.agent.tools.patch import PatchTool
from pando_core.agent.tools.view import ViewTool
from pando_core.agent.tools.write import WriteTool

__all__ = ["builtin_tools"]


def _section(config: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        value = config.get(name)
        if isinstance(value, dict):
            return value
    return {}


def _first(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return None


def builtin_tools(config: dict[str, Any] | None = None) -> list[Tool]:
    """bash, edit, fetch, glob, grep, ls, view, write, patch, result_page.

    `config` may be the application config or a tools section. Recognised keys (camelCase or snake_case):
    - `bash`: {bannedCommands|banned, allowedCommands|allowed, defaultTimeoutMs, maxTimeoutMs}
      (bannedCommands replaces the default list; allowedCommands removes entries from it);
    - `shell`: {path, args} — a bash-compatible shell;
    - `internalTools`: {fetchEnabled (default true), fetchMaxSizeMB (default 5)};
    - `grep`: {useRipgrep: false} to force the pure-Python search;
    - `pager`: a ResultPager instance shared with the agent loop (default: paging.DEFAULT_PAGER).
    """
    config = config or {}
    bash_cfg = _section(config, "bash")
    shell_cfg = _section(config, "shell")
    internal = _section(config, "internalTools", "internal_tools")
    grep_cfg = _section(config, "grep")

    banned = _first(bash_cfg, "bannedCommands", "banned_commands", "banned")
    allowed = _first(bash_cfg, "allowedCommands", "allowed_commands", "allowed")
    default_timeout = _first(bash_cfg, "defaultTimeoutMs", "default_timeout_ms", "timeout")
    max_timeout = _first(bash_cfg, "maxTimeoutMs", "max_timeout_ms")
    shell_args = _first(shell_cfg, "args") or []
    bash = BashTool(
        banned=list(banned) if banned is not None else None,
        allowed=list(allowed) if allowed is not None else None,
        shell_path=_first(shell_cfg, "path") or None,
        shell_args=[str(arg) for arg in shell_args if str(arg) != "-l"],
        default_timeout_ms=int(default_timeout or DEFAULT_TIMEOUT_MS),
        max_timeout_ms=int(max_timeout or MAX_TIMEOUT_MS),
    )

    pager = config.get("pager")
    if not isinstance(pager, ResultPager):
        pager = DEFAULT_PAGER

    use_rg = _first(grep_cfg, "useRipgrep", "use_ripgrep")
    tools: list[Tool] = [
        bash,
        EditTool(),
    ]
    fetch_enabled = _first(internal, "fetchEnabled", "fetch_enabled")
    if fetch_enabled is None or bool(fetch_enabled):
        size_mb = _first(internal, "fetchMaxSizeMB", "fetch_max_size_mb")
        max_bytes = int(float(size_mb) * 1024 * 1024) if size_mb else MAX_BYTES
        tools.append(FetchTool(max_bytes=max_bytes))
    tools += [
        GlobTool(),
        GrepTool(use_ripgrep=None if use_rg is None else bool(use_rg)),
        LsTool(),
        ViewTool(),
        WriteTool(),
        PatchTool(),
        ResultPageTool(pager),
    ]
    return tools
