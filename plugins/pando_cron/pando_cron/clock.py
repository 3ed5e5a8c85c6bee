"""The scheduler's clock: real time, a clock a test sets by hand, or one that runs faster.

The scheduler asks ``current()`` for the time and sleeps with ``clock.sleep_until(target, wake,
cap)``, so a test or a benchmark can drive it through this public API in any process::

    from pando_cron import clock
    manual = clock.install(clock.ManualClock(start))   # every scheduler of this process follows it
    manual.set(start + 60)                            # wakes them: they fire what is due

Times are epoch seconds. Installing a clock, or setting a manual one, wakes every scheduler that
waits (it registered its wake event with ``subscribe``), so none sleeps on a stale time.
"""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_waiters: set[threading.Event] = set()


def _wake_all() -> None:
    with _lock:
        events = list(_waiters)
    for event in events:
        event.set()


def subscribe(event: threading.Event) -> None:
    """*event* is set whenever the time jumps (a clock installed, a manual clock set)."""
    with _lock:
        _waiters.add(event)


def unsubscribe(event: threading.Event) -> None:
    with _lock:
        _waiters.discard(event)


class RealClock:
    def now(self) -> float:
        return time.time()

    def sleep_until(self, target: float | None, wake: threading.Event, cap: float) -> None:
        """Sleep until *target* (or *cap* seconds, or *wake* is set, whichever is first)."""
        timeout = cap if target is None else max(0.0, min(cap, target - self.now()))
        wake.wait(timeout)


class ManualClock(RealClock):
    """Time stands still until ``set`` or ``advance``; the schedulers wake at each change."""

    def __init__(self, start: float) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def set(self, when: float) -> float:
        self._now = float(when)
        _wake_all()
        return self._now

    def advance(self, seconds: float) -> float:
        return self.set(self._now + seconds)

    def sleep_until(self, target: float | None, wake: threading.Event, cap: float) -> None:
        if target is not None and target <= self._now:
            return
        wake.wait(cap)  # only a set() (or a reload) moves this clock


class ScaledClock(RealClock):
    """Time that starts at *start* and runs *speed* times faster than the real one (benchmarks)."""

    def __init__(self, start: float, speed: float) -> None:
        self.start = float(start)
        self.speed = float(speed)
        self._origin = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.speed

    def real_delay(self, scheduled: float, happened: float) -> float:
        """Seconds of real time between two moments of this clock."""
        return (happened - scheduled) / self.speed

    def sleep_until(self, target: float | None, wake: threading.Event, cap: float) -> None:
        timeout = cap if target is None else max(0.0, min(cap, (target - self.now()) / self.speed))
        wake.wait(timeout)


_current: RealClock = RealClock()


def current() -> RealClock:
    return _current


def install(clock: RealClock | None) -> RealClock:
    """Make *clock* this process's clock (None: real time again) and wake the schedulers."""
    global _current
    _current = clock if clock is not None else RealClock()
    _wake_all()
    return _current
