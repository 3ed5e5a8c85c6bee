"""Wall-clock time as pando stores and sends it: integer milliseconds since the epoch."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch (rows' ``created_at``, event envelopes' ``ts``, ...)."""
    return time.time_ns() // 1_000_000
