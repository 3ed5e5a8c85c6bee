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
        typer.echo("no running pando on this directory; the servers it would use:")
        for row in configured:
            found = row["found"] or "NOT FOUND on PATH"
            typer.echo(f"  {row['name']}  [{row['source']}]  {' '.join(row['extensions'])}  {row['command']}  ({found})")

    @cli.command("diagnostics")
    def diagnostics(
        path: Path = typer.Argument(..., help="the file to check"),
        wait_ms: int = typer.Option(None, "--wait-ms", help="how long to wait for the server (default [lsp] wait_ms)"),
        as_json: bool = typer.Option(False, "--json", help="print JSON"),
    ) -> None:
        """Start the file's language server, open the file and print its errors and warnings."""
        from .manager import format_report

        context, manager = _manager(wait_ms)
        target = path if path.is_absolute() else Path.cwd() / path
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
