"""Helpers shared by the tests (polling with deadlines, process checks)."""

from __future__ import annotations

import time
from pathlib import Path


def drive(orchestrator, until, timeout: float = 30.0, what: str = "the condition"):
    """Run orchestrator passes until ``until()`` is true (polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        orchestrator.tick()
        value = until()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ended(orchestrator, *ids):
    def check():
        tasks = [orchestrator.get(i) for i in ids]
        return tasks if all(t["status"] in ("completed", "failed", "cancelled", "paused") and t["completed_at"] or t["status"] == "paused" for t in tasks) else None

    return check


def pid_alive(pid: int) -> bool:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return data[data.rindex(")") + 2] not in "ZX"
