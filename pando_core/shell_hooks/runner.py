"""Running one hook command: its JSON input on stdin, its answer read from the exit code and stdout.

A hook runs through ``/bin/sh -c`` in the working directory, in a process group of its own (so a
timeout ends everything it started), with ``CLAUDE_PROJECT_DIR`` and ``PANDO_PROJECT_DIR`` set to
the working directory. Exit 0: success, stdout may be a JSON object. Exit 2: a block, stderr is the
reason. Any other exit, a timeout, a command that cannot start or stdout that starts like JSON but
is not: a failure, which the caller reports as a warning and otherwise ignores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import HookCommand

OUTPUT_LIMIT = 64 * 1024  # what is kept of a hook's stdout and stderr
BLOCK_EXIT = 2


@dataclass
class HookRun:
    command: HookCommand
    exit_code: int | None = None  # None: it did not finish (timeout, could not start)
    stdout: str = ""
    stderr: str = ""
    answer: dict[str, Any] | None = None  # the JSON object printed on stdout, if any
    problem: str = ""  # why this run failed (reported as a warning), "" when it did not

    @property
    def blocked(self) -> bool:
        return self.exit_code == BLOCK_EXIT

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.problem

    @property
    def text(self) -> str:
        """Plain (non-JSON) stdout of a successful run."""
        return self.stdout.strip() if self.succeeded and self.answer is None else ""


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_hook(command: HookCommand, payload: dict[str, Any], workdir: Path) -> HookRun:
    run = HookRun(command)
    env = dict(os.environ, CLAUDE_PROJECT_DIR=str(workdir), PANDO_PROJECT_DIR=str(workdir))
    try:
        process = subprocess.Popen(
            ["/bin/sh", "-c", command.command],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        run.problem = f"could not start: {exc}"
        return run
    data = json.dumps(payload, default=str).encode()
    try:
        stdout, stderr = process.communicate(data, timeout=command.timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)  # the hook and everything it started
        process.communicate()
        run.problem = f"timed out after {command.timeout_s:g} s"
        return run
    # a finished hook may leave a program running on purpose (a server started at SessionStart,
    # its output redirected): it is not killed
    run.exit_code = process.returncode
    run.stdout = stdout[:OUTPUT_LIMIT].decode(errors="replace")
    run.stderr = stderr[:OUTPUT_LIMIT].decode(errors="replace").strip()
    if run.exit_code not in (0, BLOCK_EXIT):
        detail = f": {run.stderr.splitlines()[-1]}" if run.stderr else ""
        run.problem = f"exited with status {run.exit_code}{detail}"
    elif run.exit_code == 0 and run.stdout.lstrip().startswith("{"):
        try:
            answer = json.loads(run.stdout)
        except ValueError as exc:
            run.problem = f"printed JSON that could not be read: {exc}"
        else:
            if isinstance(answer, dict):
                run.answer = answer
    return run


def run_hooks(commands: list[HookCommand], payload: dict[str, Any], workdir: Path) -> list[HookRun]:
    """Run every command (in parallel when there are several); results in the commands' order."""
    if len(commands) == 1:
        return [run_hook(commands[0], payload, workdir)]
    with ThreadPoolExecutor(max_workers=min(len(commands), 8), thread_name_prefix="pando-hook") as pool:
        return list(pool.map(lambda c: run_hook(c, payload, workdir), commands))
