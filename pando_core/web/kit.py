"""The common page layout and small helpers, for the core's pages and plugins' (``pando_web_routes``).

    from pando_core.web.kit import page, escape, csrf_field
    return page(request, "Tasks", "<table>...</table>")

A page is plain HTML that reads well without JavaScript; ``/static/pando.js`` adds live updates
(elements with ``data-live="TABLE[,TABLE]"`` are reloaded from ``data-src`` when those tables
change; ``<pre data-sse-append="URL">`` shows the ``text`` of each event of an SSE stream, until an
``end`` event) and streams the answer of ``form[data-stream]`` prompts.
"""

from __future__ import annotations

import json
import time
from html import escape
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse

__all__ = ["HTMLResponse", "JSONResponse", "StreamingResponse", "csrf_field", "escape", "page", "sse_response", "when"]


def csrf_token(request: Any) -> str:
    return getattr(request.state, "csrf", "")


def csrf_field(request: Any) -> str:
    """The hidden form field every state-changing form needs."""
    return f'<input type="hidden" name="csrf_token" value="{escape(csrf_token(request))}">'


def when(ms: Any) -> str:
    """A stored millisecond timestamp as local time, for tables."""
    if not ms:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(ms) / 1000))


def page(request: Any, title: str, body: str, *, status: int = 200, scripts: tuple[str, ...] = ()) -> HTMLResponse:
    """*body* (HTML) in the layout: header with the core's and plugins' links, the CSRF token."""
    nav = getattr(request.app.state, "nav", {})
    links = "".join(f'<a href="{escape(path)}">{escape(name)}</a>' for name, path in nav.items())
    extra = "".join(f'<script src="{escape(src)}" defer></script>' for src in scripts)
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{escape(csrf_token(request))}">
<title>{escape(title)} · pando</title>
<link rel="stylesheet" href="/static/pando.css">
<script src="/static/pando.js" defer></script>{extra}
</head><body>
<header><strong>pando</strong> <nav>{links}</nav><span id="live-state" title="live updates"></span></header>
<main><h1>{escape(title)}</h1>
{body}
</main></body></html>"""
    return HTMLResponse(html, status_code=status)


def sse_response(stream: Any) -> StreamingResponse:
    """An async iterator of SSE text as a response no proxy buffers."""
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
    )


def json_body(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
