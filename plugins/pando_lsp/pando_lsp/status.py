"""What the running pando processes' language servers are doing, for ``pando lsp status``.

Servers run per process (primary and secondaries each have their own), so each process that runs
them keeps one small file, ``.pando/lsp/running/<pid>.json``: its pid and process start time and
its servers' rows (state, pid, restarts, last error), rewritten on every change of state and
removed at shutdown. A reader lists the files whose process is still the one that wrote them (pid
and start time, so a reused pid does not count) and removes the others (a SIGKILLed pando).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

RUNNING_DIR = Path(".pando") / "lsp" / "running"


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


class StatusFile:
    """This process's file; ``write(rows)`` replaces it atomically, ``remove()`` at shutdown."""

    def __init__(self, workdir: Path, details: dict[str, Any]) -> None:
        self.path = Path(workdir) / RUNNING_DIR / f"{os.getpid()}.json"
        self.details = details
        self._lock = threading.Lock()
        self._removed = False

    def write(self, rows: list[dict]) -> None:
        pid = os.getpid()
        record = {**self.details, "pid": pid, "pid_start": process_start(pid), "updated_at": time.time(), "servers": rows}
        with self._lock:
            if self._removed:
                return
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                temporary = self.path.with_suffix(".tmp")
                temporary.write_text(json.dumps(record), encoding="utf-8")
                os.replace(temporary, self.path)
            except OSError:
                pass  # the working directory went away: nobody left to read it

    def remove(self) -> None:
        with self._lock:
            self._removed = True
            self.path.unlink(missing_ok=True)


def running(workdir: Path) -> list[dict]:
    """The records of the live processes, oldest first; stale files are removed."""
    found = []
    directory = Path(workdir) / RUNNING_DIR
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced, or not ours
        if process_start(pid) is None or process_start(pid) != record.get("pid_start"):
            path.unlink(missing_ok=True)
            continue
        found.append(record)
    return sorted(found, key=lambda record: record.get("pid_start") or 0)
