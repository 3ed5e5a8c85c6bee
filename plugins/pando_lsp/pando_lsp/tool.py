"""The read-only ``diagnostics`` tool: a file's errors and warnings from its language server."""

from __future__ import annotations

import asyncio

from pando_core.agent.tools.base import ToolError, ToolResult

from .manager import LspManager, format_project, format_report


class DiagnosticsTool:
    name = "diagnostics"
    description = (
        "Errors and warnings from the language server for a file (at most 10), and the project's counts. "
        "Use after changing code to check it compiles/lints; without file_path, the project's errors and "
        "warnings per file (the 20 worst files, 5 each; files opened so far)."
    )
    parameters = {
        "type": "object",
        "properties": {"file_path": {"type": "string", "description": "File to check (relative to the workdir)"}},
    }
    read_only = True

    def __init__(self, manager: LspManager) -> None:
        self.manager = manager

    async def run(self, args, ctx) -> ToolResult:  # noqa: ANN001
        raw = args.get("file_path")
        if not raw:
            files = self.manager.project()
            text = format_project(files, self.manager.workdir, "in the files opened so far")
            rows = [{"path": str(f["path"]), "errors": f["errors"], "warnings": f["warnings"]} for f in files]
            return ToolResult(text, metadata={"files": rows})
        path = ctx.resolve_path(str(raw))
        if not path.is_file():
            raise ToolError(f"{raw}: no such file")
        if self.manager.server_for(path) is None:
            return ToolResult(f"No language server handles {path.suffix or path.name} files.")
        report = await asyncio.wrap_future(self.manager.submit(self.manager.check(path)))
        return ToolResult(format_report(report, self.manager.workdir), metadata={"diagnostics": report.diagnostics})
