"""``pando serve`` for tests: a real server process, or a web app served on a thread.

``WebServerProcess(workdir, env, plugins=...)`` starts ``python -m pando_core serve --port 0`` on a
working directory, reads the address it prints, and stops it by pid (SIGTERM, then SIGKILL)::

    with WebServerProcess(workdir, env) as server:
        httpx.get(server.url + "api/sessions")

``ThreadedWebServer(asgi)`` serves an ASGI app built in the test's own process (an App with
plugin objects registered directly) with uvicorn on 127.0.0.1, on a thread of its own.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60.0  # generous: a loaded CI machine, plugins importing at start
URL_LINE = re.compile(r"pando serve: (http://\S+) \((primary|secondary), pid (\d+)\)")


class WebServerProcess:
    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        *,
        plugins: str = "none",
        args: tuple[str, ...] = (),
        log_path: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.env = dict(env)
        self.plugins = plugins
        self.args = args
        self.log_path = Path(log_path) if log_path else self.workdir.parent / f"serve-{os.getpid()}-{id(self)}.log"
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.role = ""

    def start(self, timeout: float = START_TIMEOUT_S) -> WebServerProcess:
        log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._log = log
        command = [sys.executable, "-m", "pando_core", "--plugins", self.plugins, "serve", "--port", "0", *self.args]
        self.proc = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = URL_LINE.search(self.log_path.read_text(encoding="utf-8", errors="replace"))
            if match:
                self.url, self.role = match.group(1), match.group(2)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        output = self.log_path.read_text(encoding="utf-8", errors="replace")
        self.stop()
        raise RuntimeError(f"pando serve did not start (exit {self.proc.returncode}):\n{output}")

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._log.close()
        return proc.returncode

    def __enter__(self) -> WebServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadedWebServer:
    """uvicorn serving *asgi* on 127.0.0.1 (a free port) on a thread; ``url``; ``stop()``."""

    def __init__(self, asgi: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        config = uvicorn.Config(asgi, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ThreadedWebServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError("the web server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()

    def __enter__(self) -> ThreadedWebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
