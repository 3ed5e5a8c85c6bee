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
