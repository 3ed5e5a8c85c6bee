"""The core's HTML pages: sessions (list, one session with its prompt box), status, login.

Every list is rendered on the server (readable without JavaScript); an element with ``data-live``
is re-fetched from its ``data-src`` fragment when the named tables change. Forms post to the page
routes here, which answer with a redirect, or are sent by ``pando.js`` through the API.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..errors import NotFoundError, PandoError
from .api import instances_data, list_sessions, plugins_data, status_data
from .kit import csrf_field, escape, page, when
from .security import LOGIN_COOKIE, login_cookie_value

SESSIONS_PER_PAGE = 50


def login_html(csrf: str, error: str) -> str:
    """The login form (also what the guard answers, with 401, to a page request without the token)."""
    problem = f'<p class="error">{escape(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Log in · pando</title>
<link rel="stylesheet" href="/static/pando.css"></head><body><main class="login"><h1>pando</h1>{problem}
<form method="post" action="/login"><input type="hidden" name="csrf_token" value="{escape(csrf)}">
<label>Token <input type="password" name="token" autofocus></label> <button>Log in</button></form>
<p class="hint">The token is <code>[web] token</code> or <code>PANDO_WEB_TOKEN</code> of the server.</p>
</main></body></html>"""


def session_rows(sessions: list[dict[str, Any]]) -> str:
    if not sessions:
        return '<tr><td colspan="5" class="empty">No sessions yet.</td></tr>'
    return "".join(
        f'<tr data-id="{escape(s["id"])}"><td><a href="/sessions/{quote(s["id"])}">{escape(s["title"])}</a></td>'
        f'<td class="num">{s["messages"]}</td><td>{when(s["updated_at"])}</td>'
        f'<td class="num">${s["cost"]:.4f}</td><td><code>{escape(s["id"][:8])}</code></td></tr>'
        for s in sessions
    )


def transcript_html(messages: list[dict[str, Any]]) -> str:
    out = []
    for message in messages:
        parts = []
        for part in message.get("parts", []):
            kind, data = part.get("type"), part.get("data", {})
            if kind == "text" and str(data.get("text", "")).strip():
                parts.append(f'<div class="text">{escape(data["text"])}</div>')
            elif kind == "reasoning" and str(data.get("thinking", "")).strip():
                parts.append(f'<details class="reasoning"><summary>thinking</summary>{escape(data["thinking"])}</details>')
            elif kind == "tool_call":
                parts.append(
                    f'<div class="tool-call">→ <code>{escape(str(data.get("name", "?")))}</code> '
                    f"<code>{escape(str(data.get('input', ''))[:500])}</code></div>"
                )
            elif kind == "tool_result":
                error = " error" if data.get("is_error") else ""
                parts.append(
                    f'<details class="tool-result{error}"><summary>{escape(str(data.get("name", "?")))} result</summary>'
                    f"<pre>{escape(str(data.get('content', ''))[:5000])}</pre></details>"
                )
            elif kind == "finish" and data.get("reason") in ("canceled", "error", "permission_denied"):
                parts.append(f'<div class="finish">turn ended: {escape(str(data["reason"]))}</div>')
        if parts:
            out.append(f'<section class="msg {escape(message["role"])}"><h3>{escape(message["role"])}</h3>{"".join(parts)}</section>')
    return "".join(out) or '<p class="empty">No messages yet.</p>'


def prompt_box(request: Request, session_id: str | None) -> str:
    target = f"/api/sessions/{quote(session_id)}/prompt" if session_id else "/api/sessions"
    return f"""<form class="prompt" data-stream="{target}" method="post" action="{target}">{csrf_field(request)}
<textarea name="prompt" rows="3" placeholder="Ask pando…" required></textarea>
<button type="submit">Send</button></form>
<noscript><p class="hint">Sending a prompt needs JavaScript (the answer is streamed).</p></noscript>
<div id="stream" class="stream" aria-live="polite"></div><div id="permissions"></div>"""


def routes(web: Any) -> list[Route]:
    app = web.app

    def home(request: Request) -> Response:
        return RedirectResponse("/sessions", status_code=303)

    def sessions_page(request: Request) -> Response:
        offset = _offset(request)
        data = list_sessions(web, SESSIONS_PER_PAGE, offset)
        pager = _pager(offset, data["next_offset"])
        body = f"""{prompt_box(request, None)}
<table class="sessions"><thead><tr><th>Title</th><th>Messages</th><th>Updated</th><th>Cost</th><th>Id</th></tr></thead>
<tbody id="session-rows" data-live="sessions" data-src="/sessions/rows?offset={offset}">{session_rows(data["sessions"])}</tbody></table>
{pager}"""
        return page(request, "Sessions", body)

    def sessions_rows(request: Request) -> Response:
        data = list_sessions(web, SESSIONS_PER_PAGE, _offset(request))
        return HTMLResponse(session_rows(data["sessions"]))

    def session_page(request: Request) -> Response:
        try:
            session = app.sessions.find(request.path_params["id"])
        except PandoError as exc:
            return page(request, "Session not found", f'<p class="error">{escape(str(exc))}</p>', status=404)
        sid = quote(session["id"])
        messages = app.messages.list(session["id"])
        pending = json.dumps(web.broker.pending(session["id"]))
        body = f"""<p class="meta"><code>{escape(session["id"])}</code> · updated {when(session.get("updated_at"))}
· ${float(session.get("cost") or 0):.4f} · export <a href="/api/sessions/{sid}/export?format=markdown">markdown</a>
<a href="/api/sessions/{sid}/export?format=json">json</a></p>
<div class="actions"><form method="post" action="/sessions/{sid}/rename">{csrf_field(request)}
<input name="title" value="{escape(session["title"])}" aria-label="title"> <button>Rename</button></form>
<form method="post" action="/sessions/{sid}/delete" data-confirm="Delete this session?">{csrf_field(request)}<button class="danger">Delete</button></form></div>
<div id="transcript" data-live="messages,sessions" data-src="/sessions/{sid}/transcript">{transcript_html(messages)}</div>
{prompt_box(request, session["id"])}
<script type="application/json" id="pending-permissions">{escape(pending)}</script>"""
        return page(request, session["title"], body)

    def session_transcript(request: Request) -> Response:
        try:
            session = app.sessions.find(request.path_params["id"])
        except NotFoundError:
            return HTMLResponse('<p class="empty">This session was deleted.</p>')
        return HTMLResponse(transcript_html(app.messages.list(session["id"])))

    async def session_rename_form(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        title = (form.get("title") or [""])[0].strip()
        session = await run_in_threadpool(app.sessions.find, request.path_params["id"])
        if title:
            await run_in_threadpool(app.sessions.rename, session["id"], title)
        return RedirectResponse(f"/sessions/{quote(session['id'])}", status_code=303)

    def session_delete_form(request: Request) -> Response:
        session = app.sessions.find(request.path_params["id"])
        app.sessions.delete(session["id"])
        return RedirectResponse("/sessions", status_code=303)

    def status_page(request: Request) -> Response:
        data = status_data(app)
        services = "".join(
            f"<tr><td>{escape(str(s.get('name')))}</td><td>{escape(str(s.get('plugin')))}</td>"
            f"<td>{escape(str(s.get('state')))}</td><td>{escape(str(s.get('problem') or ''))}</td></tr>"
            for s in data["services"]
        ) or '<tr><td colspan="4" class="empty">none</td></tr>'
        instances = "".join(
            f"<tr><td><code>{escape(i['instance_id'])}</code></td><td>{i['pid']}</td><td>{escape(i['role'])}</td>"
            f"<td>{i['epoch']}</td><td>{'yes' if i['is_primary'] else ''}</td></tr>"
            for i in instances_data(app)
        )
        plugins = ""
        for info in plugins_data(app):
            errors = "; ".join(f"{hook}: {e.get('last_error', '')}" for hook, e in (info.get("hook_errors") or {}).items())
            problem = info.get("error") or errors
            plugins += (
                f"<tr><td>{escape(info['name'])}</td><td>{escape(str(info.get('version') or ''))}</td>"
                f"<td>{escape(info['status'])}</td><td class=\"error\">{escape(str(problem or ''))}</td></tr>"
            )
        mismatch = f'<p class="error">{escape(data["plugin_mismatch"])}</p>' if data["plugin_mismatch"] else ""
        body = f"""<div>{mismatch}
<p>This server is the <strong id="role">{escape(data["role"])}</strong> (pid {data["pid"]}, epoch {data["epoch"]});
the primary is pid {data["primary_pid"]}. Working directory <code>{escape(data["workdir"])}</code>.</p>
<h2>Instances</h2><table><thead><tr><th>Instance</th><th>Pid</th><th>Role</th><th>Epoch</th><th>Primary</th></tr></thead><tbody>{instances}</tbody></table>
<h2>Services</h2><table><thead><tr><th>Service</th><th>Plugin</th><th>State</th><th>Problem</th></tr></thead><tbody>{services}</tbody></table>
<h2>Plugins</h2><table><thead><tr><th>Plugin</th><th>Version</th><th>Status</th><th>Errors</th></tr></thead><tbody>{plugins}</tbody></table></div>"""
        return page(request, "Status", body)

    def login_form(request: Request) -> Response:
        if request.state.authenticated and web.token:
            return RedirectResponse("/sessions", status_code=303)
        return HTMLResponse(login_html(request.state.csrf, ""))

    async def login(request: Request) -> Response:
        import hmac

        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        sent = (form.get("token") or [""])[0]
        if not web.token:
            return RedirectResponse("/sessions", status_code=303)
        if not hmac.compare_digest(sent.encode(), web.token.encode()):
            return HTMLResponse(login_html(request.state.csrf, "That is not the token."), status_code=401)
        response = RedirectResponse("/sessions", status_code=303)
        response.set_cookie(LOGIN_COOKIE, login_cookie_value(web.token), httponly=True, samesite="strict")
        return response

    return [
        Route("/", home),
        Route("/sessions", sessions_page),
        Route("/sessions/rows", sessions_rows),
        Route("/sessions/{id}", session_page),
        Route("/sessions/{id}/transcript", session_transcript),
        Route("/sessions/{id}/rename", session_rename_form, methods=["POST"]),
        Route("/sessions/{id}/delete", session_delete_form, methods=["POST"]),
        Route("/status", status_page),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
    ]


def _offset(request: Request) -> int:
    try:
        return max(0, int(request.query_params.get("offset", 0)))
    except ValueError:
        return 0


def _pager(offset: int, next_offset: int | None) -> str:
    links = []
    if offset > 0:
        links.append(f'<a href="/sessions?offset={max(0, offset - SESSIONS_PER_PAGE)}">← newer</a>')
    if next_offset is not None:
        links.append(f'<a href="/sessions?offset={next_offset}">older →</a>')
    return f'<p class="pager">{" ".join(links)}</p>' if links else ""
