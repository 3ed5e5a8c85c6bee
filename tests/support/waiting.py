"""Condition waits with deadlines, instead of fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition", interval: float = 0.005) -> Any:
    """Poll *cond* until it returns something truthy (and return that); fail the test after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def hold_for(cond: Callable[[], Any], duration: float, what: str, interval: float = 0.01) -> None:
    """Assert that *cond* stays truthy for *duration* seconds (a negative observation)."""
    end = time.monotonic() + duration
    while time.monotonic() < end:
        assert cond(), f"{what} stopped holding"
        time.sleep(interval)
