"""The pluggy wiring of pando-acp: the ``acp`` command, its ``[acp]`` section, the editor file tools.

Only light imports here: ``pando --version`` and ``pando plugins`` import this module, never the
``acp`` library (which ``pando acp`` alone needs).
"""

from __future__ import annotations

from pando_core import hookimpl
from pando_core.config import ConfigSection, Field

SECTION = ConfigSection(
    "acp",
    {
        "default_mode": Field("str", "ask", "permission mode of new sessions: ask, agent (or yolo when allowed)"),
        "allow_yolo": Field("bool", False, "offer the yolo mode (every tool call runs without asking)"),
        "editor_files": Field("bool", True, "read and write files through the editor when it offers it (unsaved buffers)"),
        "editor_terminal": Field("bool", True, "run bash in the editor's terminal when it offers one"),
    },
    "pando acp: the Agent Client Protocol server for editors",
)


def _serving_acp(app) -> bool:  # noqa: ANN001
    return getattr(getattr(app, "options", None), "startup_mode", "") == "acp"


@hookimpl
def pando_config_sections():
    return SECTION


@hookimpl
def pando_register_commands(cli):
    from .cli import register

    register(cli)


@hookimpl
def pando_register_tools(app):
    """In ``pando acp`` only: the tools that go through the editor (each falls back to pando's own
    when the editor does not offer what it needs; the App's tool filter drops pando's own), and in
    a turn, the tools of the MCP servers the editor gave for its session."""
    if not _serving_acp(app):
        return None
    from .turn import CURRENT_TURN

    turn = CURRENT_TURN.get()
    session_tools = list(turn.session.mcp.tools) if turn is not None and turn.session.mcp is not None else []
    settings = app.config.section("acp")
    tools = []
    if settings.get("editor_files", True):
        from .editor_edits import EditorEditTool, EditorPatchTool
        from .editor_files import EditorViewTool, EditorWriteTool

        tools += [EditorViewTool(), EditorWriteTool(), EditorEditTool(), EditorPatchTool()]
    if settings.get("editor_terminal", True):
        from .editor_terminal import EditorBashTool

        tools.append(EditorBashTool(app.config.section("tools")))
    return tools + session_tools


@hookimpl
def pando_before_tool_call(app, session_id, tool_name, arguments):
    """A tool is about to run: the editor shows its call as in progress."""
    if not _serving_acp(app):
        return None
    from .turn import CURRENT_TURN

    turn = CURRENT_TURN.get()
    if turn is not None and turn.session.id == session_id:
        turn.tool_starting()
    return None
