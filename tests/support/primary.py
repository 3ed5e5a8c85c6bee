"""A real primary in another process, for tests that need this process (or a CLI) to be a secondary."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# bootstraps the working directory, reports what it became, then holds it until stdin closes
_HOLDER = (
    "import os, sys\n"
    "from pando_core.runtime import bootstrap\n"
    "rt = bootstrap(sys.argv[1])\n"
    "print(rt.role, os.getpid(), rt.instance_id, flush=True)\n"
    "sys.stdin.read()\n"
    "rt.cleanup()\n"
)


@dataclass(frozen=True)
class PrimaryHolder:
    role: str
    pid: int
    instance_id: str


def _first_line(process: subprocess.Popen, timeout: float) -> str:
    """The child's first stdout line, or an AssertionError after ``timeout`` seconds."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive() or not lines or not lines[0].strip():
        raise AssertionError(
            f"the primary holder did not report within {timeout}s (exit code {process.poll()}, output {lines!r})"
        )
    return lines[0]


@contextmanager
def primary_holder(workdir: Path, env: dict[str, str], timeout: float = 30) -> Iterator[PrimaryHolder]:
    """Start a process that bootstraps ``workdir`` and holds the primary for the ``with`` block.

    On leaving the block the holder's stdin is closed: it cleans up and must exit with status 0.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(workdir)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        role, pid, instance_id = _first_line(process, timeout).split()
        assert role == "primary", f"the holder became {role}, not the primary"
        holder = PrimaryHolder(role=role, pid=int(pid), instance_id=instance_id)
    except BaseException:
        process.kill()
        process.wait()
        raise
    try:
        yield holder
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            process.stdout.close()
    assert process.returncode == 0, f"the primary holder exited with status {process.returncode}"
