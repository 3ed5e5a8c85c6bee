"""The statuses a goal run can be in, and the exit code of ``pando goal`` for each."""

from __future__ import annotations

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
BLOCKED = "blocked"
TIMEOUT = "timeout"
STALLED = "stalled"
GOAL_STATUSES = (RUNNING, COMPLETED, FAILED, CANCELLED, BLOCKED, TIMEOUT, STALLED)
TERMINAL_STATUSES = frozenset(GOAL_STATUSES) - {RUNNING}

# completed 0; failed, timeout 2; blocked, cancelled, stalled 1 (spec §11.10)
EXIT_CODES = {COMPLETED: 0, FAILED: 2, TIMEOUT: 2, BLOCKED: 1, CANCELLED: 1, STALLED: 1, RUNNING: 1}

# the model's own verdict inside the status block (never a goal's status)
IN_PROGRESS = "in_progress"
