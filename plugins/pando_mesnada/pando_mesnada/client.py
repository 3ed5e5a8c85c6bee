"""The caller's side, on any instance: ``call_primary`` wrappers that wait longer than one call."""

from __future__ import annotations

import time
from typing import Any

from .model import TERMINAL, parse_timeout

WAIT_CHUNK = 10.0  # seconds per mesnada.wait_multiple call: each call is short, a failover in between is fine


def call(app: Any, method: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
    return app.call_primary(f"mesnada.{method}", params or {}, timeout=timeout)


def wait_for(app: Any, ids: list[str], wait_all: bool = True, timeout: Any = None, cancelled: Any = None) -> dict[str, Any]:
    """Wait for tasks across as many calls as it takes: ``{tasks, timeout}``. *timeout*: seconds or
    "10m" (None: no limit); *cancelled*: a callable that ends the wait early when it returns True."""
    seconds = parse_timeout(timeout)
    deadline = None if seconds is None else time.monotonic() + seconds
    while True:
        chunk = WAIT_CHUNK if deadline is None else max(0.0, min(WAIT_CHUNK, deadline - time.monotonic()))
        result = call(app, "wait_multiple", {"ids": ids, "all": wait_all, "timeout": chunk or 0.001}, timeout=chunk + 15)
        if not result["timeout"]:
            return result
        if deadline is not None and time.monotonic() >= deadline:
            return result
        if cancelled is not None and cancelled():
            return result


def is_terminal(task: dict[str, Any]) -> bool:
    return task["status"] in TERMINAL
