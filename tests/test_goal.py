"""Goal mode end to end: the real `pando goal` CLI against the scripted model server, plus the evaluator."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys

import pytest

from pando_core.commands.goal_cmd import run_goal_in_app
from pando_core.errors import NotFoundError, UsageError
from pando_core.frontends.goal import (
    BLOCKED,
    COMPLETED,
    IN_PROGRESS,
    GoalOptions,
    GoalResult,
    build_continuation_prompt,
    build_initial_prompt,
    evaluate,
    format_duration,
    parse_checklist,
    parse_duration,
    parse_status_block,
    run_goal,
)
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.support.images import VISION, image_urls, tiny_png

PANDO = [sys.executable, "-m", "pando_core", "--plugins", "none"]


def status_block(status: str, progress: str = "", next_step: str = "", reason: str = "") -> str:
    lines = [f"GOAL_STATUS: {status}"]
    if progress:
        lines.append(f"PROGRESS: {progress}")
    if next_step:
        lines.append(f"NEXT_STEP: {next_step}")
    if reason:
        lines.append(f"BLOCKED_REASON: {reason}")
    return "\n".join(lines)


@pytest.fixture
def goal_dir(pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    return pando_workdir


def goal_cli(workdir, env, *args, timeout=60):
    return subprocess.run(
        [*PANDO, "goal", *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )


def goal_json(workdir, env, *args, timeout=60):
    proc = goal_cli(workdir, env, "--yolo", "-f", "json", *args, timeout=timeout)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(
            f"no JSON on stdout (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        ) from None
    return proc, data


def goal_row(workdir, session_id):
    db = sqlite3.connect(f"file:{workdir}/.pando/pando.db?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        row = db.execute(
            "SELECT * FROM session_goals WHERE session_id=? ORDER BY created_at DESC LIMIT 1", (session_id,)
        ).fetchone()
        title = db.execute("SELECT title FROM sessions WHERE id=?", (session_id,)).fetchone()[0]
    finally:
        db.close()
    return dict(row), title


def user_prompts(server):
    """The last user message of every model request, in order."""
    prompts = []
    for body in server.requests:
        users = [m for m in body["messages"] if m["role"] == "user"]
        content = users[-1]["content"]
        prompts.append(content if isinstance(content, str) else "".join(p.get("text", "") for p in content))
    return prompts


# ----------------------------------------------------------------------------------------- statuses


@pytest.mark.slow
def test_goal_completed_after_two_iterations(goal_dir, pando_env, model_server):
    final = "- [x] create notes.txt\n- [x] check it\n\n" + status_block(
        "completed", "notes.txt created and checked"
    )
    model_server.script(
        Reply.tool("write", {"file_path": "notes.txt", "content": "hello\n"}),
        Reply.text(
            "Plan:\n- [x] create notes.txt\n- [ ] check it\n\n"
            + status_block("in_progress", "notes.txt created", "check notes.txt")
        ),
        Reply.text(final),
    )
    proc, data = goal_json(goal_dir, pando_env, "create notes.txt")
    assert proc.returncode == 0, proc.stderr
    assert (goal_dir / "notes.txt").read_text() == "hello\n"
    assert list(data) == [
        "session_id",
        "objective",
        "status",
        "iteration",
        "max_iterations",
        "max_duration_seconds",
        "response",
        "progress",
    ]
    assert data["objective"] == "create notes.txt"
    assert data["status"] == "completed"
    assert data["iteration"] == 2
    assert data["max_iterations"] == 20
    assert data["max_duration_seconds"] == 3600
    assert data["response"] == final
    assert data["progress"] == "notes.txt created and checked"
    row, title = goal_row(goal_dir, data["session_id"])
    assert title == "Goal: create notes.txt"
    assert row["status"] == "completed" and row["iteration"] == 2 and row["completed_at"]
    assert row["next_step"] is None and row["blocked_reason"] is None
    prompts = user_prompts(model_server)
    assert len(prompts) == 3  # tool round + answer in turn 1, answer in turn 2
    assert "GOAL MODE" in prompts[0] and "create notes.txt" in prompts[0] and "GOAL_STATUS:" in prompts[0]
    assert "iteration 2 of 20" in prompts[2]
    assert "notes.txt created" in prompts[2] and "check notes.txt" in prompts[2]


@pytest.mark.slow
def test_goal_blocked_with_the_spec_marker(goal_dir, pando_env, model_server):
    model_server.script(Reply.text("I looked around.\nGOAL BLOCKED: need creds for the staging database"))
    proc, data = goal_json(goal_dir, pando_env, "deploy to staging")
    assert proc.returncode == 1, proc.stderr
    assert data["status"] == "blocked"
    assert data["iteration"] == 1
    assert data["blocked_reason"] == "need creds for the staging database"
    assert "next_step" not in data
    row, _ = goal_row(goal_dir, data["session_id"])
    assert row["status"] == "blocked" and row["blocked_reason"] == "need creds for the staging database"


@pytest.mark.slow
def test_goal_stalls_after_three_answers_without_progress(goal_dir, pando_env, model_server):
    stuck = "Still stuck on the same issue. Next step: retry."
    model_server.script(Reply.text(stuck), Reply.text(stuck), Reply.text(stuck), Reply.text("never asked"))
    proc, data = goal_json(goal_dir, pando_env, "--max-iterations", "10", "fix the flaky test")
    assert proc.returncode == 1, proc.stderr
    assert data["status"] == "stalled"
    assert data["iteration"] == 3
    assert data["max_iterations"] == 10
    assert data["progress"] == stuck
    assert "no measurable progress for 3 consecutive iterations" in data["blocked_reason"]
    assert len(model_server.requests) == 3
    assert goal_row(goal_dir, data["session_id"])[0]["stall_count"] == 3


@pytest.mark.slow
def test_goal_fails_at_max_iterations(goal_dir, pando_env, model_server):
    model_server.script(
        Reply.text(status_block("in_progress", "step 1 done", "do step 2")),
        Reply.text(status_block("in_progress", "step 2 done", "do step 3")),
        Reply.text("never asked"),
    )
    proc, data = goal_json(goal_dir, pando_env, "--max-iterations", "2", "do three steps")
    assert proc.returncode == 2, proc.stderr
    assert data["status"] == "failed"
    assert data["iteration"] == 2 and data["max_iterations"] == 2
    assert data["blocked_reason"] == "GOAL STOPPED: reached max iterations (2)"
    assert data["progress"] == "step 2 done"
    assert data["next_step"] == "do step 3"
    assert len(model_server.requests) == 2


@pytest.mark.slow
def test_goal_times_out_during_a_slow_turn(goal_dir, pando_env, model_server):
    model_server.script(Reply.text("too late", delay=30))
    proc, data = goal_json(goal_dir, pando_env, "--max-duration", "1", "something slow")
    assert proc.returncode == 2, proc.stderr
    assert data["status"] == "timeout"
    assert data["iteration"] == 0
    assert data["max_duration_seconds"] == 1
    assert data["blocked_reason"] == "GOAL TIMEOUT: exceeded max duration (1s)"
    assert data["response"] == ""
    row, _ = goal_row(goal_dir, data["session_id"])
    assert row["status"] == "timeout" and row["completed_at"]


def start_goal(workdir, env, *args):
    return subprocess.Popen(
        [*PANDO, "goal", "--yolo", "-f", "json", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt_after_requests(proc, server, count):
    try:
        assert server.wait_for_requests(count, timeout=30), "the goal never reached the model"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return out, err


@pytest.mark.slow
def test_goal_cancelled_by_sigint(goal_dir, pando_env, model_server):
    model_server.script(Reply.text("slow", delay=30))
    proc = start_goal(goal_dir, pando_env, "long job")
    out, err = interrupt_after_requests(proc, model_server, 1)
    assert proc.returncode == 1, err
    data = json.loads(out)
    assert data["status"] == "cancelled"
    assert data["iteration"] == 0
    assert data["blocked_reason"] == "GOAL CANCELLED"
    assert goal_row(goal_dir, data["session_id"])[0]["status"] == "cancelled"


@pytest.mark.slow
def test_interrupted_goal_resumes_where_it_stopped(goal_dir, pando_env, model_server):
    model_server.script(
        Reply.text(
            "- [x] part one\n- [ ] part two\n\n" + status_block("in_progress", "part one done", "part two")
        ),
        Reply.text("slow", delay=30),
    )
    proc = start_goal(goal_dir, pando_env, "--max-iterations", "5", "two parts")
    out, err = interrupt_after_requests(proc, model_server, 2)
    first = json.loads(out)
    assert first["status"] == "cancelled" and first["iteration"] == 1, err
    assert first["progress"] == "part one done"

    model_server.script(
        Reply.text("- [x] part one\n- [x] part two\n\n" + status_block("completed", "both parts done"))
    )
    session_prefix = first["session_id"][:8]
    proc, data = goal_json(goal_dir, pando_env, "--max-iterations", "5", "--resume", session_prefix)
    assert proc.returncode == 0, proc.stderr
    assert data["session_id"] == first["session_id"]
    assert data["objective"] == "two parts"
    assert data["status"] == "completed"
    assert data["iteration"] == 2
    assert data["progress"] == "both parts done"
    resumed_prompt = user_prompts(model_server)[-1]
    assert "iteration 2 of 5" in resumed_prompt
    assert "part one done" in resumed_prompt and "part two" in resumed_prompt
    # one goal row, continued
    db = sqlite3.connect(f"file:{goal_dir}/.pando/pando.db?mode=ro", uri=True)
    try:
        assert db.execute("SELECT COUNT(*) FROM session_goals").fetchone()[0] == 1
    finally:
        db.close()


@pytest.mark.slow
def test_completion_with_unchecked_todos_continues(goal_dir, pando_env, model_server):
    model_server.script(
        Reply.text("- [x] write code\n- [ ] write tests\n\nGOAL COMPLETED: code written"),
        Reply.text(
            "- [x] write code\n- [x] write tests\n\n" + status_block("completed", "code and tests written")
        ),
    )
    proc, data = goal_json(goal_dir, pando_env, "code with tests")
    assert proc.returncode == 0, proc.stderr
    assert data["status"] == "completed"
    assert data["iteration"] == 2
    second = user_prompts(model_server)[1]
    assert "unchecked items" in second and "- [ ] write tests" in second
    assert "write tests" in second.split("## Next step", 1)[1]


@pytest.mark.slow
def test_text_and_stream_json_output(goal_dir, pando_env, model_server):
    model_server.script(Reply.text("All good.\nGOAL COMPLETED: nothing to do"))
    text = goal_cli(goal_dir, pando_env, "check things")
    assert text.returncode == 0, text.stderr
    assert text.stdout == "All good.\nGOAL COMPLETED: nothing to do\n"
    assert "Goal completed." in text.stderr and "Progress: nothing to do" in text.stderr

    model_server.script(
        Reply.text(status_block("in_progress", "half")), Reply.text("GOAL BLOCKED: need a key")
    )
    stream = goal_cli(goal_dir, pando_env, "-f", "stream-json", "--quiet", "two turns")
    assert stream.returncode == 1, stream.stderr
    events = [json.loads(line) for line in stream.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "goal_started" and kinds[-1] == "result"
    iterations = [e for e in events if e["type"] == "goal_iteration"]
    assert [(e["iteration"], e["status"]) for e in iterations] == [(1, "running"), (2, "blocked")]
    assert "text_delta" in kinds
    assert events[-1]["status"] == "blocked" and events[-1]["blocked_reason"] == "need a key"


def test_goal_usage_errors(goal_dir, pando_env):
    empty = goal_cli(goal_dir, pando_env, "   ")
    assert empty.returncode == 2 and "objective is empty" in empty.stderr
    bad_duration = goal_cli(goal_dir, pando_env, "--max-duration", "soon", "x")
    assert bad_duration.returncode == 2 and "duration" in bad_duration.stderr


# ------------------------------------------------------------------------------------- in process


def test_run_goal_in_process_persists_every_iteration(make_app, model_server):
    model_server.script(
        Reply.text(status_block("in_progress", "one", "two")),
        Reply.text(status_block("completed", "all done")),
    )
    app = make_app(model_server=model_server)
    app.permissions.yolo = True
    rows, progress = [], []
    app.events.subscribe("goal.updated", lambda event: rows.append(dict(event.payload)))
    result = run_goal(app, "count to two", max_iterations=4, max_duration=60, on_progress=progress.append)
    assert isinstance(result, GoalResult)
    assert result.as_json() == {
        "session_id": result.session_id,
        "objective": "count to two",
        "status": "completed",
        "iteration": 2,
        "max_iterations": 4,
        "max_duration_seconds": 60,
        "response": status_block("completed", "all done"),
        "progress": "all done",
    }
    # one row per change: the last iteration's row is not published a second time
    assert [(r["status"], r["iteration"], r["last_progress"]) for r in rows] == [
        ("running", 1, "one"),
        ("completed", 2, "all done"),
    ]
    assert [p.kind for p in progress] == [
        "started",
        "iteration_start",
        "iteration",
        "iteration_start",
        "iteration",
        "finished",
    ]
    assert result.exit_code == 0


# -------------------------------------------------------------------------------------- evaluator


def test_status_block_parsing_tolerates_markdown_and_ignores_placeholders():
    text = (
        "Done some work.\n\n**GOAL_STATUS:** in_progress\n- **Progress**: parser written\n"
        "NEXT STEP: `add tests`\nBLOCKED_REASON: <one line: what you need>\n"
        "```\nGOAL_STATUS: completed\n```\n"
    )
    assert parse_status_block(text) == {
        "status": "in_progress",
        "progress": "parser written",
        "next_step": "add tests",
    }


def test_evaluate_markers_and_heuristics():
    assert evaluate("GOAL_STATUS: completed\nPROGRESS: done").status == COMPLETED
    blocked = evaluate("Tried.\nGOAL BLOCKED: need an API key\n")
    assert (blocked.status, blocked.reason) == (BLOCKED, "need an API key")
    completed = evaluate("Refactor finished.\nGOAL COMPLETED: refactored the parser")
    assert (completed.status, completed.progress) == (COMPLETED, "refactored the parser")
    # the explicit status wins over marker words; quoted markers do not count
    assert evaluate("I will say `GOAL COMPLETED` later.\nGOAL_STATUS: in_progress").status == IN_PROGRESS
    assert evaluate("I will say `GOAL COMPLETED` when it is done.").status == IN_PROGRESS
    # Go heuristics when there is no marker at all
    assert evaluate("I cannot continue without the database password.").status == BLOCKED
    assert evaluate("Successfully implemented the feature; all tests pass.").status == COMPLETED
    assert evaluate("Successfully implemented part one; the remaining work is docs.").status == IN_PROGRESS
    assert evaluate("Still stuck on the same issue.").no_progress_phrase
    assert evaluate("Looked at it. Next step: run the tests").next_step == "run the tests"


def test_checklist_gates_completion():
    plan = parse_checklist("Plan:\n- [x] one\n- [ ] two\n* [~] three\n1. [X] four\n```\n- [ ] in code\n```")
    assert [(i.text, i.done, i.active) for i in plan] == [
        ("one", True, False),
        ("two", False, False),
        ("three", False, True),
        ("four", True, False),
    ]
    ev = evaluate("GOAL_STATUS: completed\nPROGRESS: most of it", plan=plan)
    assert ev.status == IN_PROGRESS
    assert ev.unchecked_claim == ["two", "three"]
    assert ev.next_step == "three"  # the in-progress item first
    done = parse_checklist("- [x] one\n- [x] two")
    assert evaluate("GOAL_STATUS: completed", plan=done).status == COMPLETED
    # all items checked (plan changed since the start) and nothing left: complete without a marker
    assert evaluate("Finished both.", plan=done, initial_todo_sig="").status == COMPLETED


def test_prompts_and_durations():
    first = build_initial_prompt("ship it", max_iterations=7, max_duration=90)
    assert "ship it" in first and "GOAL_STATUS:" in first and "GOAL COMPLETED" in first
    assert "(7)" in first and "(1m30s)" in first
    cont = build_continuation_prompt("ship it", 3, 7, "", "")
    assert "iteration 3 of 7" in cont and "None recorded yet." in cont
    assert "Take the next concrete action" in cont
    assert [parse_duration(x) for x in ("90", "90s", "1m30s", "1h", "500ms", 2)] == [90, 90, 90, 3600, 0.5, 2]
    with pytest.raises(ValueError):
        parse_duration("soon")
    assert [format_duration(x) for x in (1, 90, 3600)] == ["1s", "1m30s", "1h0m0s"]


def test_turn_error_blocks_and_resume_rules(make_app, model_server):
    model_server.script(Reply.error(400, "bad request body"))
    app = make_app(model_server=model_server)
    result = run_goal(app, "anything")
    assert (result.status, result.iteration, result.exit_code) == ("blocked", 0, 1)
    assert result.blocked_reason.startswith("agent error:") and "bad request body" in result.blocked_reason
    # a blocked goal can be resumed; the objective given with --resume becomes extra instructions
    model_server.script(Reply.text("GOAL COMPLETED: fixed"))
    resumed = run_goal(app, "use the other endpoint", resume_session=result.session_id)
    assert (resumed.session_id, resumed.status, resumed.iteration) == (result.session_id, "completed", 1)
    assert "use the other endpoint" in user_prompts(model_server)[-1]
    assert "iteration 1 of 20" in user_prompts(model_server)[-1]
    with pytest.raises(UsageError, match="already completed"):
        run_goal(app, "", resume_session=result.session_id[:8])
    with pytest.raises(NotFoundError):
        run_goal(app, "", resume_session="nope")
    with pytest.raises(UsageError, match="output-format"):
        run_goal_in_app(app, "x", output_format="xml")


def test_goal_options_from_arguments_config_and_defaults(make_app):
    app = make_app(config='[goal]\nmax_iterations = 7\nmax_duration = "90s"\nstall_iterations = 2\n')
    assert GoalOptions.resolve(app) == GoalOptions(7, 90.0, 2)
    assert GoalOptions.resolve(app, 3, "1h", 4) == GoalOptions(3, 3600.0, 4)
    with pytest.raises(UsageError, match="duration"):
        GoalOptions.resolve(app, max_duration="soon")


def test_goal_options_default_to_the_config_section_defaults(make_app):
    app = make_app()
    assert GoalOptions.resolve(app) == GoalOptions(20, 3600.0, 3) == GoalOptions()
    assert GoalOptions.resolve(app, 0, 0, 0) == GoalOptions()  # zero: not given
    bad = make_app(config="[goal]\nmax_iterations = 0\n")
    with pytest.raises(UsageError, match="max_iterations"):
        GoalOptions.resolve(bad)


def test_denied_tool_without_yolo_blocks_the_goal(make_app, model_server):
    model_server.script(
        Reply.tool("write", {"file_path": "x.txt", "content": "x"}), Reply.text("never asked")
    )
    app = make_app(model_server=model_server)
    result = run_goal(app, "write x.txt")
    assert (result.status, result.exit_code) == ("blocked", 1)
    assert result.blocked_reason.startswith("permission denied: write")
    assert "--yolo" in result.blocked_reason
    assert len(model_server.requests) == 1


def test_goal_with_a_custom_command_sends_its_rendered_prompt_with_its_model(goal_dir, pando_env, model_server):
    commands = goal_dir / ".pando" / "commands"
    commands.mkdir(parents=True)
    (commands / "fixbug.md").write_text(
        "---\nmodel: scripted/model-two\nallowed-tools: Bash(touch:*)\n---\n"
        "Fix issue $1 in the $2 module. Branch: !`echo branch-$1`\n"
    )
    model_server.script(
        Reply.tool("bash", {"command": "touch fixed.txt"}),  # allowed-tools holds for the goal's turns
        Reply.text("fixed it\n" + status_block("COMPLETE", "fixed issue 42")),
    )

    proc = goal_cli(goal_dir, pando_env, "-f", "json", "/fixbug", "42", "parser")  # no --yolo

    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == COMPLETED
    first = model_server.requests[0]
    assert first["model"] == "model-two" and model_server.requests[1]["model"] == "model-two"
    user = [m for m in first["messages"] if m["role"] == "user"][-1]["content"]
    assert "Fix issue 42 in the parser module. Branch: branch-42" in user
    assert "/fixbug" not in user
    assert (goal_dir / "fixed.txt").exists()
    _, title = goal_row(goal_dir, data["session_id"])
    assert "Fix issue 42" in title


def test_goal_image_goes_with_the_first_prompt_only(goal_dir, pando_env, model_server):
    import base64

    write_model_config(goal_dir, model_server.base_url, extra=VISION)
    (goal_dir / "mock.png").write_bytes(tiny_png())
    model_server.script(
        Reply.text(status_block("IN_PROGRESS", "read the mock-up", "build the page")),
        Reply.text(status_block("COMPLETE", "built the page")),
    )

    proc, data = goal_json(goal_dir, pando_env, "--image", "mock.png", "--image", "mock.png", "build the page in the mock-up")

    assert proc.returncode == 0, proc.stderr
    assert data["status"] == COMPLETED and len(model_server.requests) == 2
    expected = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
    assert image_urls(model_server.requests[0]) == [expected, expected]
    assert image_urls(model_server.requests[1]) == []  # the continuation prompt has none of its own


def test_goal_image_errors_are_usage_errors_before_anything_is_sent(goal_dir, pando_env, model_server):
    (goal_dir / "notes.txt").write_text("not an image")
    missing = goal_cli(goal_dir, pando_env, "--image", "nope.png", "do it")
    text_file = goal_cli(goal_dir, pando_env, "--image", "notes.txt", "do it")
    (goal_dir / "shot.png").write_bytes(tiny_png())
    no_vision = goal_cli(goal_dir, pando_env, "--image", "shot.png", "do it")

    for proc in (missing, text_file, no_vision):
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("pando: error: ") and "Traceback" not in proc.stderr
    assert "does not accept images" in no_vision.stderr
    assert model_server.requests == []
