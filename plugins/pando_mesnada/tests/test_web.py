"""Mesnada's pages and API in `pando serve`: a real server process with the plugin, tasks spawned
by the real CLI (the fake agent on PATH as the engine), httpx, and chromium through Playwright."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from pando_core.testing import browser as browser_module
from pando_core.testing.web import WebServerProcess

ARTIFACTS = os.environ.get("PANDO_TEST_ARTIFACTS")
BROWSER_MISSING = browser_module.missing()
pytestmark = pytest.mark.slow


def spawn(run_pando, prompt: str) -> dict:
    result = run_pando("--plugins", "mesnada", "mesnada", "spawn", prompt, "--engine", "claude", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sse_events(response):
    name, data = None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield name, json.loads("\n".join(data))
            name, data = None, []


@pytest.fixture
def server(pando_workdir, pando_env, fake_engines, tmp_path):
    with WebServerProcess(pando_workdir, pando_env, plugins="mesnada", log_path=tmp_path / "serve.log") as running:
        yield running


def test_tasks_over_the_api_log_streamed_then_cancel_retry_purge(server, run_pando):
    task = spawn(run_pando, "say:first log line\nsleep:60")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        listed = c.get("/api/mesnada/tasks").json()
        assert [t["id"] for t in listed] == [task["id"]]
        assert c.get(f"/api/mesnada/tasks/{task['id']}").json()["prompt"].startswith("say:first log line")
        assert task["id"] in c.get("/mesnada").text
        with c.stream("GET", f"/api/mesnada/tasks/{task['id']}/log") as log:
            text, cancelled = "", False
            for name, event in sse_events(log):
                if name is None:
                    text += event["text"]
                if "first log line" in text and not cancelled:
                    cancelled = True
                    assert c.post(f"/api/mesnada/tasks/{task['id']}/cancel").json()["status"] == "cancelled"
                if name == "end":
                    assert event == {"status": "cancelled"}
                    break
        assert c.post(f"/api/mesnada/tasks/{task['id']}/cancel").status_code == 400  # already cancelled
        retried = c.post(f"/api/mesnada/tasks/{task['id']}/retry").json()
        assert retried["id"] != task["id"]
        assert c.post(f"/api/mesnada/tasks/{retried['id']}/cancel").status_code == 200
        assert c.post(f"/api/mesnada/tasks/{task['id']}/purge").status_code == 200
        assert c.get(f"/api/mesnada/tasks/{task['id']}").status_code == 404
        assert c.post(f"/api/mesnada/tasks/{task['id']}/explode").status_code == 404
        assert '<a href="/mesnada">Tasks</a>' in c.get("/sessions").text


@pytest.mark.skipif(bool(BROWSER_MISSING), reason=BROWSER_MISSING or "")
def test_a_task_is_cancelled_from_its_page(server, run_pando, tmp_path):
    from pando_core.testing.browser import Browser

    task = spawn(run_pando, "say:working on it\nsleep:60")
    with Browser() as browser:
        browser.goto(server.url + "mesnada")
        browser.wait_text("#task-rows tr", task["id"])
        shots = [browser.screenshot(tmp_path / "mesnada.png")]
        browser.click(f'#task-rows a[href="/mesnada/tasks/{task["id"]}"]')
        browser.wait_text("#log", "working on it")
        browser.wait_text("#task-status", "running")
        shots.append(browser.screenshot(tmp_path / "mesnada-task.png"))
        browser.click('button[value="cancel"]')
        browser.wait_text("#task-status", "cancelled")
        shots.append(browser.screenshot(tmp_path / "mesnada-cancelled.png"))
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=server.url, timeout=30) as c:
        while c.get(f"/api/mesnada/tasks/{task['id']}").json()["status"] != "cancelled":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    if ARTIFACTS:
        (Path(ARTIFACTS) / "web").mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(ARTIFACTS) / "web" / shot.name)
