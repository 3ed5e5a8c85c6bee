"""``pando doctor``: is this machine set up the way pando's configuration asks? (the bash sandbox)"""

import json

import typer

from ..context import current


def doctor_command(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Check the bash sandbox: the [tools] sandbox mode, bubblewrap's path and version, and whether
    it actually runs here (a real `bwrap ... true`). Exit 1 when sandbox = "bwrap" cannot work."""
    from ..agent.tools.sandbox import SandboxSettings, describe

    sandbox = describe(SandboxSettings.from_config(current().config.section("tools")))
    if as_json:
        typer.echo(json.dumps({"sandbox": sandbox}, indent=2))
    else:
        _print_sandbox(sandbox)
    if sandbox["state"] == "error":
        raise typer.Exit(1)


def _print_sandbox(sandbox: dict) -> None:
    summary = {
        "on": "on: bash runs under bubblewrap",
        "off": 'off ([tools] sandbox = "off"): bash runs unsandboxed',
        "unsandboxed": "NOT sandboxed: bash runs unsandboxed (auto, bubblewrap unusable)",
        "error": 'ERROR: [tools] sandbox = "bwrap" but bubblewrap is unusable; bash calls fail',
    }[sandbox["state"]]
    version = f" {sandbox['bwrap_version']}" if sandbox["bwrap_version"] else ""
    found = f"{sandbox['bwrap']}{version}" if sandbox["bwrap"] else "not installed"
    typer.echo(f"sandbox:     {summary}")
    typer.echo(f"mode:        {sandbox['mode']}")
    typer.echo(f"bubblewrap:  {found}{', works here' if sandbox['bwrap_works'] else ''}")
    if sandbox["problem"]:
        typer.echo(f"problem:     {sandbox['problem']}")
    if sandbox["state"] == "on":
        network = "on" if sandbox["network"] else "off"
        if not sandbox["network"] and sandbox["network_commands"]:
            network += f" (on for: {', '.join(sandbox['network_commands'])})"
        typer.echo(f"network:     {network}")
        typer.echo(f"writable:    workdir, /tmp (private){''.join(', ' + p for p in sandbox['writable_paths'])}")
        typer.echo(f"hidden:      {', '.join(sandbox['hidden_paths']) or 'nothing'}")


def register(cli: typer.Typer) -> None:
    cli.command("doctor")(doctor_command)
