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
    if not _serving_acp(app) or not app.config.section("acp").get("editor_files", True):
        return None
    from .editor_files import EditorViewTool, EditorWriteTool

    return [EditorViewTool(), EditorWriteTool()]


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
