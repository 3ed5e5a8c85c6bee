"""The local backend: each task is a supervisor process (see supervisor.py) running its child.

Processes are identified by pid *and* start time (from ``/proc``), so a recycled pid is never taken
for a task's supervisor when a new primary re-adopts the tasks that are still running.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engines import EngineCommand

SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
SH = "/bin/sh"
# $0: the exit-code file, $1: the directory to run in, then the command
WRAPPER = 'cd -- "$1" || exit 127; shift; "$@"; echo $? > "$0"'


@dataclass(frozen=True)
class Paths:
    """Where the plugin keeps its files: ``.pando/mesnada/``."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def personas(self) -> Path:
        return self.root / "personas"

    @property
    def worktrees(self) -> Path:
        return self.root / "worktrees"

    def log_file(self, task_id: str) -> Path:
        return self.logs / f"{task_id}.log"

    def spec_file(self, task_id: str) -> Path:
        return self.run / f"{task_id}.json"

    def mcp_dir(self, task_id: str) -> Path:
        return self.root / "mcp" / task_id

    def ensure(self) -> Paths:
        for directory in (self.root, self.logs, self.run):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self


def process_start_time(pid: int, zombie_ok: bool = False) -> str | None:
    """The kernel's start time of *pid* (clock ticks since boot), None when there is no such
    process or it is a zombie (unless *zombie_ok*: a zombie still names the process it was)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] in ("Z", "X") and not zombie_ok:
        return None
    return fields[19]


def is_alive(pid: int | None, start: str | None) -> bool:
    return bool(pid) and start is not None and process_start_time(pid) == start


class LocalRunner:
    name = "local"

    def __init__(self, paths: Paths, handoff_wait: float = 2.0, env: dict[str, str] | None = None) -> None:
        self.paths = paths
        self.env = dict(env or {})  # for the supervisors (the plugins a recording pando loads)
        self.handoff_wait = handoff_wait  # how long a supervisor waits for an orchestrator to record its end
        self._children: dict[str, int] = {}  # supervisors this process started (reaped here)

    def launch(self, task: dict[str, Any], command: EngineCommand, workdir: Path, grace: float) -> dict[str, Any]:
        task_id = task["id"]
        for path, content in command.files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content, encoding="utf-8")
        spec_file = self.paths.spec_file(task_id)
        stdin_file = None
        if command.stdin_text is not None:
            stdin_file = str(spec_file.with_suffix(".prompt"))
            Path(stdin_file).write_text(command.stdin_text, encoding="utf-8")
        for stale in (Path(str(spec_file) + ".end.json"), Path(str(spec_file) + ".child"), Path(str(spec_file) + ".launch")):
            stale.unlink(missing_ok=True)
        spec = {
            "task_id": task_id,
            "attempt": task["attempt"] + 1,
            "argv": command.argv,
            "cwd": task["work_dir"],
            "env": command.env,
            "log_file": task["log_file"],
            "stdin_file": stdin_file,
            "timeout": task["timeout_seconds"],
            "grace": grace,
            "workdir": str(workdir),
            "worktree": task.get("worktree"),
            "base_commit": (task.get("extra") or {}).get("base_commit"),
        }
        code_file = str(spec_file) + ".code"
        Path(code_file).unlink(missing_ok=True)
        # the child first, so that nothing waits for the supervisor's start-up. posix_spawn (vfork
        # underneath) rather than fork: copying a large pando process costs more than the rest of
        # a spawn. A session of its own; the sh wrapper changes directory (posix_spawn cannot)
        # and writes the exit code, which only a parent could otherwise learn.
        env = {**os.environ, **command.env}
        env.pop("PYTHONNOUSERSITE", None)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, stdin_file or os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, task["log_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        child = os.posix_spawn(SH, [SH, "-c", WRAPPER, code_file, task["work_dir"], *command.argv], env,
                               file_actions=actions, setsid=True)  # fmt: skip
        self._children[f"{task_id}.child"] = child
        Path(str(spec_file) + ".child").write_text(str(child))
        # a quick command may already have ended: its zombie still tells its start time
        spec.update(child_pid=child, child_start=process_start_time(child, zombie_ok=True), code_file=code_file,
                    handoff_wait=self.handoff_wait)  # fmt: skip
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        out = str(self.paths.run / f"{task_id}.supervisor.log")
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        pid = os.posix_spawn(sys.executable, [sys.executable, "-S", SUPERVISOR, str(spec_file)], {**os.environ, **self.env},
                             file_actions=actions, setsid=True)  # fmt: skip
        self._children[task_id] = pid
        return {"pid": pid, "pid_start": process_start_time(pid), "child_pid": child}

    def reap(self) -> None:
        """Collect the exit status of supervisors started here (they would linger as zombies)."""
        for task_id, pid in list(self._children.items()):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                del self._children[task_id]

    def alive(self, task: dict[str, Any]) -> bool:
        self.reap()
        return is_alive(task.get("pid"), task.get("pid_start"))

    def stop(self, task: dict[str, Any]) -> None:
        """Ask the supervisor to stop the child (it escalates to SIGKILL itself); when the
        supervisor is gone, stop the child's process group directly."""
        if is_alive(task.get("pid"), task.get("pid_start")):
            try:
                os.kill(task["pid"], signal.SIGTERM)
                return
            except ProcessLookupError:
                pass
        child = self.child_pid(task["id"])
        if child:
            try:
                os.killpg(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def child_pid(self, task_id: str) -> int | None:
        try:
            return int(Path(str(self.paths.spec_file(task_id)) + ".child").read_text())
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        """Leave the supervisors running (they outlive this pando by design)."""
        self.reap()
