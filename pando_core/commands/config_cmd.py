"""``pando config show``: the merged configuration, secrets redacted."""

from __future__ import annotations

import json

import typer

from ..context import current

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


@config_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Print the merged configuration (files, then PANDO_* variables), secrets redacted."""
    config = current().config
    data = config.redacted()
    if as_json:
        typer.echo(json.dumps({"sources": config.sources, "config": data}, indent=2, default=str))
        return
    typer.echo("# sources: " + (", ".join(config.sources) if config.sources else "defaults only"))
    for warning in config.warnings:
        typer.echo(f"# warning: {warning}")
    typer.echo(_to_toml(data))


def _to_toml(data: dict) -> str:
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for key, value in scalars.items():
        lines.append(f"{key} = {_value(value)}")
    for name, table in data.items():
        if isinstance(table, dict):
            _table(lines, name, table)
    return "\n".join(lines).strip()


def _table(lines: list[str], name: str, table: dict) -> None:
    lines.append("")
    lines.append(f"[{name}]")
    nested = {}
    for key, value in table.items():
        if isinstance(value, dict):
            nested[key] = value
        elif value is not None:
            lines.append(f"{key} = {_value(value)}")
    for key, value in nested.items():
        _table(lines, f"{name}.{key}", value)


def _value(value) -> str:
    return json.dumps(value)


def register(cli: typer.Typer) -> None:
    cli.add_typer(config_app, name="config")
