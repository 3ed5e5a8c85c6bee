"""The orchestrator on a real primary runtime: real supervisor and child processes (the fake agent
on PATH), real log files, the real SQLite database; ends recorded by the supervisors through the
write path (as secondaries of the test's primary)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from mesnada_testing import drive, ended, pid_alive

from pando_core.errors import NotFoundError, ValidationError


def test_a_task_runs_its_engine_and_its_end_is_recorded(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    task = orchestrator.spawn({"prompt": "say:hello from claude\nstderr:a warning", "engine": "claude", "tags": ["a", "b"]})
    assert task["id"].startswith("task-") and len(task["id"]) == 13
    assert task["status"] == "running" and task["pid"]
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]), what="the task to end")
    assert done["status"] == "completed" and done["exit_code"] == 0
    assert "hello from claude" in done["output_tail"] and "a warning" in done["output_tail"]
    assert Path(done["log_file"]) == Path(orchestrator.workdir, ".pando/mesnada/logs", f"{task['id']}.log")
    assert "hello from claude" in Path(done["log_file"]).read_text()
    run = fake_engines.for_prompt("hello from claude")
    assert run["argv"][:5] == ["--print", "--output-format", "text", "--verbose", "--dangerously-skip-permissions"]
    assert run["argv"][-2] == "-p" and run["cwd"] == str(orchestrator.workdir)
    assert done["started_at"] <= done["completed_at"]


def test_a_task_queued_elsewhere_logs_here_when_its_log_folder_is_not_on_this_machine(
    make_orchestrator, fake_engines, tmp_path
):
    """Team mode: a task queued by a queue-only orchestrator on another machine names a log in
    that machine's .pando/; the orchestrator that starts it logs in its own when that is absent."""
    from pando_mesnada.orchestrator import Orchestrator

    orchestrator = make_orchestrator()
    elsewhere = Orchestrator(orchestrator.store, tmp_path / "other-machine", {}, queue_only=True)
    task = elsewhere.spawn({"prompt": "say:queued far away", "engine": "claude"})
    assert task["status"] == "pending" and elsewhere.runner is None
    Path(task["log_file"]).parent.rmdir()  # as if that folder were on another host
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]), what="the task to end")
    assert done["status"] == "completed" and done["output_tail"] == "queued far away"
    assert Path(done["log_file"]) == Path(orchestrator.workdir, ".pando/mesnada/logs", f"{task['id']}.log")


def test_a_failing_child_fails_the_task_with_its_exit_code(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    task = orchestrator.spawn({"prompt": "say:trying\nexit:3", "engine": "gemini"})
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]))
    assert done["status"] == "failed" and done["exit_code"] == 3 and done["error"] == "exit code 3"


def test_max_parallel_is_enforced_by_priority_then_age(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator(max_parallel=2)
    ids = []
    for index, priority in enumerate([0, 0, 5, 0, 9]):
        ids.append(orchestrator.spawn({"prompt": f"say:job{index}\nsleep:0.6", "engine": "claude", "priority": priority})["id"])
    assert len(orchestrator.list({"status": "running"})) == 2
    tasks = drive(orchestrator, ended(orchestrator, *ids), timeout=60)
    assert all(t["status"] == "completed" for t in tasks)
    runs = sorted(fake_engines.all(), key=lambda r: r["started"])
    events = sorted([(r["started"], 1) for r in runs] + [(r["ended"], -1) for r in runs])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2
    order = [r["prompt"].splitlines()[0] for r in runs]
    # the first two started at once; then the queue: priority 9 and 5 (both slots free up
    # together, so their processes may start in either order), and the oldest priority-0 last
    assert sorted(order[:2]) == ["say:job0", "say:job1"]
    assert sorted(order[2:4]) == ["say:job2", "say:job4"] and order[4] == "say:job3"


def test_dependencies_start_after_completion_with_their_logs(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    first = orchestrator.spawn({"prompt": "say:alpha-result-42\nsleep:0.3", "engine": "claude"})
    second = orchestrator.spawn(
        {"prompt": "say:second", "engine": "claude", "dependencies": [first["id"]], "include_dependency_logs": True}
    )
    assert second["status"] == "pending"
    drive(orchestrator, ended(orchestrator, first["id"], second["id"]))
    run_first, run_second = fake_engines.for_prompt("alpha-result-42\nsleep"), fake_engines.for_prompt("say:second")
    assert run_second["started"] >= run_first["ended"]
    assert "===LAST TASK RESULTS===" in run_second["prompt"]
    assert f"--- {first['id']} ---\nalpha-result-42" in run_second["prompt"]


def test_a_failed_dependency_fails_its_dependents(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    first = orchestrator.spawn({"prompt": "exit:1", "engine": "claude"})
    second = orchestrator.spawn({"prompt": "say:never", "engine": "claude", "dependencies": [first["id"]]})
    _, after = drive(orchestrator, ended(orchestrator, first["id"], second["id"]))
    assert after["status"] == "failed" and after["error"] == f"dependency {first['id']} failed"
    assert not [r for r in fake_engines.all() if "never" in r["prompt"]]


def test_timeout_stops_the_whole_group_even_when_sigterm_is_ignored(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator(stop_grace=0.5)
    task = orchestrator.spawn({"prompt": "ignore-term\ngrandchild\nsay:started\nsleep:60", "engine": "claude", "timeout": "1s"})
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]), timeout=20)
    assert done["status"] == "failed" and done["error"] == "timed out after 1s"
    run = fake_engines.for_prompt("ignore-term")
    assert not pid_alive(run["pid"]) and not pid_alive(run["grandchild"])
    assert "timed out after 1s" in Path(done["log_file"]).read_text()


def test_cancel_stops_a_running_task_and_its_children(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    task = orchestrator.spawn({"prompt": "grandchild\nsay:working\nsleep:60", "engine": "claude"})
    drive(orchestrator, lambda: "working" in Path(task["log_file"]).read_text(), what="the child to print")
    assert orchestrator.cancel(task["id"])["status"] == "cancelled"
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]))
    assert done["status"] == "cancelled" and done["completed_at"]
    run = fake_engines.for_prompt("grandchild")
    deadline = time.monotonic() + 10
    while (pid_alive(run["pid"]) or pid_alive(run["grandchild"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(run["pid"]) and not pid_alive(run["grandchild"])
    with pytest.raises(ValidationError, match="already cancelled"):
        orchestrator.cancel(task["id"])


def test_a_pending_task_is_cancelled_without_running(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator(max_parallel=1)
    blocker = orchestrator.spawn({"prompt": "sleep:2", "engine": "claude"})
    waiting = orchestrator.spawn({"prompt": "say:waiting", "engine": "claude"})
    assert waiting["status"] == "pending"
    assert orchestrator.cancel(waiting["id"])["status"] == "cancelled"
    orchestrator.cancel(blocker["id"])
    drive(orchestrator, ended(orchestrator, blocker["id"]))
    assert not [r for r in fake_engines.all() if "waiting" in r["prompt"]]


def test_retry_appends_to_the_same_log_and_relaunch_keeps_the_id(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    task = orchestrator.spawn({"prompt": "say:attempt\nexit:2", "engine": "claude", "tags": ["r"]})
    drive(orchestrator, ended(orchestrator, task["id"]))
    retry = orchestrator.retry(task["id"])
    assert retry["id"] != task["id"] and retry["retry_of"] == task["id"] and retry["log_file"] == task["log_file"]
    drive(orchestrator, ended(orchestrator, retry["id"]))
    log = Path(task["log_file"]).read_text()
    assert log.count("attempt") == 2 and f"=== RETRY as {retry['id']} of {task['id']}" in log
    relaunched = orchestrator.relaunch(task["id"], {"prompt": "say:fixed"})
    assert relaunched["id"] == task["id"] and relaunched["status"] in ("pending", "running")
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]))
    assert done["status"] == "completed" and done["attempt"] == 2 and "fixed" in done["output_tail"]
    with pytest.raises(ValidationError, match="only a failed or cancelled"):
        orchestrator.retry(task["id"])


def test_pause_then_resume_continues_in_a_new_task(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    task = orchestrator.spawn({"prompt": "say:long job\nsleep:60", "engine": "claude"})
    drive(orchestrator, lambda: "long job" in Path(task["log_file"]).read_text())
    assert orchestrator.pause(task["id"])["status"] == "paused"
    drive(orchestrator, lambda: orchestrator.get(task["id"])["error"] == "stopped", what="the paused child to end")
    assert orchestrator.get(task["id"])["status"] == "paused"
    follow_up = orchestrator.resume(task["id"], "say:resumed")
    assert follow_up["id"] != task["id"] and task["log_file"] in follow_up["prompt"]
    orchestrator.cancel(follow_up["id"])


def test_delete_and_purge(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    task = orchestrator.spawn({"prompt": "say:bye", "engine": "claude"})
    drive(orchestrator, ended(orchestrator, task["id"]))
    assert Path(task["log_file"]).exists()
    assert orchestrator.purge(task["id"]) == {"purged": task["id"], "existed": True}
    assert not Path(task["log_file"]).exists()
    assert orchestrator.purge(task["id"]) == {"purged": task["id"], "existed": False}
    with pytest.raises(NotFoundError):
        orchestrator.get(task["id"])
    other = orchestrator.spawn({"prompt": "sleep:30", "engine": "claude"})
    orchestrator.delete(other["id"])
    with pytest.raises(NotFoundError):
        orchestrator.delete(other["id"])


def test_list_filters_and_stats(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    a = orchestrator.spawn({"prompt": "say:a", "engine": "claude", "tags": ["x", "y"]})
    b = orchestrator.spawn({"prompt": "say:b", "engine": "claude", "tags": ["x"]})
    drive(orchestrator, ended(orchestrator, a["id"], b["id"]))
    assert [t["id"] for t in orchestrator.list({"tags": ["x"]})] == [b["id"], a["id"]]
    assert [t["id"] for t in orchestrator.list({"tags": ["x", "y"]})] == [a["id"]]
    assert [t["id"] for t in orchestrator.list({"limit": 1})] == [b["id"]]
    assert orchestrator.list({"status": "running"}) == []
    stats = orchestrator.stats()
    assert stats["by_status"]["completed"] == 2 and stats["total"] == 2
    with pytest.raises(ValidationError, match="unknown status"):
        orchestrator.list({"status": "done"})
    assert orchestrator.set_progress(a["id"], 40, "halfway")["progress"]["percentage"] == 40
    with pytest.raises(ValidationError):
        orchestrator.set_progress(a["id"], 140, "too far")


def test_personas_prefix_the_prompt_and_files_override_builtins(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    (orchestrator.paths.personas).mkdir(parents=True, exist_ok=True)
    (orchestrator.paths.personas / "reviewer.md").write_text("You review code like a hawk.\n")
    a = orchestrator.spawn({"prompt": "say:qa-run", "engine": "claude", "persona": "qa"})
    b = orchestrator.spawn({"prompt": "say:review-run", "engine": "claude", "persona": "reviewer"})
    drive(orchestrator, ended(orchestrator, a["id"], b["id"]))
    assert fake_engines.for_prompt("say:qa-run")["prompt"].startswith("You are a QA engineer.")
    assert fake_engines.for_prompt("say:review-run")["prompt"].startswith("You review code like a hawk.\n\n")
    with pytest.raises(ValidationError, match="unknown persona 'nobody'"):
        orchestrator.spawn({"prompt": "x", "engine": "claude", "persona": "nobody"})


def test_bad_input_is_refused_with_a_clear_error(make_orchestrator, fake_engines, pando_workdir):
    orchestrator = make_orchestrator()
    cases = [
        ({"prompt": ""}, "needs a prompt"),
        ({"prompt": "x", "engine": "cursor"}, "unknown engine 'cursor'"),
        ({"prompt": "x", "engine": "claude", "dependencies": ["task-00000000"]}, "unknown dependency 'task-00000000'"),
        ({"prompt": "x", "engine": "claude", "work_dir": "no/such/dir"}, "work_dir no/such/dir does not exist"),
        ({"prompt": "x" * (1024 * 1024), "engine": "claude"}, "limited to 120 KiB"),
        ({"prompt": "x", "engine": "claude", "timeout": "soon"}, "not a duration"),
        ({"prompt": "x", "engine": "claude", "isolation": "worktree"}, "needs a git repository"),
        ({"prompt": "x", "engine": "claude", "priority": "high"}, "priority must be an integer"),
        ({"prompt": "x", "engine": "claude", "tags": "one"}, "tags must be a list"),
    ]
    for params, message in cases:
        with pytest.raises(ValidationError, match=message):
            orchestrator.spawn(params)
    (fake_engines.path.parent / "bin" / "codex").unlink()  # this engine's program is not installed
    with pytest.raises(ValidationError, match="the program 'codex' is not on PATH"):
        orchestrator.spawn({"prompt": "x", "engine": "codex"})
    assert orchestrator.list({}) == []


def test_a_dependency_cycle_is_refused(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator(max_parallel=0)  # nothing starts: only the graph matters
    a = orchestrator.spawn({"prompt": "say:a", "engine": "claude"})
    b = orchestrator.spawn({"prompt": "say:b", "engine": "claude", "dependencies": [a["id"]]})
    with pytest.raises(ValidationError, match="dependency cycle"):
        orchestrator.relaunch(a["id"], {"dependencies": [b["id"]]})
    with pytest.raises(ValidationError, match="cannot depend on itself"):
        orchestrator.relaunch(a["id"], {"dependencies": [a["id"]]})


def test_a_flood_of_output_stays_in_the_log_and_the_database_keeps_a_bounded_tail(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator()
    task = orchestrator.spawn({"prompt": "flood:100", "engine": "claude"})
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]), timeout=120)
    assert done["status"] == "completed"
    assert Path(done["log_file"]).stat().st_size >= 100 * 1024 * 1024 == done["log_bytes"] - len("flood done\n")
    assert done["output_tail"].endswith("flood done") and len(done["output_tail"]) <= 16 * 1024


def test_a_one_megabyte_prompt_reaches_the_pando_engine_on_stdin(make_orchestrator, fake_engines):
    orchestrator = make_orchestrator(pando_command="fake-agent")
    prompt = "say:big prompt\n" + "y" * (1024 * 1024)
    task = orchestrator.spawn({"prompt": prompt, "engine": "pando"})
    (done,) = drive(orchestrator, ended(orchestrator, task["id"]))
    run = fake_engines.for_prompt("say:big prompt")
    assert done["status"] == "completed" and run["argv"][-1] == "-" and run["argv"][-2] == "-p"
    assert run["prompt"] == f"You are the task_id: {task['id']}\n\n{prompt}"
    assert run["env"]["NO_COLOR"] == "1"


def test_a_new_orchestrator_adopts_live_tasks_and_fails_the_dead(make_orchestrator, fake_engines, primary):
    first = make_orchestrator()
    alive = first.spawn({"prompt": "say:still here\nsleep:1.5\nsay:done", "engine": "claude"})
    gone = first.spawn({"prompt": "sleep:30", "engine": "claude"})
    deadline = time.monotonic() + 20
    while first.runner.child_pid(gone["id"]) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    # the second one's supervisor and child die without a trace, as in a machine reboot
    os.kill(gone["pid"], 9)
    os.killpg(first.runner.child_pid(gone["id"]), 9)
    os.waitpid(first.runner._children.pop(gone["id"]), 0)  # reaped: no zombie left behind
    second = make_orchestrator()  # what a new primary makes
    result = second.adopt()
    assert result == {"adopted": [alive["id"]], "interrupted": [gone["id"]]}
    assert second.get(gone["id"])["error"].startswith("interrupted")
    (done,) = drive(second, ended(second, alive["id"]))
    assert done["status"] == "completed" and "done" in done["output_tail"]
