"""How each engine is run: the command line, where the prompt goes, and its MCP-config form.

``build(engine, ...)`` returns an :class:`EngineCommand`; it never guesses: an unknown engine or a
program that is not on PATH is a ``ValidationError`` naming it. The ``pando`` engine is this pando
run headless; ``command`` is a user template (``{prompt}``, ``{work_dir}``, ``{model}``).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pando_core.errors import ValidationError

ENGINES = ("pando", "claude", "gemini", "opencode", "codex", "copilot", "command")
ALIASES = {"claude-code": "claude", "gemini-cli": "gemini", "copilot-cli": "copilot"}
# Linux refuses one argv string longer than 128 KiB (MAX_ARG_STRLEN): leave room for the rest
ARGV_PROMPT_LIMIT = 120 * 1024


@dataclass
class EngineCommand:
    argv: list[str]
    stdin_text: str | None = None  # the prompt, for engines that read it from stdin
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # path -> content, written before the run


def canonical(engine: str | None, default: str = "pando") -> str:
    name = (engine or default).strip().lower()
    name = ALIASES.get(name, name)
    if name not in ENGINES:
        raise ValidationError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    return name


def pando_mcp_server(workdir: Path) -> dict[str, Any]:
    """The stdio MCP server entry that gives a sub-agent pando's own tools (pando-mcp)."""
    return {"command": sys.executable, "args": ["-m", "pando_core", "--cwd", str(workdir), "mcp-server"]}


def _program(name: str, configured: str | None) -> str:
    program = configured or name
    found = shutil.which(program)
    if found is None:
        raise ValidationError(f"engine {name}: the program {program!r} is not on PATH (install it or set [mesnada] {name}_command)")
    return found


def _check_argv_prompt(engine: str, prompt: str) -> None:
    size = len(prompt.encode("utf-8"))
    if size > ARGV_PROMPT_LIMIT:
        raise ValidationError(
            f"engine {engine} takes the prompt on its command line, which is limited to {ARGV_PROMPT_LIMIT // 1024} KiB;"
            f" this prompt is {size // 1024} KiB (the pando engine takes any size)"
        )


def build(
    engine: str,
    *,
    task_id: str,
    prompt: str,
    work_dir: str,
    workdir: Path,
    model: str | None = None,
    mcp_servers: dict[str, Any] | None = None,
    mcp_dir: Path | None = None,
    extra_args: list[str] | None = None,
    config: dict[str, Any] | None = None,
) -> EngineCommand:
    """The command for one task. ``mcp_servers`` (name -> stdio server) is given in each engine's
    own configuration form, written under ``mcp_dir``."""
    config = config or {}
    extra = list(extra_args or [])
    mcp_servers = mcp_servers or {}
    mcp_path = (mcp_dir / "mcp-config.json") if mcp_dir is not None else None

    if engine == "pando":
        text = f"You are the task_id: {task_id}\n\n{prompt}"
        base = shlex.split(config.get("pando_command") or "") or [sys.executable, "-m", "pando_core"]
        argv = [*base, "--cwd", work_dir, "--yolo", "--output-format", "text", "--quiet"]
        if model:
            argv += ["--model", model]
        big = len(text.encode("utf-8")) > ARGV_PROMPT_LIMIT
        argv += ["-p", "-" if big else text, *extra]
        # the child loads its own config; NO_COLOR keeps the log readable
        return EngineCommand(argv, stdin_text=text if big else None, env={"NO_COLOR": "1"})

    if engine == "command":
        template = config.get("command") or ""
        if not template.strip():
            raise ValidationError("engine command: set [mesnada] command, e.g. command = \"mytool --dir {work_dir} {prompt}\"")
        _check_argv_prompt(engine, prompt)
        values = {"prompt": prompt, "work_dir": work_dir, "model": model or "", "task_id": task_id}
        try:
            argv = [part.format(**values) for part in shlex.split(template)]
        except (KeyError, IndexError, ValueError) as exc:
            raise ValidationError(f"[mesnada] command template is not valid: {exc}") from None
        argv[0] = _program(argv[0], None) if "/" not in argv[0] else argv[0]
        return EngineCommand([*argv, *extra])

    _check_argv_prompt(engine, prompt)
    program = _program(engine, config.get(f"{engine}_command"))
    files: dict[str, str] = {}
    env: dict[str, str] = {}

    if engine == "claude":
        argv = [program, "--print", "--output-format", "text", "--verbose", "--dangerously-skip-permissions"]
        if model:
            argv += ["--model", model]
        if mcp_servers and mcp_path is not None:
            files[str(mcp_path)] = json.dumps({"mcpServers": mcp_servers}, indent=2)
            argv += ["--mcp-config", str(mcp_path)]
        argv += [*extra, "-p", prompt]
    elif engine == "gemini":
        argv = [program, "--yolo"]
        if model:
            argv += ["--model", model]
        if mcp_servers and mcp_dir is not None:
            settings = mcp_dir / "settings.json"
            files[str(settings)] = json.dumps({"mcpServers": mcp_servers}, indent=2)
            env["GEMINI_CLI_SYSTEM_SETTINGS_PATH"] = str(settings)
        argv += [*extra, "--prompt", prompt]
    elif engine == "opencode":
        argv = [program, "run"]
        if model:
            argv += ["--model", model]
        if mcp_servers and mcp_dir is not None:
            opencode = mcp_dir / "opencode.json"
            local = {
                name: {"type": "local", "command": [server["command"], *server.get("args", [])], "enabled": True}
                for name, server in mcp_servers.items()
            }
            files[str(opencode)] = json.dumps({"mcp": local}, indent=2)
            env["OPENCODE_CONFIG"] = str(opencode)
        argv += [*extra, prompt]
    elif engine == "codex":
        argv = [program, "exec", "--full-auto", "--skip-git-repo-check"]
        if model:
            argv += ["--model", model]
        for name, server in mcp_servers.items():  # codex takes TOML overrides on its command line
            argv += ["-c", f"mcp_servers.{name}.command={json.dumps(server['command'])}"]
            argv += ["-c", f"mcp_servers.{name}.args={json.dumps(server.get('args', []))}"]
        argv += [*extra, prompt]
    else:  # copilot
        argv = [program, "--yolo", "--no-color", "--no-custom-instructions"]
        if model:
            argv += ["--model", model]
        if mcp_servers and mcp_path is not None:
            files[str(mcp_path)] = json.dumps({"mcpServers": mcp_servers}, indent=2)
            argv += ["--additional-mcp-config", "@" + str(mcp_path)]
        argv += [*extra, "-p", prompt]
    return EngineCommand(argv, env=env, files=files)
