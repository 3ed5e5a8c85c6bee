"""What a task is: its statuses, its id form, and the small parsers its fields need.

A task row is a plain dict (the repositories speak JSON over the bus); this module holds the
vocabulary shared by the store, the orchestrator, the CLI and the tools.
"""

from __future__ import annotations

import re
import secrets

PENDING = "pending"
RUNNING = "running"
PAUSED = "paused"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

STATUSES = (PENDING, RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED)
# "terminal": nothing will change the task by itself any more (paused included, as in the spec)
TERMINAL = frozenset({PAUSED, COMPLETED, FAILED, CANCELLED})
ENDED = frozenset({COMPLETED, FAILED, CANCELLED})

ISOLATIONS = ("none", "worktree")

TAIL_LINES = 50  # lines of output kept in the database
TAIL_BYTES = 16 * 1024  # and never more than this many bytes of them

_ID = re.compile(r"^task-[0-9a-f]{8}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def new_task_id() -> str:
    return "task-" + secrets.token_hex(4)


def is_task_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def parse_timeout(value: object) -> float | None:
    """``"10m"``, ``"90s"``, ``"1h"``, ``"500ms"`` or a number of seconds; None/""/0 = no timeout.

    Raises ValueError with a sentence fit for the user."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, bool):
        raise ValueError(f"timeout must be a duration such as 10m or a number of seconds, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"timeout {value!r} is not a duration (use 90s, 10m, 1h or seconds)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("timeout cannot be negative")
    return seconds or None


def tail_of(text: str, lines: int = TAIL_LINES, limit: int = TAIL_BYTES) -> str:
    """The last *lines* lines of *text*, at most *limit* characters (the start cut)."""
    kept = "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""
    return kept[-limit:]


def read_log_tail(path: str, lines: int = TAIL_LINES, limit: int = TAIL_BYTES) -> str:
    """The tail of a log file without reading all of it (a flooding child's log may be huge)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit * 2))
            data = handle.read()
    except OSError:
        return ""
    return tail_of(data.decode("utf-8", "replace"), lines, limit)
