"""``pando acp`` from start to exit: stdout reserved for frames, the App, the connection, the end.

Order matters: stdout is taken for frames before anything can print; the App starts (primary or
secondary) with the editor as its permission asker; the connection runs until the editor closes
stdin; then running turns are cancelled and stored, the sessions used are ended, and the App shuts
down. Logs go to ``.pando/logs/acp.log`` and warnings also to stderr, which editors show in their
agent log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("pando.acp")


def _log_to_file(workdir: Path) -> logging.Handler | None:
    logs = workdir / ".pando" / "logs"
    try:
        logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = logging.FileHandler(logs / "acp.log", encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in root.handlers):
        stderr = logging.StreamHandler()  # stderr: warnings still show in the editor's log
        stderr.setLevel(logging.WARNING)
        root.addHandler(stderr)
    return handler


def serve(context: Any, *, mode: str | None = None, model: str | None = None) -> int:
    """Run the ACP agent on stdin/stdout until the client disconnects; returns the exit code."""
    from importlib.metadata import PackageNotFoundError, version

    from pando_core.app import App, AppOptions
    from pando_core.errors import UsageError

    from .frames import reserve_stdout
    from .turn import ask_editor

    settings = context.config.section("acp")
    mode = mode or settings.get("default_mode") or "ask"
    allow_yolo = bool(settings.get("allow_yolo"))
    if mode not in ("ask", "agent", "yolo") or (mode == "yolo" and not allow_yolo):
        hint = " (yolo needs [acp] allow_yolo = true)" if mode == "yolo" else ""
        raise UsageError(f"--mode must be ask or agent{' or yolo' if allow_yolo else ''}{hint}")
    frames_fd = reserve_stdout()
    handler = _log_to_file(context.workdir)
    try:
        pando_version = version("pando-core")
    except PackageNotFoundError:
        pando_version = "0"
    options = AppOptions(startup_mode="acp", interactive_permissions=ask_editor, model=model)
    try:
        with App.running(context, options) as app:
            app.coder_agent.tool_filter = editor_tool_filter(settings)
            log.info("pando acp started as %s in %s", app.role, app.workdir)
            from .agent import PandoAgent

            agent = PandoAgent(app, default_mode=mode, allow_yolo=allow_yolo, version=pando_version)
            try:
                asyncio.run(_serve(agent, frames_fd))
            finally:
                agent.close_servers()
                agent.end_sessions()
    finally:
        with contextlib.suppress(OSError):
            os.close(frames_fd)
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
    return 0


def editor_tool_filter(settings: dict[str, Any]):  # noqa: ANN201
    """The coder agent's tool filter: pando's own view/write/edit/patch/bash give way to the versions that
    go through the editor (registered by the plugin), as far as ``[acp]`` enables them."""
    from .editor_edits import EditorEditTool, EditorPatchTool
    from .editor_files import EditorViewTool, EditorWriteTool
    from .editor_terminal import EditorBashTool

    editor_tools: tuple[type, ...] = ()
    if settings.get("editor_files", True):
        editor_tools += (EditorViewTool, EditorWriteTool, EditorEditTool, EditorPatchTool)
    if settings.get("editor_terminal", True):
        editor_tools += (EditorBashTool,)
    replaced = {cls.name for cls in editor_tools}

    def keep(tool: Any) -> bool:
        return isinstance(tool, editor_tools) or tool.name not in replaced

    return keep


async def _serve(agent: Any, frames_fd: int) -> None:
    from acp.agent.connection import AgentSideConnection

    from .frames import open_stdio

    transport = await open_stdio(os.dup(frames_fd))
    agent.transport = transport
    # the unstable protocol for session/close (fork and resume, not implemented, stay method-not-found)
    connection = AgentSideConnection(agent, transport, listening=False, use_unstable_protocol=True)
    try:
        await connection.listen()  # until the client closes stdin
    finally:
        await agent.client_gone()
        await connection.close()
        await agent.app.aclose_providers()
