"""The evaluator service: on the primary only, it evaluates ended sessions in the background.

Its queue is fed from the durable ``evaluator_pending`` table: at start it takes every session
still waiting there (so what a killed primary left half done is done by the next one), then every
session queued since (``enqueue``, from the session-ended and changes hooks), and every
``idle_minutes`` it queues sessions left idle. Evaluations run one at a time, on the service's
thread and event loop; the end of ``pando run`` only queues the session.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from pando_core.background import ThreadedService
from pando_core.errors import NotFoundError

from .config import EvaluatorConfig
from .evaluation import evaluate_session

log = logging.getLogger("pando.evaluator")

SERVICE_NAME = "evaluator"
MAX_ATTEMPTS = 3
IDLE_SCAN_SECONDS = 60.0
POLL_SECONDS = 0.2

# Evaluations in this process run one at a time (the service's and those asked for over the bus),
# so two requests for one session give one evaluation and one "already scored".
EVALUATION_LOCK = threading.Lock()

def evaluate_now(app: Any, session_id: str, config: EvaluatorConfig | None = None, judge: bool | None = None) -> dict:
    """Evaluate one session here and now (on the primary), outside any running event loop."""
    with EVALUATION_LOCK:
        return asyncio.run(evaluate_session(app, session_id, config, judge=judge))


class EvaluatorService(ThreadedService):
    name = SERVICE_NAME

    def __init__(self, idle_scan_seconds: float = IDLE_SCAN_SECONDS) -> None:
        super().__init__()
        self._waiting: dict[str, float] = {}  # session id -> when it may be evaluated (monotonic)
        self._waiting_lock = threading.Lock()
        self.settle_seconds = 0.0  # from [evaluator] settle_seconds when the service runs
        self.idle_scan_seconds = idle_scan_seconds
        self.evaluated = 0
        self.failed = 0
        self.last_error: str | None = None
        self.current: str | None = None

    # -- feeding --------------------------------------------------------------------------------

    def enqueue(self, session_id: str) -> None:
        """Evaluate this session once it has been ended ``settle_seconds`` (a pando that exits
        sooner leaves it queued in the table for the next primary, with no judge call cut short)."""
        with self._waiting_lock:
            self._waiting.setdefault(session_id, time.monotonic() + self.settle_seconds)

    def _next_ready(self) -> str | None:
        now = time.monotonic()
        with self._waiting_lock:
            ready = [(at, sid) for sid, at in self._waiting.items() if at <= now]
            if not ready:
                return None
            session_id = min(ready)[1]
            del self._waiting[session_id]
            return session_id

    def catch_up(self, app: Any) -> int:
        """Queue every session ended and not evaluated yet: those waiting in the evaluator's queue,
        and those the core marked ended that nobody queued (an instance without the evaluator)."""
        store = app.store.evaluator
        waiting = list(dict.fromkeys([*store.pending(max_attempts=MAX_ATTEMPTS), *store.ended_unscored()]))
        for session_id in waiting:
            self.enqueue(session_id)
        return len(waiting)

    def queue_idle(self, app: Any, config: EvaluatorConfig) -> int:
        if config.idle_minutes <= 0:
            return 0
        idle_before = int(time.time() * 1000) - config.idle_minutes * 60_000
        sessions = app.store.evaluator.idle_sessions(idle_before=idle_before)
        for session_id in sessions:
            app.store.evaluator.mark_ended(session_id=session_id, origin="idle")
            self.enqueue(session_id)
        return len(sessions)

    # -- working --------------------------------------------------------------------------------

    def run(self, app: Any, stop: threading.Event) -> None:
        config = EvaluatorConfig.of(app)
        if not config.enabled:
            return
        self.settle_seconds = config.settle_seconds
        loop = asyncio.new_event_loop()
        try:
            self.catch_up(app)
            next_idle_scan = 0.0
            while not stop.is_set():
                if time.monotonic() >= next_idle_scan:
                    self.queue_idle(app, config)
                    next_idle_scan = time.monotonic() + self.idle_scan_seconds
                session_id = self._next_ready()
                if session_id is None:
                    stop.wait(POLL_SECONDS)
                    continue
                self.process(app, session_id, config, loop=loop, stop=stop)
        finally:
            loop.close()

    def process(
        self,
        app: Any,
        session_id: str,
        config: EvaluatorConfig | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        stop: threading.Event | None = None,
    ) -> dict | None:
        """Evaluate one queued session; a failure is recorded and retried at the next start."""
        config = config or EvaluatorConfig.of(app)
        own_loop = loop is None
        loop = loop or asyncio.new_event_loop()
        self.current = session_id
        try:
            with EVALUATION_LOCK:
                result = loop.run_until_complete(_unless_stopped(evaluate_session(app, session_id, config), stop))
            if result is not None:
                self.evaluated += 1 if result.get("stored") else 0
            return result
        except NotFoundError:  # the session was deleted meanwhile
            app.store.evaluator.drop_pending(session_id=session_id)
            return None
        except Exception as exc:  # noqa: BLE001 - one bad session never stops the service
            self.failed += 1
            self.last_error = f"session {session_id}: {exc}"
            log.warning("evaluator: %s", self.last_error)
            try:
                app.store.evaluator.record_failure(session_id=session_id, error=str(exc))
            except Exception:  # noqa: BLE001 - the store may be closing
                log.debug("evaluator: recording the failure failed", exc_info=True)
            return None
        finally:
            self.current = None
            if own_loop:
                loop.close()

    def health(self) -> dict:
        return {
            "queued": len(self._waiting),
            "evaluating": self.current,
            "evaluated": self.evaluated,
            "failed": self.failed,
            "last_error": self.last_error,
        }


async def _unless_stopped(work: Any, stop: threading.Event | None) -> Any:
    """Run ``work``; if ``stop`` is set first, cancel it and return None (the session stays queued
    in the table, for the next primary)."""
    task = asyncio.ensure_future(work)
    if stop is None:
        return await task
    while not task.done():
        if stop.is_set():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            return None
        await asyncio.wait({task}, timeout=POLL_SECONDS)
    return task.result()
