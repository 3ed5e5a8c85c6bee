"""pando-cron's page in ``pando serve`` (``pando_web_routes``): the jobs with their next runs, the
latest fires, and a "Run now" button per job.

Jobs are read from the config files as they are now (like ``pando cron list``); fires from the
``cron_fires`` table, whose changes re-render the history live. "Run now" is the bus method
``cron.run_now`` on the primary, which spawns the job's Mesnada task.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pando_core.errors import PandoError, one_line

NEXT_RUNS = 3
HISTORY = 50


def web_routes(app: Any) -> Any:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
    from starlette.routing import Route

    from pando_core.web import WebRoutes
    from pando_core.web.kit import csrf_field, escape, page, when

    from .config import read_current

    def jobs() -> list[dict[str, Any]]:
        config = read_current(Path(app.workdir))
        latest = app.store.cron.latest()
        now = time.time()
        out = []
        for job in config.jobs:
            scheduled = config.enabled and job.enabled
            last = latest.get(job.name)
            out.append(
                {
                    "name": job.name,
                    "schedule": job.schedule,
                    "timezone": job.timezone or "local",
                    "enabled": job.enabled,
                    "next_runs": [
                        datetime.fromtimestamp(t, job.parsed.zone).isoformat()
                        for t in (job.parsed.following(now, NEXT_RUNS) if scheduled else [])
                    ],
                    "last_status": last["status"] if last else None,
                    "last_task": last["task_id"] if last else None,
                    "prompt": job.prompt,
                }
            )
        return out

    def history_rows(fires: list[dict[str, Any]]) -> str:
        if not fires:
            return '<tr><td colspan="4" class="empty">No job has fired yet.</td></tr>'
        out = []
        for fire in fires:
            task = fire.get("task_id")
            shown = f'<a href="/mesnada/tasks/{quote(task)}"><code>{escape(task)}</code></a>' if task else escape(fire.get("reason") or "")
            kind = "manual" if fire["kind"] == "manual" else ("catch-up" if fire.get("catch_up") else "scheduled")
            out.append(
                f"<tr><td>{when(fire['claimed_at'])}</td><td>{escape(fire['job'])}</td><td>{kind}</td>"
                f'<td class="fire-status">{escape(fire["status"])} {shown}</td></tr>'
            )
        return "".join(out)

    def cron_page(request: Any) -> Any:
        try:
            rows = jobs()
        except PandoError as exc:
            return page(request, "Schedules", f'<p class="error">{escape(str(exc))}</p>')
        if rows:
            table = "".join(
                f'<tr><td>{escape(j["name"])}</td><td><code>{escape(j["schedule"])}</code> {escape(j["timezone"])}</td>'
                f'<td>{"<br>".join(escape(t) for t in j["next_runs"]) or "not scheduled"}</td>'
                f'<td>{escape(one_line(j["prompt"], 60))}</td>'
                f'<td><form method="post" action="/cron/jobs/{quote(j["name"])}/run">{csrf_field(request)}'
                f'<button name="job" value="{escape(j["name"])}">Run now</button></form></td></tr>'
                for j in rows
            )
        else:
            table = '<tr><td colspan="5" class="empty">No jobs: add [[cron.jobs]] tables (name, schedule, prompt) to .pando.toml.</td></tr>'
        body = (
            "<table><thead><tr><th>Job</th><th>Schedule</th><th>Next runs</th><th>Prompt</th><th></th></tr></thead>"
            f"<tbody>{table}</tbody></table><h2>History</h2>"
            "<table><thead><tr><th>When</th><th>Job</th><th>Kind</th><th>Result</th></tr></thead>"
            f'<tbody id="fire-rows" data-live="cron_fires" data-src="/cron/history">{history_rows(app.store.cron.history(limit=HISTORY))}</tbody></table>'
        )
        return page(request, "Schedules", body)

    def history_fragment(request: Any) -> Any:
        return HTMLResponse(history_rows(app.store.cron.history(limit=HISTORY)))

    def run_now(request: Any) -> Any:
        """Fire a job now (its Mesnada task is spawned); the fire as JSON."""
        try:
            fire = app.call_primary("cron.run_now", {"name": request.path_params["name"]}, timeout=60)
        except PandoError as exc:
            return JSONResponse({"error": one_line(str(exc))}, status_code=400)
        return JSONResponse(fire)

    async def run_now_form(request: Any) -> Any:
        response = await run_in_threadpool(run_now, request)
        if response.status_code != 200:
            return response
        return RedirectResponse("/cron", status_code=303)

    def jobs_json(request: Any) -> Any:
        """The configured cron jobs with their next runs and last fire."""
        try:
            return JSONResponse(jobs())
        except PandoError as exc:
            return JSONResponse({"error": one_line(str(exc))}, status_code=400)

    def history_json(request: Any) -> Any:
        """The latest fires, newest first (?job=&limit=)."""
        limit = int(request.query_params.get("limit", HISTORY))
        return JSONResponse(app.store.cron.history(job=request.query_params.get("job"), limit=limit))

    return WebRoutes(
        routes=[
            Route("/cron", cron_page),
            Route("/cron/history", history_fragment),
            Route("/cron/jobs/{name}/run", run_now_form, methods=["POST"]),
            Route("/api/cron/jobs", jobs_json),
            Route("/api/cron/history", history_json),
            Route("/api/cron/jobs/{name}/run", run_now, methods=["POST"]),
        ],
        nav={"Schedules": "/cron"},
    )
