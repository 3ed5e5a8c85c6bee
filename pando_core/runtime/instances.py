"""A registry of live instances in one working directory: one small file per process."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from .lock import atomic_write


class InstanceRegistry:
    def __init__(self, pando_dir: Path) -> None:
        self.directory = Path(pando_dir) / "instances"

    def register(self, instance_id: str, role: str, epoch: int) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {
            "instance_id": instance_id,
            "pid": os.getpid(),
            "role": role,
            "epoch": epoch,
            "since": int(time.time() * 1000),
        }
        atomic_write(str(self.directory / f"{instance_id}.json"), json.dumps(data).encode("utf-8"))

    def unregister(self, instance_id: str) -> None:
        with contextlib.suppress(OSError):
            (self.directory / f"{instance_id}.json").unlink()

    def live(self) -> list[dict[str, Any]]:
        """Instances whose process is alive; files left by dead processes are removed."""
        found = []
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                pid = int(data["pid"])
            except (OSError, ValueError, KeyError):
                continue
            if pid_alive(pid):
                found.append(data)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        return found


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
