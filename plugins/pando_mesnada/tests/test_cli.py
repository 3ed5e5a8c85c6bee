"""``pando mesnada ...`` as a user types it: the real CLI in subprocesses, with no other pando
running -- a spawn's task is done and recorded after the spawning pando has exited."""

from __future__ import annotations

import json
import sqlite3
import time


def db_task(workdir, task_id):
    with sqlite3.connect(f"file:{workdir / '.pando' / 'pando.db'}?mode=ro", uri=True, timeout=5) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM mesnada_tasks WHERE id = ?", (task_id,)).fetchone()
        return dict(row) if row else None


def test_spawn_from_a_short_lived_cli_gets_done_and_recorded(run_pando, fake_engines, pando_workdir):
    result = run_pando("mesnada", "spawn", "say:cli task\nsleep:1", "--engine", "claude", "--tag", "cli", "--json")
    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)
    assert task["status"] == "running" and task["tags"] == ["cli"]
    # no pando runs now; the supervisor records the end itself
    deadline = time.monotonic() + 60
    row = None
    while time.monotonic() < deadline:
        row = db_task(pando_workdir, task["id"])
        if row and row["completed_at"]:
            break
        time.sleep(0.1)
    assert row["status"] == "completed" and row["output_tail"] == "cli task" and row["exit_code"] == 0
    shown = json.loads(run_pando("mesnada", "show", task["id"], "--json").stdout)
    assert shown["status"] == "completed"
    text = run_pando("mesnada", "show", task["id"]).stdout
    assert "status: completed" in text and "cli task" in text
    listed = json.loads(run_pando("mesnada", "list", "--status", "completed", "--json").stdout)
    assert [t["id"] for t in listed] == [task["id"]]
    assert run_pando("mesnada", "logs", task["id"]).stdout == "cli task\n"
    watched = run_pando("mesnada", "list", "--watch", "--for", "1.5", env={"COLUMNS": "200"})
    assert watched.returncode == 0 and task["id"] in watched.stdout and "completed" in watched.stdout
    stats = json.loads(run_pando("mesnada", "stats", "--json").stdout)
    assert stats["by_status"]["completed"] == 1


def test_dependents_start_when_a_pando_runs_and_wait_is_one(run_pando, fake_engines, pando_workdir):
    first = json.loads(run_pando("mesnada", "spawn", "say:one\nsleep:3", "--engine", "claude", "--json").stdout)
    second = json.loads(
        run_pando("mesnada", "spawn", "say:two", "--engine", "claude", "--after", first["id"], "--json").stdout
    )
    assert second["status"] in ("pending", "running")
    waited = run_pando("mesnada", "wait", first["id"], second["id"], "--timeout", "60s", "--json")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert [t["status"] for t in json.loads(waited.stdout)["tasks"]] == ["completed", "completed"]
    assert fake_engines.for_prompt("say:two")["started"] >= fake_engines.for_prompt("say:one")["ended"]
    spawned = run_pando("mesnada", "spawn", "say:waited for", "--engine", "claude", "--wait")
    assert spawned.returncode == 0 and "waited for" in spawned.stdout
    failing = run_pando("mesnada", "spawn", "exit:4", "--engine", "claude", "--wait")
    assert failing.returncode == 1 and "failed" in failing.stdout


def test_bad_input_is_one_line_and_no_traceback(run_pando, fake_engines, pando_workdir):
    cases = [
        (("mesnada", "spawn", "x", "--engine", "nope"), "unknown engine 'nope'"),
        (("mesnada", "spawn", "x", "--engine", "claude", "--after", "task-12345678"), "unknown dependency"),
        (("mesnada", "spawn", "x", "--engine", "claude", "--work-dir", "missing"), "does not exist"),
        (("mesnada", "show", "task-12345678"), "no task task-12345678"),
        (("mesnada", "cancel", "task-12345678"), "no task task-12345678"),
        (("mesnada", "list", "--status", "done"), "unknown status 'done'"),
    ]
    for args, message in cases:
        result = run_pando(*args)
        assert result.returncode != 0, args
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert run_pando("mesnada", "purge", "task-12345678").returncode == 0  # idempotent


def _spawn(run_pando, prompt):
    done = run_pando("mesnada", "spawn", prompt, "--engine", "claude", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["id"]


def test_wait_any_all_timeout_exit_codes_and_json(run_pando, fake_engines, pando_workdir):
    quick = _spawn(run_pando, "say:quick\nsleep:1")
    slow = _spawn(run_pando, "say:slow\nsleep:60")
    began = time.monotonic()
    waited = run_pando("mesnada", "wait", quick, slow, "--any", "--json")
    elapsed = time.monotonic() - began
    assert waited.returncode == 0, waited.stdout + waited.stderr
    result = json.loads(waited.stdout)
    assert result["timeout"] is False
    assert [(t["id"], t["status"]) for t in result["tasks"]] == [(quick, "completed"), (slow, "running")]
    assert elapsed < 40  # the first one's end, not the slow one's
    # --all (and the default) with a timeout: exit code 2, the tasks as they are, a line on stderr
    for flags in (["--all"], []):
        began = time.monotonic()
        timed = run_pando("mesnada", "wait", quick, slow, *flags, "--timeout", "2s", "--json")
        assert timed.returncode == 2, timed.stdout + timed.stderr
        assert json.loads(timed.stdout)["timeout"] is True and "timed out waiting" in timed.stderr
        assert 2 <= time.monotonic() - began < 40
    text = run_pando("mesnada", "wait", quick, "--any")
    assert text.returncode == 0 and text.stdout.strip() == f"{quick} completed"
    # one that did not complete: exit code 1, with --any as well as --all
    assert run_pando("mesnada", "cancel", slow).returncode == 0
    failed = _spawn(run_pando, "exit:3")
    both = run_pando("mesnada", "wait", quick, slow, "--timeout", "60s")
    assert both.returncode == 1, both.stdout + both.stderr
    assert f"{quick} completed" in both.stdout and f"{slow} cancelled (stopped)" in both.stdout
    one = run_pando("mesnada", "wait", failed, "--any", "--timeout", "60s", "--json")
    assert one.returncode == 1 and json.loads(one.stdout)["tasks"][0]["error"] == "exit code 3"
    for args, message in (
        ((quick, "--any", "--all"), "--any and --all exclude each other"),
        ((quick, "--timeout", "soon"), "timeout 'soon' is not a duration"),
        (("task-12345678",), "no task task-12345678"),
    ):
        bad = run_pando("mesnada", "wait", *args)
        assert bad.returncode not in (0, 2) and message in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


class _LineReader:
    """The lines a process prints, read as they come, each wait bounded."""

    def __init__(self, proc):
        import selectors

        self.proc, self.buffer, self.closed = proc, b"", False
        self.selector = selectors.DefaultSelector()
        self.selector.register(proc.stdout, selectors.EVENT_READ)

    def next_line(self, timeout=30.0):
        import os

        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            assert not self.closed, f"the output ended; left: {self.buffer!r}"
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line within {timeout}s; so far: {self.buffer!r}"
            if self.selector.select(timeout=remaining):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                self.closed = not chunk
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def at_end(self, timeout=30.0):
        import os

        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            if self.selector.select(timeout=max(0.0, deadline - time.monotonic())):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                self.closed = not chunk
                self.buffer += chunk
        return self.closed


def test_logs_follow_prints_lines_as_they_come_until_the_task_ends(run_pando, fake_engines, pando_workdir, pando_env, tmp_path):
    import subprocess
    import sys

    go1, go2 = tmp_path / "go1", tmp_path / "go2"  # the task goes on only when the test says so
    task_id = _spawn(run_pando, f"say:first\nwait-file:{go1}\nsay:second\nwait-file:{go2}\nsay:third")
    proc = subprocess.Popen([sys.executable, "-m", "pando_core", "mesnada", "logs", task_id, "-f"], cwd=pando_workdir,
                            env=pando_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        reader = _LineReader(proc)
        assert reader.next_line(60) == "first"
        time.sleep(0.5)
        assert proc.poll() is None and reader.buffer == b""  # still following, nothing more yet
        go1.touch()
        assert reader.next_line() == "second"  # printed while the task still runs
        assert proc.poll() is None and db_task(pando_workdir, task_id)["status"] == "running"
        go2.touch()
        assert reader.next_line() == "third"
        assert reader.at_end(30) and reader.buffer == b""  # it returns by itself once the task ended
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert db_task(pando_workdir, task_id)["status"] == "completed"
    # a task that already ended: -f prints the log and returns at once
    again = run_pando("mesnada", "logs", task_id, "-f")
    assert again.returncode == 0 and again.stdout == "first\nsecond\nthird\n"
    tail = run_pando("mesnada", "logs", task_id, "-f", "--lines", "1")
    assert tail.returncode == 0 and tail.stdout.strip() == "third"
