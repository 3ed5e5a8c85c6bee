"""``pando serve``: the web UI and REST API (the ``web`` extra: pip install 'pando-core[web]')."""

# no `from __future__ import annotations`: typer evaluates the annotations

import typer

from ..context import current


def serve_command(
    host: str = typer.Option(None, "--host", help="address to bind (default: web.host, 127.0.0.1)"),
    port: int = typer.Option(None, "--port", help="port (default: web.port, 8765; 0 picks a free one)"),
    open_browser: bool = typer.Option(False, "--open", help="open the page in a browser"),
) -> None:
    """Serve the web UI and REST API of this directory's sessions (an instance like any other).

    Loopback only unless a token is set (token in the web section of the config, or PANDO_WEB_TOKEN); the API schema is at
    /api/openapi.json."""
    from ..web.serve import serve

    raise typer.Exit(serve(current(), host=host, port=port, open_browser=open_browser))


def register(cli: typer.Typer) -> None:
    cli.command("serve")(serve_command)
