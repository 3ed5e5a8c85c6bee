"""Helpers for the bash sandbox tests: the real bubblewrap, and a loopback HTTP server run as a
real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pando_core.agent.tools.sandbox import probe


def require_bwrap() -> None:
    """Skip only when the kernel refuses bubblewrap's namespaces; a missing bwrap is a failure
    (.ci/run installs it)."""
    found = probe()
    if found.path is None:
        pytest.fail(f"the sandbox tests need bubblewrap: {found.problem}")
    if not found.works:
        pytest.skip(f"bubblewrap cannot create namespaces on this kernel: {found.problem}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackHttpServer:
    """`python -m http.server` on 127.0.0.1 serving `directory`, stopped by pid."""

    def __init__(self, directory) -> None:  # noqa: ANN001 - a Path
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the loopback HTTP server did not start within 30 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def fetch_command(url: str) -> str:
    """A bash command that prints the body at `url` with Python (curl is on the banned list)."""
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    # the real interpreter, not the venv's link: a venv under /tmp is hidden by the sandbox's own /tmp
    return f"{os.path.realpath(sys.executable)} -c \"{code}\""
