"""The task supervisor on commands that end before their launch is recorded (``exit 0`` can
end, and even be reaped by pando, before the runner reads its start time): a CI hang, where the
supervisor waited for ever on a process it could no longer see."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from pando_mesnada.runner import SUPERVISOR, process_start_time


def _zombie() -> subprocess.Popen:
    child = subprocess.Popen(["/bin/sh", "-c", "exit 0"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < deadline, "the child did not end"
        time.sleep(0.01)
    return child


def test_a_zombie_still_tells_its_start_time_when_asked():
    child = _zombie()
    try:
        assert process_start_time(child.pid) is None  # ended, for liveness checks
        started = process_start_time(child.pid, zombie_ok=True)
        assert started is not None and started.isdigit()
    finally:
        child.wait()
    assert process_start_time(child.pid, zombie_ok=True) is None


def test_the_supervisor_of_a_child_reaped_before_it_was_seen_records_its_end(tmp_path):
    child = _zombie()
    child.wait()  # reaped: nothing left in /proc, as when pando reaps before the launch is written
    code_file = tmp_path / "task.json.code"
    code_file.write_text("0\n")
    log_file = tmp_path / "task.log"
    spec_file = tmp_path / "task.json"
    spec = {"task_id": "task-quick", "attempt": 1, "child_pid": child.pid, "child_start": None,
            "code_file": str(code_file), "log_file": str(log_file), "handoff_wait": 20.0,
            "workdir": str(tmp_path)}  # fmt: skip
    spec_file.write_text(json.dumps(spec))
    end_file = Path(str(spec_file) + ".end.json")
    supervisor = subprocess.Popen([sys.executable, "-S", SUPERVISOR, str(spec_file)])
    try:
        deadline = time.monotonic() + 15
        while not end_file.exists():
            assert time.monotonic() < deadline, "the supervisor never saw its child's end"
            time.sleep(0.02)
        outcome = json.loads(end_file.read_text())
        assert (outcome["status"], outcome["exit_code"], outcome["attempt"]) == ("completed", 0, 1)
        end_file.unlink()  # taken, as a running orchestrator does: the supervisor ends
        assert supervisor.wait(timeout=15) == 0
    finally:
        supervisor.kill()
        supervisor.wait()
