"""Fixtures: the real third-party MCP servers (mcp-server-time from PyPI, server-everything from
npm, installed by .ci/run), the faulty test server, and processes stopped by pid."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
FAULTY = HERE / "servers" / "faulty.py"


def _missing(what: str, how: str) -> None:
    message = f"{what} is not installed ({how})"
    if os.environ.get("CI"):
        pytest.fail(message + ": CI must install it (.ci/run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def everything_bin() -> str:
    """The npm server-everything binary: $PANDO_TEST_SERVER_EVERYTHING, .ci-tools/, or PATH."""
    candidates = [
        os.environ.get("PANDO_TEST_SERVER_EVERYTHING", ""),
        str(REPO / ".ci-tools" / "node_modules" / ".bin" / "mcp-server-everything"),
        shutil.which("mcp-server-everything") or "",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _missing("@modelcontextprotocol/server-everything", "npm install --prefix .ci-tools @modelcontextprotocol/server-everything")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def time_bin() -> str:
    """mcp-server-time's console script (beside this Python, or on PATH)."""
    beside = Path(sys.executable).parent / "mcp-server-time"
    found = str(beside) if beside.exists() else shutil.which("mcp-server-time")
    if not found:
        _missing("mcp-server-time", "pip install mcp-server-time")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, proc: subprocess.Popen, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {deadline_s}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture
def everything_http(everything_bin) -> Iterator:
    """start(mode) -> URL of a running server-everything over "sse" (/sse) or "streamableHttp" (/mcp)."""
    procs: list[subprocess.Popen] = []

    def start(mode: str) -> str:
        port = free_port()
        env = dict(os.environ, PORT=str(port))
        proc = subprocess.Popen(
            [everything_bin, mode], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        procs.append(proc)
        wait_for_port("127.0.0.1", port, proc)
        return f"http://127.0.0.1:{port}/{'sse' if mode == 'sse' else 'mcp'}"

    yield start
    for proc in procs:
        stop(proc)


@pytest.fixture
def pool_factory(tmp_path) -> Iterator:
    """make(specs) -> McpPool logging stderr under tmp_path (closed after the test)."""
    from pando_mcp.client import McpPool

    pools = []

    def make(specs):
        pool = McpPool(specs, tmp_path / "mcp-logs")
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture(scope="session")
def faulty_command() -> list[str]:
    """The argv of tests/servers/faulty.py."""
    return [sys.executable, str(FAULTY)]


@pytest.fixture
def make_spec():
    """make_spec(name, **entry) -> ServerSpec, as if read from a config file."""
    from pando_mcp.config import server_spec

    return lambda name, **raw: server_spec(name, raw, "test", os.environ)


@pytest.fixture
def faulty_spec(make_spec):
    """faulty_spec(name="faulty", garbage=False, **entry) -> the spec of tests/servers/faulty.py."""

    def make(name: str = "faulty", garbage: bool = False, **raw):
        args = [str(FAULTY), *(["--garbage"] if garbage else [])]
        return make_spec(name, command=sys.executable, args=args, **raw)

    return make


@pytest.fixture
def listening_process() -> Iterator:
    """start(argv, host, env=None, cwd=None, port_env=None) -> (proc, port): a process given a free
    port (as --port, or in the environment variable port_env), once it accepts connections."""
    procs: list[subprocess.Popen] = []

    def start(argv: list[str], host: str = "127.0.0.1", env: dict | None = None, cwd=None, port_env: str | None = None):
        port = free_port(host)
        run_env = dict(env or os.environ)
        if port_env:
            run_env[port_env] = str(port)
        else:
            argv = [*argv, "--port", str(port)]
        proc = subprocess.Popen(argv, env=run_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        procs.append(proc)
        wait_for_port(host, port, proc, 60)
        return proc, port

    yield start
    for proc in procs:
        stop(proc)
