"""``pando acp``: the command an editor starts to talk to pando over the Agent Client Protocol."""

from __future__ import annotations

import typer


def acp_command(
    mode: str = typer.Option(
        None, "--mode", help="permission mode of new sessions: ask (default: the editor is asked), agent (\\[permissions] only)"
    ),
    model: str = typer.Option(None, "--model", "-m", help="provider/model for new sessions (default: \\[agent] model)"),
) -> None:
    """Serve pando to an editor over the Agent Client Protocol (JSON-RPC on stdin/stdout).

    Editors (Zed, JetBrains...) start this command themselves: see the pando-acp README for their settings.

    Stdout carries protocol frames only; logs go to .pando/logs/acp.log and stderr.

    It joins a pando already running in this directory (as a secondary) and shares its sessions.
    """
    from pando_core.context import current

    from .serve import serve

    raise typer.Exit(serve(current(), mode=mode, model=model))


def register(cli: typer.Typer) -> None:
    cli.command("acp")(acp_command)
