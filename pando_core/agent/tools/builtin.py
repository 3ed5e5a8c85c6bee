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
from pando_core.agent.tools.paging import ResultPager, ResultPageTool
from pando_core.agent.tools.patch import PatchTool
from pando_core.agent.tools.sandbox import SandboxSettings
from pando_core.agent.tools.view import ViewTool
from pando_core.agent.tools.write import WriteTool

__all__ = ["builtin_tools"]


def builtin_tools(config: dict[str, Any] | None = None) -> list[Tool]:
    """bash, edit, fetch, glob, grep, ls, view, write, patch, result_page.

    `config` is the `[tools]` config section (keys declared in pando_core.config); missing keys take
    their defaults:
    - `bash_timeout_ms`, `bash_max_timeout_ms`: the bash tool's default and largest timeout;
    - `banned_commands` replaces the default banned list; `allowed_commands` removes entries from it;
    - `shell_path`, `shell_args`: a bash-compatible shell;
    - `sandbox`, `writable_paths`, `network`, `network_commands`, `hidden_paths`: bash's sandbox
      (pando_core.agent.tools.sandbox; default: bubblewrap when installed);
    - `fetch_enabled` (default true), `fetch_max_size_mb` (default 5);
    - `use_ripgrep`: false forces the pure-Python grep search;
    - `pager`: the ResultPager shared with the agent loop (not a config key; default: the pager of
      the calling app, else paging.DEFAULT_PAGER).
    """
    config = config or {}
    banned = config.get("banned_commands")
    allowed = config.get("allowed_commands")
    shell_args = config.get("shell_args") or []
    bash = BashTool(
        banned=list(banned) if banned is not None else None,
        allowed=list(allowed) if allowed is not None else None,
        shell_path=config.get("shell_path") or None,
        shell_args=[str(arg) for arg in shell_args if str(arg) != "-l"],
        default_timeout_ms=int(config.get("bash_timeout_ms") or DEFAULT_TIMEOUT_MS),
        max_timeout_ms=int(config.get("bash_max_timeout_ms") or MAX_TIMEOUT_MS),
        sandbox=SandboxSettings.from_config(config),
    )

    pager = config.get("pager")
    use_rg = config.get("use_ripgrep")
    tools: list[Tool] = [bash, EditTool()]
    fetch_enabled = config.get("fetch_enabled")
    if fetch_enabled is None or bool(fetch_enabled):
        size_mb = config.get("fetch_max_size_mb")
        max_bytes = int(float(size_mb) * 1024 * 1024) if size_mb else MAX_BYTES
        tools.append(FetchTool(max_bytes=max_bytes))
    tools += [
        GlobTool(),
        GrepTool(use_ripgrep=None if use_rg is None else bool(use_rg)),
        LsTool(),
        ViewTool(),
        WriteTool(),
        PatchTool(),
        ResultPageTool(pager if isinstance(pager, ResultPager) else None),
    ]
    return tools
