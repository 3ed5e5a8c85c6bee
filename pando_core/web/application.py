"""The Starlette application of ``pando serve``: core routes, plugins' routes, guard, lifespan.

``WebServer`` holds what the routes share (the App, the live hub, the turn runner, the permission
broker, the token); ``build`` assembles the ASGI app. Plugins' routes come from
``pando_web_routes``; a plugin whose hook fails, or returns something else than ``WebRoutes``, is
reported and left out, the rest still serve.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from . import WebRoutes
from .live import LiveHub
from .turns import PermissionBroker, TurnRunner

log = logging.getLogger("pando.web")
STATIC = Path(__file__).parent / "static"
CORE_NAV = {"Sessions": "/sessions", "Status": "/status"}


class WebServer:
    def __init__(self, app: Any, *, token: str, hub: LiveHub, broker: PermissionBroker) -> None:
        self.app = app
        self.token = token
        self.hub = hub
        self.broker = broker
        self.turns = TurnRunner(app, hub)


def plugin_routes(app: Any) -> tuple[list[Any], dict[str, str]]:
    routes: list[Any] = []
    nav: dict[str, str] = {}
    for plugin, declared in app.plugins.hooks.pando_web_routes.per_plugin(app=app):
        for item in declared if isinstance(declared, list | tuple) else [declared]:
            if not isinstance(item, WebRoutes):
                log.warning("plugin %r: pando_web_routes must return WebRoutes; ignored", plugin)
                continue
            routes.extend(item.routes)
            nav.update(item.nav)
    return routes, nav


def build(web: WebServer) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    from .. import __version__
    from . import api, openapi, pages
    from .security import Guard

    def static(request: Any) -> Response:
        name = request.path_params["name"]
        path = STATIC / name
        if "/" in name or not path.is_file():
            return Response("not found\n", status_code=404)
        return FileResponse(path, headers={"cache-control": "no-cache"})

    extra, plugin_nav = plugin_routes(web.app)
    routes = [*api.routes(web), *pages.routes(web), Route("/static/{name}", static), *extra]

    def openapi_json(request: Any) -> Response:
        """This schema."""
        return JSONResponse(openapi.schema(routes, __version__))

    routes.append(Route("/api/openapi.json", openapi_json))

    @contextlib.asynccontextmanager
    async def lifespan(starlette: Any):  # noqa: ANN202
        import asyncio

        web.hub.bind(asyncio.get_running_loop())
        web.app.changes.add_listener(web.hub.on_changes)
        try:
            yield
        finally:
            web.app.changes.remove_listener(web.hub.on_changes)
            web.hub.close()
            await web.turns.cancel_all()

    starlette = Starlette(routes=routes, lifespan=lifespan)
    starlette.state.nav = {**CORE_NAV, **plugin_nav}
    starlette.state.web = web
    return Guard(starlette, token=web.token, login_page=pages.login_html)
