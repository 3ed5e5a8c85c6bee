"""A registry of live instances in one working directory: one small file per process."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class InstanceRegistry:
    def __init__(self, pando_dir: Path) -> None:
        self.directory = Path(pando_dir) / "instances"

    def register(self, instance_id: str, role: str, epoch: int) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"{instance_id}.json"
        data = {"instance_id": instance_id, "pid": os.getpid(), "role": role, "epoch": epoch, "since": int(time.time() * 1000)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    def unregister(self, instance_id: str) -> None:
        try:
            (self.directory / f"{instance_id}.json").unlink()
        except OSError:
            pass

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
                try:
                    path.unlink()
                except OSError:
                    pass
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
