"""``pando lsp status`` and ``pando lsp diagnostics PATH``."""

from __future__ import annotations

import json
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
    def status(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
        """The language servers this directory would use (configured and found on PATH)."""
        _, manager = _manager()
        rows = manager.status()
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            typer.echo("no language servers (configure [lsp.NAME] command = ..., or install e.g. pylsp)")
            return
        for row in rows:
            found = row["found"] or "NOT FOUND on PATH"
            typer.echo(f"{row['name']}  [{row['source']}]  {' '.join(row['extensions'])}  {row['command']}  ({found})")

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
