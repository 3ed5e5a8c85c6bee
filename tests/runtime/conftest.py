"""Shared fixtures for the runtime tests: real sockets, real processes, no fixed sleeps."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from pando_core.runtime import protocol as P
from pando_core.runtime.bus import Bus
from pando_core.runtime.client import Client
from pando_core.runtime.endpoints import Endpoints, choose_endpoints
from tests.support.waiting import wait_for


def read_line(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    """One stdout line of *proc*, failing the test after *timeout*."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            pytest.fail(f"no output from child {proc.pid} within {timeout}s")
        line = proc.stdout.readline()
    finally:
        sel.close()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"child {proc.pid} exited (rc={proc.poll()}) without output: {err[-2000:]}")
    return line.strip()


def sync_events(bus: Bus, client: Client) -> None:
    """Wait until *client*'s SUB is connected and subscribed (no slow-joiner loss afterwards)."""
    # Subscription changes reach the PUB asynchronously but in order, so once an event for a
    # brand-new subscription made *after* the others arrives, the earlier ones are live too.
    topic = f"test.sync.{uuid.uuid4().hex}"
    seen = threading.Event()
    sub = client.subscribe(P.exact_topic(topic), lambda ev: seen.set())
    try:
        wait_for(lambda: bus.publish(topic, None) and seen.wait(0.02), what="subscription to be live")
    finally:
        sub.cancel()


@pytest.fixture
def helpers() -> SimpleNamespace:
    return SimpleNamespace(wait_for=wait_for, read_line=read_line, sync_events=sync_events)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``python -c code args...`` with pipes; every child is killed at teardown."""
    procs: list[subprocess.Popen] = []

    def _spawn(code: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        procs.append(proc)
        return proc

    yield _spawn
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def make_bus(tmp_path) -> Iterator[Callable[..., Bus]]:
    """Factory for started buses (ipc by default), all stopped at teardown."""
    buses: list[Bus] = []

    def _make(
        endpoints: Endpoints | None = None,
        *,
        instance_id: str | None = None,
        epoch: int = 1,
        start: bool = True,
        **kw,
    ) -> Bus:
        if endpoints is None:
            endpoints = choose_endpoints(str(tmp_path / f"wd-{len(buses)}"))
        kw.setdefault("heartbeat_interval", 0.05)
        bus = Bus(endpoints, instance_id or f"primary-{uuid.uuid4().hex[:8]}", epoch, **kw)
        buses.append(bus)
        if start:
            bus.start()
        return bus

    yield _make
    for bus in buses:
        bus.stop(timeout=5)


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def _make(endpoints, instance_id: str = "secondary", **kw) -> Client:
        kw.setdefault("default_timeout", 5.0)
        client = Client(endpoints, instance_id, **kw)
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Every test must stop the bus/client/lock threads it started."""
    before = set(threading.enumerate())
    yield

    def leaked() -> list[threading.Thread]:
        return [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and t.name.startswith("pando-")
        ]

    deadline = time.monotonic() + 3.0
    while leaked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not leaked(), f"threads left running: {leaked()}"
