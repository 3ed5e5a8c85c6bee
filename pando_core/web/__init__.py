"""``pando serve``: a web UI and REST API on one more pando instance (the ``web`` extra).

Nothing here imports Starlette: plugins return ``WebRoutes`` from ``pando_web_routes`` and the
server (``serve.py``) is the only module that needs the extra. The modules, one concern each:
``serve`` (the command: App, socket, uvicorn), ``application`` (the Starlette app assembled from
core and plugin routes), ``security`` (token login, CSRF and Host checks), ``live`` (the change
feed as server-sent events), ``turns`` (a prompt run as a stream; permissions answered from the
page), ``api`` (REST), ``pages`` (HTML), ``openapi`` (the schema), ``kit`` (page layout and
helpers for plugin pages).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXTRA_MISSING = "pando serve needs the web extra: pip install 'pando-core[web]'"


@dataclass
class WebRoutes:
    """What a plugin adds to ``pando serve``: Starlette ``routes`` and header ``nav`` links."""

    routes: list[Any] = field(default_factory=list)
    nav: dict[str, str] = field(default_factory=dict)


def starlette_available() -> bool:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True
