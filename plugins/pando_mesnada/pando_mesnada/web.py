"""Mesnada's pages in ``pando serve`` (``pando_web_routes``): the tasks, one task with its log
streaming live, and cancel / retry / purge.

Everything goes through the bus methods (``mesnada.list``, ``mesnada.get``, ...), so the pages
work the same whether the server is the primary or a secondary. The list and a task's status are
re-rendered when ``mesnada_tasks`` changes (the core's live updates); the log is followed from the
task's log file and sent as server-sent events until the task has ended and the file is read.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pando_core.errors import PandoError, one_line

from .model import TERMINAL

ACTIONS = ("cancel", "retry", "purge")
LOG_POLL_S = 0.25
LOG_CHUNK = 64 * 1024


def web_routes(app: Any) -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
    from starlette.routing import Route

    from pando_core.web import WebRoutes
    from pando_core.web.kit import csrf_field, escape, page, sse_response, when
    from pando_core.web.live import sse

    def call(method: str, params: dict[str, Any] | None = None) -> Any:
        return app.call_primary(f"mesnada.{method}", params or {}, timeout=30)

    def rows(tasks: list[dict[str, Any]]) -> str:
        if not tasks:
            return '<tr><td colspan="5" class="empty">No tasks.</td></tr>'
        return "".join(
            f'<tr data-id="{escape(t["id"])}"><td><a href="/mesnada/tasks/{quote(t["id"])}"><code>{escape(t["id"])}</code></a></td>'
            f'<td class="task-status">{escape(t["status"])}</td><td>{escape(t.get("engine") or "")}</td>'
            f"<td>{escape(one_line(t.get('prompt') or '', 80))}</td><td>{when(t.get('created_at'))}</td></tr>"
            for t in tasks
        )

    def status_block(task: dict[str, Any], request: Any) -> str:
        progress = task.get("progress") or {}
        shown = f" · {progress.get('percentage')}% {escape(progress.get('description') or '')}" if progress.get("percentage") is not None else ""
        buttons = "".join(
            f'<form method="post" action="/mesnada/tasks/{quote(task["id"])}/{action}">{csrf_field(request)}'
            f'<button name="action" value="{action}"{" class=danger" if action != "retry" else ""}>{action.title()}</button></form>'
            for action in ACTIONS
        )
        error = f'<p class="error">{escape(task["error"])}</p>' if task.get("error") else ""
        return (
            f'<p>Status <strong id="task-status">{escape(task["status"])}</strong>{shown} · engine {escape(task.get("engine") or "")}'
            f" · created {when(task.get('created_at'))}</p>{error}<div class=\"actions\">{buttons}</div>"
        )

    def tasks_page(request: Any) -> Any:
        tasks = call("list", {"limit": 200})
        body = (
            '<table><thead><tr><th>Task</th><th>Status</th><th>Engine</th><th>Prompt</th><th>Created</th></tr></thead>'
            f'<tbody id="task-rows" data-live="mesnada_tasks" data-src="/mesnada/rows">{rows(tasks)}</tbody></table>'
        )
        return page(request, "Tasks", body)

    def tasks_rows(request: Any) -> Any:
        return HTMLResponse(rows(call("list", {"limit": 200})))

    def task_page(request: Any) -> Any:
        task_id = request.path_params["id"]
        try:
            task = call("get", {"id": task_id})
        except PandoError as exc:
            return page(request, "Task not found", f'<p class="error">{escape(str(exc))}</p>', status=404)
        body = (
            f'<div id="task" data-live="mesnada_tasks" data-src="/mesnada/tasks/{quote(task_id)}/status">{status_block(task, request)}</div>'
            f'<h2>Prompt</h2><pre>{escape(task.get("prompt") or "")}</pre>'
            f'<h2>Log</h2><pre id="log" data-sse-append="/api/mesnada/tasks/{quote(task_id)}/log">'
            f"{escape(task.get('output_tail') or '')}</pre>"
        )
        return page(request, f"Task {task_id}", body)

    def task_status(request: Any) -> Any:
        try:
            task = call("get", {"id": request.path_params["id"]})
        except PandoError as exc:
            return HTMLResponse(f'<p class="error">{escape(str(exc))}</p>')
        return HTMLResponse(status_block(task, request))

    def act(request: Any) -> Any:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return JSONResponse({"error": f"action must be one of {', '.join(ACTIONS)}"}, status_code=404)
        try:
            result = call(action, {"id": request.path_params["id"]})
        except PandoError as exc:
            return JSONResponse({"error": one_line(str(exc))}, status_code=400)
        return JSONResponse(result)

    act.__doc__ = "Cancel, retry or purge a task."

    async def act_form(request: Any) -> Any:
        response = await run_in_threadpool(act, request)
        if response.status_code != 200:
            return response
        task_id = request.path_params["id"]
        if request.path_params["action"] == "purge":
            return RedirectResponse("/mesnada", status_code=303)
        return RedirectResponse(f"/mesnada/tasks/{quote(task_id)}", status_code=303)

    def tasks_json(request: Any) -> Any:
        """Mesnada tasks, newest first (?status=&limit=)."""
        params: dict[str, Any] = {"limit": int(request.query_params.get("limit", 100))}
        if request.query_params.get("status"):
            params["status"] = request.query_params["status"].split(",")
        try:
            return JSONResponse(call("list", params))
        except PandoError as exc:
            return JSONResponse({"error": one_line(str(exc))}, status_code=400)

    def task_json(request: Any) -> Any:
        """One Mesnada task."""
        try:
            return JSONResponse(call("get", {"id": request.path_params["id"]}))
        except PandoError as exc:
            return JSONResponse({"error": one_line(str(exc))}, status_code=404)

    async def task_log(request: Any) -> Any:
        """A task's log as server-sent events ({text}), followed until the task has ended."""
        task_id = request.path_params["id"]
        try:
            task = await run_in_threadpool(call, "get", {"id": task_id})
        except PandoError as exc:
            return JSONResponse({"error": one_line(str(exc))}, status_code=404)

        async def follow():
            path = Path(task.get("log_file") or "")
            offset = 0
            current = task
            yield "retry: 2000\n\n"
            while True:
                text = _read_from(path, offset)
                if text:
                    offset += len(text.encode("utf-8"))
                    yield sse({"text": text})
                    continue
                if current["status"] in TERMINAL:
                    yield sse({"status": current["status"]}, name="end")
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(LOG_POLL_S)
                try:
                    current = await run_in_threadpool(call, "get", {"id": task_id})
                except PandoError:
                    return

        return sse_response(follow())

    return WebRoutes(
        routes=[
            Route("/mesnada", tasks_page),
            Route("/mesnada/rows", tasks_rows),
            Route("/mesnada/tasks/{id}", task_page),
            Route("/mesnada/tasks/{id}/status", task_status),
            Route("/mesnada/tasks/{id}/{action}", act_form, methods=["POST"]),
            Route("/api/mesnada/tasks", tasks_json),
            Route("/api/mesnada/tasks/{id}", task_json),
            Route("/api/mesnada/tasks/{id}/log", task_log),
            Route("/api/mesnada/tasks/{id}/{action}", act, methods=["POST"]),
        ],
        nav={"Tasks": "/mesnada"},
    )


def _read_from(path: Path, offset: int) -> str:
    """What the log has past *offset* bytes (up to LOG_CHUNK; "" when nothing new or no file)."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            data = log.read(LOG_CHUNK)
    except OSError:
        return ""
    # a chunk may end inside a character: keep whole characters, the rest comes next time
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            return data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")
