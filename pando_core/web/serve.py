"""``pando serve`` from start to exit: checks, the App, the socket, uvicorn, the end.

The server is one more pando instance: it becomes the primary or joins as a secondary exactly like
``pando run`` (``App.running``), so it survives a failover like any other instance. Checks come
first, each a one-line error: the ``web`` extra is installed; a host beyond loopback has a token.
The socket is bound before uvicorn starts, so ``--port 0`` works and the printed address is the
real one. On SIGINT/SIGTERM the live streams end at once, running turns are cancelled (and
stored), the sessions used are ended, and the App shuts down.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

from ..errors import ConfigError, UsageError
from . import EXTRA_MISSING, starlette_available
from .security import is_loopback

GRACE_S = 2  # seconds open requests get to finish at exit


def resolve_settings(context: Any, host: str | None, port: int | None) -> tuple[str, int, str]:
    settings = context.config.section("web")
    host = host or settings.get("host") or "127.0.0.1"
    port = int(settings.get("port") or 8765) if port is None else port
    token = os.environ.get("PANDO_WEB_TOKEN") or settings.get("token") or ""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port number")
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"serving on {host} (beyond loopback) needs a token: set [web] token or PANDO_WEB_TOKEN"
        )
    return host, port, token


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    # no Nagle delay on the accepted connections (Linux copies this to them): a response's headers
    # and body leave at once instead of waiting ~40 ms for the client's delayed ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(context: Any, *, host: str | None = None, port: int | None = None, open_browser: bool = False) -> int:
    if not starlette_available():
        raise UsageError(EXTRA_MISSING)
    host, port, token = resolve_settings(context, host, port)
    sock = bind(host, port)
    from ..app import App, AppOptions
    from .application import WebServer, build
    from .live import LiveHub
    from .turns import PermissionBroker

    hub = LiveHub()
    broker = PermissionBroker(hub)
    try:
        with App.running(context, AppOptions(startup_mode="web", interactive_permissions=broker.ask)) as app:
            web = WebServer(app, token=token, hub=hub, broker=broker)
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{sock.getsockname()[1]}/"
            print(f"pando serve: {url} ({app.role}, pid {os.getpid()})", file=sys.stderr, flush=True)
            if open_browser:
                import webbrowser

                webbrowser.open(url)
            try:
                _run_uvicorn(build(web), sock, hub)
            finally:
                web.turns.end_sessions()
    finally:
        sock.close()
    return 0


def _run_uvicorn(asgi: Any, sock: socket.socket, hub: Any) -> None:
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            hub.close()  # live streams end now, so the exit does not wait for them
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        asgi, log_level="warning", timeout_graceful_shutdown=GRACE_S, access_log=False, lifespan="on"
    )
    # uvicorn re-raises the signal that stopped it once it is done; the handlers here make that a
    # no-op, so the App still shuts down in order (the default SIGTERM would end the process first)
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(Server(config).serve(sockets=[sock]))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(sig: int, frame: Any) -> None:
    """Stands in for the default handlers while uvicorn has its own."""
