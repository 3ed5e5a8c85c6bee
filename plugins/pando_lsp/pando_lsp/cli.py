"""``pando lsp status`` and ``pando lsp diagnostics PATH``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _manager(wait_ms: int | None = None):  # noqa: ANN202
    from pando_core.context import current
    from pando_core.errors import PandoError

    from .config import load_servers
    from .manager import LspManager

    context = current()
    try:
        section = context.config.section("lsp")
        servers = load_servers(section)
    except PandoError as exc:
        raise _fail(str(exc)) from None
    return context, LspManager(Path(context.workdir), servers, wait_ms or int(section.get("wait_ms", 5000)))


def build_cli() -> typer.Typer:
    cli = typer.Typer(help="Language servers: status and diagnostics of a file.", no_args_is_help=True)

    @cli.command("status")
    def status(as_json: bool = typer.Option(False, "--json", help="print JSON: {running: [...], configured: [...]}")) -> None:
        """The language servers of the pando processes running on this directory (state, pid, last
        error), or, with none running, the servers it would use (configured and found on PATH)."""
        from .status import running

        context, manager = _manager()
        configured = manager.status()
        processes = running(Path(context.workdir))
        if as_json:
            typer.echo(json.dumps({"running": processes, "configured": configured}, indent=2))
            return
        for process in processes:
            ago = max(0, round(time.time() - process["updated_at"]))
            typer.echo(f"pando pid {process['pid']} ({process.get('mode') or '?'}), updated {ago}s ago:")
            for row in process["servers"]:
                pid = f"  pid {row['pid']}" if row["pid"] and row["state"] == "running" else ""
                typer.echo(f"  {row['name']}  {' '.join(row['extensions'])}  {row['state']}{pid}  restarts {row['restarts']}")
                if row.get("last_error"):
                    typer.echo(f"    last error: {row['last_error']}")
        if processes:
            return
        if not configured:
            typer.echo("no language servers (configure [lsp.NAME] command = ..., or install e.g. pylsp)")
            return
        typer.echo("no running pando on this directory (none with pando-lsp); the servers it would use:")
        for row in configured:
            found = row["found"] or "NOT FOUND on PATH"
            typer.echo(f"  {row['name']}  [{row['source']}]  {' '.join(row['extensions'])}  {row['command']}  ({found})")

    @cli.command("diagnostics")
    def diagnostics(
        path: Path = typer.Argument(..., help="the file to check, or a directory: every file a server handles in it"),
        wait_ms: int = typer.Option(None, "--wait-ms", help="how long to wait for the server per file (default [lsp] wait_ms)"),
        top: int = typer.Option(20, "--top", min=1, help="a directory: list the N files with the most errors and warnings"),
        max_files: int = typer.Option(500, "--max-files", min=1, help="a directory: check at most this many files"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Start the file's language server, open the file and print its errors and warnings; for a
        directory, those of each file in it (ignored and hidden files skipped), worst files first."""
        from .manager import format_report

        context, manager = _manager(wait_ms)
        target = path if path.is_absolute() else Path.cwd() / path
        if target.is_dir():
            _directory(context, manager, path, target, top, max_files, as_json)
            return
        if not target.is_file():
            raise _fail(f"{path}: no such file")
        if manager.server_for(target) is None:
            raise _fail(f"no language server handles {target.suffix or target.name} files")
        typer.echo(f"checking {path} ...", err=True)
        try:
            report = manager.run(manager.check(target), manager.wait_ms / 1000 + 10)
        finally:
            manager.shutdown(5.0)
        if as_json:
            rows = {"path": str(target), "server": report.server, "notice": report.notice,
                    "diagnostics": report.diagnostics}  # fmt: skip
            typer.echo(json.dumps(rows, indent=2))
        else:
            typer.echo(format_report(report, Path(context.workdir)))
        if report.notice:
            raise typer.Exit(1)

    return cli


CONCURRENT_CHECKS = 16  # files open at once with the servers while checking a directory


def _directory(context, manager, shown: Path, target: Path, top: int, max_files: int, as_json: bool) -> None:  # noqa: ANN001
    """``pando lsp diagnostics DIR``: check every file a server handles under DIR, bounded."""
    import asyncio
    import math

    from pando_core.agent.tools.glob import walk_files

    from .manager import format_project

    workdir = Path(context.workdir).resolve()
    handled = [p for p, _, _ in walk_files(target.resolve(), base=workdir, skip_hidden=True) if manager.server_for(p)]
    if not handled:
        raise _fail(f"no file under {shown} that a language server handles")
    files, skipped = handled[:max_files], max(0, len(handled) - max_files)
    typer.echo(f"checking {len(files)} files under {shown} ...", err=True)

    async def check_all() -> list:
        gate = asyncio.Semaphore(CONCURRENT_CHECKS)

        async def one(file: Path):  # noqa: ANN202
            async with gate:
                return await manager.check(file)

        return await asyncio.gather(*(one(f) for f in files))

    rounds = math.ceil(len(files) / CONCURRENT_CHECKS)
    try:
        reports = [r for r in manager.run(check_all(), rounds * (manager.wait_ms / 1000) + 30) if r is not None]
    finally:
        manager.shutdown(5.0)
    checked = {r.path for r in reports}
    project = [f for f in manager.project() if f["path"] in checked]
    notices = sorted({r.notice for r in reports if r.notice})
    if as_json:
        rows = [{**f, "path": str(f["path"])} for f in project]
        result = {"path": str(target), "checked": len(files), "not_checked": skipped, "errors": sum(f["errors"] for f in project),
                  "warnings": sum(f["warnings"] for f in project), "files": rows, "notices": notices}  # fmt: skip
        typer.echo(json.dumps(result, indent=2))
    else:
        for notice in notices:
            typer.echo(notice)
        scope = f"in {len(files)} files checked under {shown}" + (f" ({skipped} more not checked: --max-files)" if skipped else "")
        typer.echo(format_project(project, workdir, scope, top=top))
    if notices:
        raise typer.Exit(1)
