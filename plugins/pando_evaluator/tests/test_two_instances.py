"""Two real pando processes on one working directory: evaluations happen on the primary, once."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

DRIVER = Path(__file__).with_name("instance_driver.py")


class Instance:
    """One `pando` process (an App with the evaluator), answering JSON-line commands."""

    def __init__(self, workdir: Path, env: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER), str(workdir)],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr.append), daemon=True).start()
        ready = self.receive(timeout=60)
        self.role, self.instance_id = ready["ready"], ready["instance_id"]

    @staticmethod
    def _pump(stream, sink) -> None:  # noqa: ANN001
        for line in stream:
            sink(line)

    def receive(self, timeout: float = 60) -> dict:
        try:
            return json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            raise AssertionError(f"no answer from pid {self.process.pid}; stderr: {''.join(self.stderr)[-2000:]}") from None

    def ask(self, timeout: float = 60, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self.receive(timeout)
        assert "error" not in answer, answer["error"]
        return answer

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def instances(pando_workdir, pando_env, model_server):
    write_model_config(pando_workdir, model_server.base_url, extra="\n[evaluator]\nidle_minutes = 0\n")
    started: list[Instance] = []

    def start() -> Instance:
        instance = Instance(pando_workdir, pando_env)
        started.append(instance)
        return instance

    yield start
    for instance in reversed(started):
        instance.stop()


def scores(workdir: Path) -> list[dict]:
    with sqlite3.connect(f"file:{workdir / '.pando' / 'pando.db'}?mode=ro", uri=True, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM evaluator_scores")]


def wait_for_scores(workdir: Path, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = scores(workdir)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{count} score(s) expected within {timeout} s, found {scores(workdir)}")


def test_a_session_run_on_a_secondary_is_scored_once_on_the_primary(instances, model_server, pando_workdir, ev):
    ev.set_judge(model_server, ev.judge_answer(rule="Say which file you changed."))
    primary = instances()
    secondary = instances()
    assert (primary.role, secondary.role) == ("primary", "secondary")
    ended = secondary.ask(cmd="session", prompt="add a flag")
    (score,) = wait_for_scores(pando_workdir, 1)
    assert score["session_id"] == ended["session_id"]
    assert score["evaluated_by"] == primary.instance_id and score["evaluations"] == 1
    assert len(ev.judge_requests(model_server)) == 1
    # asked again from the secondary (the CLI's path): the primary answers "already scored"
    again = secondary.ask(cmd="evaluate", session_id=ended["session_id"])["result"]
    assert again["stored"] is False
    assert len(scores(pando_workdir)) == 1 and len(ev.judge_requests(model_server)) == 1


def test_a_primary_killed_during_an_evaluation_leaves_it_to_the_next_primary(instances, model_server, pando_workdir, ev):
    slow = Reply.text(ev.judge_answer(rule="Keep the change small."), delay=30)
    ev.set_judge(model_server, slow)
    primary = instances()
    secondary = instances()
    ended = secondary.ask(cmd="session", prompt="add a flag")
    assert ended["end_ms"] < 1000  # the judge takes 30 s: the end of the session only queued it
    assert model_server.wait_for(lambda s: len(ev.judge_requests(s)) == 1, timeout=30), "the primary never asked the judge"
    ev.set_judge(model_server, ev.judge_answer(rule="Keep the change small."))  # the next judge answers at once
    primary.kill()
    deadline = time.monotonic() + 20
    while secondary.ask(cmd="role")["role"] != "primary":
        assert time.monotonic() < deadline, "the secondary was not promoted"
        time.sleep(0.05)
    (score,) = wait_for_scores(pando_workdir, 1)
    assert score["session_id"] == ended["session_id"]
    assert score["evaluated_by"] == secondary.instance_id and score["evaluations"] == 1
    with sqlite3.connect(f"file:{pando_workdir / '.pando' / 'pando.db'}?mode=ro", uri=True) as conn:
        rules = conn.execute("SELECT content FROM evaluator_rules").fetchall()
        pending = conn.execute("SELECT count(*) FROM evaluator_pending").fetchone()[0]
    assert rules == [("Keep the change small.",)] and pending == 0
    assert len(ev.judge_requests(model_server)) == 1  # since the kill: the new primary asked once
