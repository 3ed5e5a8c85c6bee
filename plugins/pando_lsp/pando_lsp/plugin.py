"""The pluggy wiring of pando-lsp: the [lsp] section, ``app.lsp``, diagnostics after edits, the
``diagnostics`` tool, ``pando lsp`` and shutdown. Only light imports here (no lsprotocol)."""

from __future__ import annotations

from pathlib import Path

from pando_core import hookimpl
from pando_core.config import ConfigSection, Field

SECTION = ConfigSection(
    "lsp",
    {
        "enabled": Field("bool", True, "start language servers for edited files"),
        "wait_ms": Field("int", 5000, "how long an edit waits for the file's diagnostics (milliseconds)"),
        "auto_detect": Field("bool", True, "use well-known servers found on PATH (pylsp, gopls, clangd, ...)"),
    },
    "language servers; one [lsp.NAME] table per server: command, args, filetypes, root_markers, "
    "initialization_options, enabled",
    open=True,
)

EDIT_TOOLS = {"edit", "write", "patch"}


def active(app) -> bool:  # noqa: ANN001
    """Servers run (lazily, on the first file of their language) unless ``[lsp] enabled = false``
    or ``--skip-lsp`` (``AppOptions.skip_lsp``, or the root option) was given."""
    if not app.config.section("lsp").get("enabled", True):
        return False
    return not (app.options.skip_lsp or app.context.root_options.get("skip_lsp"))


@hookimpl
def pando_config_sections():
    return SECTION


@hookimpl
def pando_app_subsystems(app):
    if not active(app):
        return None
    from .config import load_servers
    from .manager import LspManager
    from .status import StatusFile

    section = app.config.section("lsp")
    servers = load_servers(section)
    if not servers:
        return None
    status = StatusFile(Path(app.workdir), {"instance": getattr(app, "instance_id", None), "mode": app.options.startup_mode})
    manager = LspManager(Path(app.workdir), servers, int(section.get("wait_ms", 5000)), status)
    if app.runs_background_work:  # a session host: seen by `pando lsp status` before its first file
        manager.changed()
    return {"lsp": manager}


def _edited_paths(app, tool_name: str, arguments: dict, result) -> list[Path]:  # noqa: ANN001
    workdir = Path(app.workdir)
    if tool_name == "patch":
        files = (getattr(result, "metadata", None) or {}).get("files") or []
        raw = [f["path"] for f in files if f.get("action") != "delete" and f.get("path")]
    else:
        raw = [arguments.get("file_path")] if arguments.get("file_path") else []
    return [(workdir / p) if not Path(p).is_absolute() else Path(p) for p in raw]


PATCH_TARGETS = ("*** Update File:", "*** Add File:")


def _planned_paths(app, tool_name: str, arguments: dict) -> list[Path]:  # noqa: ANN001
    """The files an edit/write/patch is about to change (before it runs)."""
    if tool_name == "patch":
        text = arguments.get("patch_text") or ""
        raw = [line.split(":", 1)[1].strip() for line in str(text).splitlines() if line.startswith(PATCH_TARGETS)]
    else:
        raw = [arguments.get("file_path")] if arguments.get("file_path") else []
    workdir = Path(app.workdir)
    return [((workdir / p) if not Path(p).is_absolute() else Path(p)).resolve() for p in raw if p]


@hookimpl
async def pando_before_tool_call(app, tool_name, arguments):
    """Remember the file's diagnostics before the edit, so that only the new ones are appended."""
    manager = getattr(app, "lsp", None)
    if manager is None or tool_name not in EDIT_TOOLS:
        return None
    import asyncio

    paths = [path for path in _planned_paths(app, tool_name, arguments) if manager.server_for(path)]
    found = await asyncio.gather(*(asyncio.wrap_future(manager.submit(manager.baseline(p))) for p in paths))
    manager.baselines.update(zip(paths, found, strict=True))
    return None


@hookimpl
async def pando_after_tool_call(app, tool_name, arguments, result):
    manager = getattr(app, "lsp", None)
    if manager is None or tool_name not in EDIT_TOOLS:
        return None
    planned = [manager.baselines.pop(path, None) for path in _planned_paths(app, tool_name, arguments)]
    if getattr(result, "is_error", False):
        return None
    import asyncio

    from pando_core.agent.tools.base import ToolResult

    from .manager import format_report

    paths = [path.resolve() for path in _edited_paths(app, tool_name, arguments, result) if manager.server_for(path)]
    befores = dict(zip(_planned_paths(app, tool_name, arguments), planned, strict=True))
    # all files of a patch at once: the whole wait stays within one wait_ms
    reports = await asyncio.gather(*(asyncio.wrap_future(manager.submit(manager.check(p))) for p in paths))
    notes = [
        format_report(report, manager.workdir, befores.get(path, []))  # not planned (a move): all new
        for path, report in zip(paths, reports, strict=True)
        if report is not None
    ]
    if not notes:
        return None
    return ToolResult(result.content + "\n\n" + "\n\n".join(notes), result.is_error, result.metadata)


@hookimpl
def pando_register_tools(app):
    manager = getattr(app, "lsp", None)
    if manager is None:
        return []
    tool = getattr(manager, "tool", None)
    if tool is None:
        from .tool import DiagnosticsTool

        tool = manager.tool = DiagnosticsTool(manager)
    return [tool]


@hookimpl
def pando_register_commands(cli):
    from .cli import build_cli

    cli.add_typer(build_cli(), name="lsp", help="Language servers: status and diagnostics of a file.")


@hookimpl
def pando_shutdown(app):
    manager = getattr(app, "lsp", None)
    if manager is not None:
        manager.shutdown(5.0)
