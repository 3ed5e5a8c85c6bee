"""The REST API (JSON): sessions, a turn as server-sent events, permissions, status, plugins.

Sync endpoints run on Starlette's thread pool (a store read on a secondary, or a call to the
primary, never holds up the event loop); the ones that stream are async. Errors are JSON
``{"error": "..."}`` with the status of the core's error kind. Each endpoint's docstring is its
OpenAPI summary; ``body`` names its request body for the schema.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..errors import ConfigError, NotFoundError, PandoError, UsageError, ValidationError, one_line
from .kit import sse_response
from .turns import ANSWERS, parse_prompt_body

PAGE_DEFAULT = 50
PAGE_MAX = 500


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def status_for(exc: Exception) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ValidationError | UsageError | ConfigError):
        return 400
    return 503 if isinstance(exc, PandoError) else 500


def guarded(fn: Any) -> Any:
    """A sync endpoint whose core errors become JSON errors (never a traceback page)."""

    def endpoint(request: Request) -> Response:
        try:
            return fn(request)
        except PandoError as exc:
            return error(status_for(exc), one_line(str(exc)))

    endpoint.__doc__ = fn.__doc__
    endpoint.__name__ = fn.__name__
    endpoint.body = getattr(fn, "body", None)  # type: ignore[attr-defined]
    return endpoint


def session_summary(session: dict[str, Any]) -> dict[str, Any]:
    from ..commands.sessions_cmd import _session_summary

    return _session_summary(session)


def page_params(request: Request) -> tuple[int, int]:
    try:
        limit = int(request.query_params.get("limit", PAGE_DEFAULT))
        offset = int(request.query_params.get("offset", 0))
    except ValueError as exc:
        raise ValidationError("limit and offset must be integers") from exc
    return max(1, min(PAGE_MAX, limit)), max(0, offset)


def list_sessions(web: Any, limit: int, offset: int, include_all: bool = False) -> dict[str, Any]:
    """One page of sessions, newest first; ``next_offset`` is null on the last page."""
    rows = web.app.sessions.list(include_children=include_all, include_empty=include_all, limit=limit + 1, offset=offset)
    more = len(rows) > limit
    return {
        "sessions": [session_summary(s) for s in rows[:limit]],
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if more else None,
    }


def routes(web: Any) -> list[Route]:
    """The API's routes; *web* is the server (``application.WebServer``)."""
    app = web.app

    def sessions_index(request: Request) -> Response:
        """List sessions, newest first (paged: ?limit=&offset=; ?all=1 adds empty and sub-agent sessions)."""
        limit, offset = page_params(request)
        include_all = request.query_params.get("all") in ("1", "true")
        return JSONResponse(list_sessions(web, limit, offset, include_all))

    def session_detail(request: Request) -> Response:
        """A session with its messages."""
        session = app.sessions.find(request.path_params["id"])
        messages = app.messages.list(session["id"])
        return JSONResponse({"session": session, "messages": messages, "pending_permissions": web.broker.pending(session["id"])})

    def session_rename(request: Request) -> Response:
        """Rename a session: {"title": "..."}."""
        title = str(_json(request).get("title") or "").strip()
        if not title:
            raise UsageError("the title is empty")
        session = app.sessions.find(request.path_params["id"])
        return JSONResponse(session_summary(app.sessions.rename(session["id"], title)))

    session_rename.body = {"title": "string"}  # type: ignore[attr-defined]

    def session_delete(request: Request) -> Response:
        """Delete a session with its messages and file history."""
        session = app.sessions.find(request.path_params["id"])
        app.sessions.delete(session["id"])
        return JSONResponse({"deleted": session["id"]})

    def session_export(request: Request) -> Response:
        """Export a session: ?format=json (re-importable with `pando sessions import`) or markdown."""
        from ..commands.sessions_cmd import export_json, render_markdown

        session = app.sessions.find(request.path_params["id"])
        messages = app.messages.list(session["id"])
        fmt = request.query_params.get("format", "json")
        name = f"pando-session-{session['id'][:8]}"
        if fmt in ("markdown", "md"):
            return PlainTextResponse(
                render_markdown(session, messages),
                media_type="text/markdown; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}.md"'},
            )
        if fmt != "json":
            raise UsageError("format must be json or markdown")
        return Response(
            json.dumps(export_json(session, messages), indent=2, ensure_ascii=False),
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="{name}.json"'},
        )

    def session_interrupt(request: Request) -> Response:
        """Cancel the turn the session is running, in whichever pando process runs it."""
        session = app.sessions.find(request.path_params["id"])
        app.interrupt_session(session["id"])
        return JSONResponse({"interrupted": session["id"]})

    async def prompt(request: Request) -> Response:
        """Run a turn (a new session, or ?session= / the path's session) and stream its events as SSE (the objects of `pando run -f stream-json`)."""
        from starlette.concurrency import run_in_threadpool

        text = parse_prompt_body(await request.body(), request.headers.get("content-type", ""))
        if not text.strip():
            return error(400, "the prompt is empty")
        session_id = request.path_params.get("id") or request.query_params.get("session")
        try:
            await run_in_threadpool(web.turns.check_model)
            session = await run_in_threadpool(web.turns.open_session, session_id, text)
        except PandoError as exc:
            return error(status_for(exc), one_line(str(exc)))
        events = web.turns.start(session["id"], text)
        response = sse_response(web.turns.stream(events))
        response.headers["x-pando-session"] = session["id"]
        return response

    prompt.body = {"prompt": "string"}  # type: ignore[attr-defined]

    def permissions_index(request: Request) -> Response:
        """Permission questions waiting for an answer (?session= for one session's)."""
        return JSONResponse(web.broker.pending(request.query_params.get("session")))

    async def permission_answer(request: Request) -> Response:
        """Answer a permission question: {"answer": "once" | "session" | "always" | "deny"}."""
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            from urllib.parse import parse_qs

            answer = (parse_qs(raw.decode()).get("answer") or [""])[0]
        else:
            try:
                answer = str((json.loads(raw or b"{}") or {}).get("answer") or "")
            except (ValueError, AttributeError):
                answer = ""
        if answer not in ANSWERS:
            return error(400, f"answer must be one of {', '.join(ANSWERS)}")
        if not web.broker.answer(request.path_params["id"], answer):
            return error(404, f"no permission question {request.path_params['id']} is waiting")
        return JSONResponse({"id": request.path_params["id"], "answer": answer})

    permission_answer.body = {"answer": "string"}  # type: ignore[attr-defined]

    def status(request: Request) -> Response:
        """This server's instance: role, epoch, the primary, instances, services."""
        return JSONResponse(status_data(app))

    def instances(request: Request) -> Response:
        """The pando processes running in this working directory."""
        return JSONResponse(instances_data(app))

    def plugins(request: Request) -> Response:
        """Installed plugins with their status, hooks and errors (also those other instances kept)."""
        return JSONResponse(plugins_data(app))

    async def events(request: Request) -> Response:
        """Server-sent events: every commit of every instance ({type: change, table, kind, ids}), permission questions, resync."""
        return sse_response(web.hub.stream(request))

    return [
        Route("/api/sessions", guarded(sessions_index), methods=["GET"]),
        Route("/api/sessions", prompt, methods=["POST"], name="prompt_new"),
        Route("/api/sessions/{id}", guarded(session_detail), methods=["GET"]),
        Route("/api/sessions/{id}", guarded(session_rename), methods=["PATCH"]),
        Route("/api/sessions/{id}", guarded(session_delete), methods=["DELETE"]),
        Route("/api/sessions/{id}/export", guarded(session_export), methods=["GET"]),
        Route("/api/sessions/{id}/prompt", prompt, methods=["POST"]),
        Route("/api/sessions/{id}/interrupt", guarded(session_interrupt), methods=["POST"]),
        Route("/api/permissions", guarded(permissions_index), methods=["GET"]),
        Route("/api/permissions/{id}", permission_answer, methods=["POST"]),
        Route("/api/status", guarded(status), methods=["GET"]),
        Route("/api/instances", guarded(instances), methods=["GET"]),
        Route("/api/plugins", guarded(plugins), methods=["GET"]),
        Route("/api/events", events, methods=["GET"]),
    ]


def _json(request: Request) -> dict[str, Any]:
    """A sync endpoint's JSON body (read through the request's own loop-free buffer)."""
    import anyio.from_thread

    raw = anyio.from_thread.run(request.body)
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ValidationError("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    return data


# -- data shared by the API and the pages --------------------------------------------------------


def status_data(app: Any) -> dict[str, Any]:
    runtime = app.runtime
    record = None
    if runtime is not None:
        from ..runtime.lock import read_primary_record

        record = read_primary_record(app.context.pando_dir)
    services = []
    try:
        services = list(app.call_primary("core.services", {}, timeout=3.0))
    except Exception as exc:  # noqa: BLE001 - status shows what it can
        services = [{"name": "?", "plugin": "?", "state": "unknown", "problem": one_line(str(exc))}]
    return {
        "role": app.role,
        "instance_id": app.instance_id,
        "pid": os.getpid(),
        "epoch": getattr(runtime, "epoch", None),
        "primary_pid": record.pid if record is not None else None,
        "primary_instance_id": record.instance_id if record is not None else None,
        "workdir": str(app.workdir),
        "plugin_mismatch": app.plugin_mismatch or None,
        "services": services,
        "instances": len(instances_data(app)),
        "time": time.time(),
    }


def instances_data(app: Any) -> list[dict[str, Any]]:
    from ..runtime.instances import InstanceRegistry
    from ..runtime.lock import read_primary_record

    live = InstanceRegistry(app.context.pando_dir).live()
    record = read_primary_record(app.context.pando_dir)
    for row in live:
        row["is_primary"] = bool(record and row["instance_id"] == record.instance_id)
    return live


def plugins_data(app: Any) -> list[dict[str, Any]]:
    from ..plugins import read_hook_errors

    infos = app.plugins.list()
    kept = read_hook_errors(app.plugins.error_file)
    for info in infos:
        for hook, entry in kept.get(info.name, {}).items():
            info.hook_errors.setdefault(hook, entry)
    return [info.as_dict() for info in infos]
