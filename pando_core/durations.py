"""Durations as users write them: seconds, or Go-style strings such as "90s", "5m", "1h30m"."""

from __future__ import annotations

import re
from typing import Any


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Go-style duration string ("90", "90s", "5m", "1h30m", "500ms")."""
    if value is None or value == "":
        raise ValueError("empty duration")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total, pos = 0.0, 0
    for match in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r} (use seconds, or e.g. 90s, 5m, 1h)")
    return total



def format_duration(seconds: float) -> str:
    """Like Go's time.Duration.String for whole seconds: 1s, 1m30s, 1h0m0s."""
    if seconds < 1:
        return f"{int(round(seconds * 1000))}ms"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"

