"""`pando serve` in a real browser: Debian's chromium driven by Playwright (npm playwright-core),
against a real server process, real `pando run` processes and the scripted model server.

Each test keeps a screenshot of the pages it saw: under its pytest tmp dir, and under
``$PANDO_TEST_ARTIFACTS/web/`` when that is set (``.ci/run`` sets it to ``.ci-artifacts``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pando_core.testing import browser as browser_module
from pando_core.testing.browser import Browser
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from pando_core.testing.web import WebServerProcess

PANDO = [sys.executable, "-m", "pando_core", "--plugins", "none"]
MISSING = browser_module.missing()
if MISSING and os.environ.get("PANDO_TEST_PLAYWRIGHT_CORE"):  # CI installed it: its absence is a failure
    raise RuntimeError(f"browser tests cannot run: {MISSING}")
ARTIFACTS = os.environ.get("PANDO_TEST_ARTIFACTS")  # read now: the pando_env fixture clears PANDO_*
pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(MISSING), reason=MISSING or "")]


@pytest.fixture
def keep_screenshot(tmp_path, request):
    def keep(browser: Browser, name: str) -> Path:
        path = browser.screenshot(tmp_path / f"{name}.png")
        assert path.stat().st_size > 1000
        if ARTIFACTS:
            target = Path(ARTIFACTS) / "web"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / f"{name}.png")
        return path

    return keep


@pytest.fixture
def server(pando_workdir, pando_env, model_server, tmp_path):
    write_model_config(pando_workdir, model_server.base_url)
    with WebServerProcess(pando_workdir, pando_env, log_path=tmp_path / "serve.log") as running:
        yield running


@pytest.fixture
def browser():
    with Browser() as running:
        yield running


def test_a_session_written_by_another_pando_run_appears_without_reload(server, browser, pando_workdir, pando_env, model_server, keep_screenshot):
    model_server.add_rule(contains="terminal", response=Reply.text("answered in the terminal"))
    browser.goto(server.url + "sessions")
    browser.wait_text("#live-state", "live")
    run = subprocess.run([*PANDO, "run", "hello from a terminal"], cwd=pando_workdir, env=pando_env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    browser.wait_text("#session-rows tr", "hello from a terminal")
    assert browser.call("url") == server.url + "sessions"  # the same page: no reload, no navigation
    keep_screenshot(browser, "sessions")
    browser.click("#session-rows a")
    browser.wait_text("#transcript", "answered in the terminal")
    keep_screenshot(browser, "session")


def test_a_prompt_sent_from_the_page_streams_its_answer(server, browser, model_server, keep_screenshot):
    model_server.script(Reply.text("streamed from the model to the page", chunk_size=4, chunk_delay=0.02))
    browser.goto(server.url + "sessions")
    browser.fill("form.prompt textarea", "tell the page something")
    browser.click("form.prompt button")
    browser.wait_text(".answer", "streamed from the model to the page")
    browser.wait_text(".status", "done")
    keep_screenshot(browser, "prompt")
    browser.wait_text("#session-rows tr", "tell the page something")  # the list saw the new session
    browser.click(".status a")
    browser.wait_text("#transcript .msg.assistant", "streamed from the model to the page")


def test_a_permission_is_approved_from_the_page(server, browser, model_server, pando_workdir, keep_screenshot):
    model_server.script(Reply.tool("write", {"file_path": "approved.txt", "content": "yes\n"}), Reply.text("the file is written"))
    browser.goto(server.url + "sessions")
    browser.fill("form.prompt textarea", "write approved.txt")
    browser.click("form.prompt button")
    browser.wait_text(".permission", "write")
    keep_screenshot(browser, "permission")
    assert not (pando_workdir / "approved.txt").exists()
    browser.click('.permission button[data-answer="once"]')
    browser.wait_text(".answer", "the file is written")
    assert (pando_workdir / "approved.txt").read_text() == "yes\n"
    browser.call("wait_gone", selector=".permission")


def test_the_status_page_shows_this_instance(server, browser, keep_screenshot):
    browser.goto(server.url + "status")
    assert browser.text("#role") == "primary"
    browser.wait_text("table", "primary")
    keep_screenshot(browser, "status")


def test_the_login_page_lets_the_token_in(pando_workdir, pando_env, tmp_path, browser, keep_screenshot):
    env = dict(pando_env, PANDO_WEB_TOKEN="browser-token")
    with WebServerProcess(pando_workdir, env, log_path=tmp_path / "serve.log") as server:
        browser.goto(server.url + "sessions")
        browser.wait_text("main", "Token")
        keep_screenshot(browser, "login")
        browser.fill('input[name="token"]', "wrong")
        browser.click("form button")
        browser.wait_text(".error", "not the token")
        browser.fill('input[name="token"]', "browser-token")
        browser.click("form button")
        browser.wait_text("h1", "Sessions")
        browser.wait_text("#live-state", "live")  # the event stream is authorised by the cookie too


def test_every_plugin_page_renders(pando_workdir, pando_env, tmp_path, browser, keep_screenshot):
    (pando_workdir / ".pando.toml").write_text(
        '[[cron.jobs]]\nname = "nightly"\nschedule = "0 3 * * *"\nprompt = "exit 0"\nengine = "command"\n'
    )
    env = dict(pando_env, PANDO_RAG__KB_WATCH="false")
    pages = {"mesnada": "Tasks", "cron": "Schedules", "evaluator": "Scores", "rag": "Knowledge"}
    with WebServerProcess(pando_workdir, env, plugins=",".join(pages), log_path=tmp_path / "serve.log") as server:
        for path, title in pages.items():
            browser.goto(server.url + "sessions")
            browser.click(f'header nav a[href="/{path}"]')
            browser.wait_text("h1", title)
            keep_screenshot(browser, f"plugin-{path}")
        browser.wait_text("#kb-documents", "0")
