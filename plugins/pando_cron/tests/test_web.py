"""pando-cron in `pando serve`: a real server process with cron and mesnada, jobs from the
working directory's .pando.toml, "Run now" over the API and from the page's form."""

from __future__ import annotations

import httpx
import pytest
from conftest import poll, write_jobs

from pando_core.testing.web import WebServerProcess

JOBS = (
    {"name": "nightly", "schedule": "0 3 * * *", "prompt": "exit 0", "timezone": "UTC"},
    {"name": "paused", "schedule": "0 4 * * *", "prompt": "exit 0", "enabled": False},
)


@pytest.mark.slow
def test_jobs_next_runs_run_now_and_history(pando_workdir, cron_env, tmp_path):
    write_jobs(pando_workdir, *JOBS)
    with WebServerProcess(pando_workdir, cron_env, plugins="cron,mesnada", log_path=tmp_path / "serve.log") as server, \
            httpx.Client(base_url=server.url, timeout=30) as c:
        jobs = {j["name"]: j for j in c.get("/api/cron/jobs").json()}
        assert len(jobs["nightly"]["next_runs"]) == 3
        assert all(t.endswith("T03:00:00+00:00") for t in jobs["nightly"]["next_runs"])
        assert jobs["paused"]["next_runs"] == []
        page = c.get("/cron").text
        assert "nightly" in page and "No job has fired yet." in page and 'action="/cron/jobs/nightly/run"' in page
        fire = c.post("/api/cron/jobs/nightly/run").json()
        assert fire["status"] == "fired" and fire["task_id"].startswith("task-")
        assert c.post("/api/cron/jobs/nope/run").status_code == 400
        history = c.get("/api/cron/history").json()
        assert [(f["job"], f["kind"], f["task_id"]) for f in history] == [("nightly", "manual", fire["task_id"])]
        # the page's form, as a browser sends it: same origin, the CSRF token from the cookie
        c.headers["origin"] = server.url.rstrip("/")
        c.get("/cron")
        sent = c.post("/cron/jobs/nightly/run", data={"csrf_token": c.cookies["pando_csrf"]})
        assert sent.status_code == 303 and sent.headers["location"] == "/cron"
        poll(lambda: len(c.get("/api/cron/history").json()) == 2, what="the second fire")
        assert f'/mesnada/tasks/{fire["task_id"]}' in c.get("/cron/history").text
        assert '<a href="/cron">Schedules</a>' in c.get("/sessions").text
