"""Small text formats the command groups share."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def local_time(ms: Any) -> str:
    """Epoch milliseconds as local ``YYYY-MM-DD HH:MM:SS`` ("-" when unset)."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(int(ms) / 1000).strftime("%Y-%m-%d %H:%M:%S")
