"""A real browser for web tests: Debian's chromium driven by Playwright (npm ``playwright-core``).

``Browser`` runs ``browser_driver.js`` under node and sends it one command at a time::

    with Browser() as browser:
        browser.goto(server.url + "sessions")
        browser.wait_text("#session-rows tr", "hello")
        browser.screenshot(path)

Where things are: ``PANDO_TEST_PLAYWRIGHT_CORE`` (the package directory; default
``.ci-tools/node_modules/playwright-core`` of the repository, where ``.ci/run`` installs it) and
``PANDO_TEST_CHROMIUM`` (default: ``chromium`` on PATH). ``missing()`` says what is not there.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

DRIVER = Path(__file__).with_name("browser_driver.js")
REPO = Path(__file__).resolve().parents[2]
ANSWER_TIMEOUT_S = 60.0


def playwright_core() -> Path:
    return Path(os.environ.get("PANDO_TEST_PLAYWRIGHT_CORE") or REPO / ".ci-tools" / "node_modules" / "playwright-core")


def chromium() -> str | None:
    return os.environ.get("PANDO_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str:
    """Why no browser test can run here ("" when everything is installed)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (playwright_core() / "package.json").is_file():
        return f"playwright-core is not installed at {playwright_core()} (npm install --prefix .ci-tools playwright-core)"
    if chromium() is None:
        return "chromium is not installed (apt-get install chromium)"
    return ""


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._answers: queue.Queue = queue.Queue()

    def start(self) -> Browser:
        env = dict(os.environ, PANDO_PLAYWRIGHT_CORE=str(playwright_core()), PANDO_CHROMIUM=chromium() or "")
        self.proc = subprocess.Popen(
            ["node", str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        threading.Thread(target=self._read, daemon=True).start()
        self._answer()  # "ready": chromium is up
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def _answer(self) -> Any:
        try:
            line = self._answers.get(timeout=ANSWER_TIMEOUT_S)
        except queue.Empty:
            raise BrowserError("the browser did not answer in time") from None
        if line is None:
            raise BrowserError("the browser driver exited")
        data = json.loads(line)
        if not data.get("ok"):
            raise BrowserError(data.get("error", "failed"))
        return data.get("result")

    def call(self, op: str, **params: Any) -> Any:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **params}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def goto(self, url: str) -> None:
        self.call("goto", url=url)

    def wait_text(self, selector: str, text: str, timeout_ms: int = 30000) -> None:
        self.call("wait_text", selector=selector, text=text, timeout=timeout_ms)

    def click(self, selector: str) -> None:
        self.call("click", selector=selector)

    def fill(self, selector: str, value: str) -> None:
        self.call("fill", selector=selector, value=value)

    def text(self, selector: str) -> str:
        return self.call("text", selector=selector)

    def screenshot(self, path: Path) -> Path:
        self.call("screenshot", path=str(path))
        return Path(path)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
