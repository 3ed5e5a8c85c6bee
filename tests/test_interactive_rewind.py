"""/undo, /rewind, /plan and the live todo list in the interactive session, through a real pty
(pexpect) against the scripted model server, in a real git repository."""

from __future__ import annotations

import subprocess
import sys

import pexpect
import pytest

from pando_core.frontends.session_commands import ACCEPTED_PROMPT
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.test_interactive import PROMPT, TIMEOUT, db_rows, quit_with_ctrl_d

DOWN = "\x1b[B"


@pytest.fixture
def yolo_term(pando_env, pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    subprocess.run(["git", "init", "-q", str(pando_workdir)], check=True)
    env = dict(pando_env, TERM="xterm", COLUMNS="100", LINES="40", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pando_core", "--plugins", "none", "--yolo"],
        cwd=str(pando_workdir),
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 100),
    )
    child.expect(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def user_texts(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


def test_undo_then_rewind_through_the_picker(yolo_term, model_server, pando_workdir):
    child = yolo_term
    todos = [{"id": "1", "content": "change a.txt twice", "status": "in_progress"}]
    model_server.script(Reply.tool("bash", {"command": "echo one > a.txt"}), Reply.text("did one"))
    child.send("first change\r")
    child.expect("did one")
    child.expect(PROMPT)
    assert model_server.wait_for_requests(3, timeout=30)  # the session's title, asked after the first turn
    model_server.script(
        Reply.tools(
            {"name": "bash", "arguments": {"command": "echo two > a.txt"}},
            {"name": "todo_write", "arguments": {"todos": todos}},
        ),
        Reply.text("did two"),
    )
    child.send("second change\r")
    child.expect("☰ todo")  # the todo list, shown when the model writes it
    child.expect("change a.txt twice")
    child.expect("did two")
    child.expect(PROMPT)
    assert (pando_workdir / "a.txt").read_text() == "two\n"

    child.send("/undo\r")
    child.expect("back to before turn 2")
    child.expect(PROMPT)
    assert (pando_workdir / "a.txt").read_text() == "one\n"

    child.send("/rewind\r")
    child.expect("Rewind to before which turn")
    child.expect("first change")
    child.send(DOWN + "\r")  # newest first: the second entry is turn 1
    child.expect("What goes back")
    child.send("\r")  # files and conversation
    child.expect("back to before turn 1")
    child.expect("the rewound prompt was: first change")
    child.expect(PROMPT)
    assert not (pando_workdir / "a.txt").exists()
    assert db_rows(pando_workdir, "SELECT COUNT(*) FROM messages")[0][0] == 0
    assert quit_with_ctrl_d(child) == 0


def test_plan_mode_keep_planning_then_accept_unlocks_the_tools(yolo_term, model_server, pando_workdir):
    child = yolo_term
    model_server.script(Reply.tool("present_plan", {"plan": "- step one\n- step two"}))
    child.send("/plan\r")
    child.expect("plan mode")
    child.expect(PROMPT)
    child.send("make a plan\r")
    child.expect("step two")
    child.expect("Accept this plan")
    assert model_server.wait_for_requests(2, timeout=30)  # the session's title, asked after the first turn
    model_server.script(
        Reply.tool("present_plan", {"plan": "- the only step"}),
        Reply.tool("write", {"file_path": "done.txt", "content": "ok\n"}),
        Reply.text("carried out"),
    )
    child.send(DOWN + "\r")  # no, keep planning
    child.expect("still planning")
    child.expect(PROMPT)
    child.send("shorter please\r")
    child.expect("the only step")
    child.expect("Accept this plan")
    child.send("\r")  # yes
    child.expect("plan accepted")
    child.expect("carried out")
    child.expect(PROMPT)
    assert (pando_workdir / "done.txt").read_text() == "ok\n"

    requests = [r for r in model_server.requests if r.get("tools")]  # not the title's
    planning, _, accepted, _ = requests
    assert "write" not in {t["function"]["name"] for t in planning["tools"]}
    assert "write" in {t["function"]["name"] for t in accepted["tools"]}
    assert user_texts(accepted)[-1] == ACCEPTED_PROMPT
    (value,) = db_rows(pando_workdir, "SELECT value FROM session_state WHERE key = 'plan'")[0]
    assert '"status": "accepted"' in value and "the only step" in value
    assert quit_with_ctrl_d(child) == 0


def test_undo_asks_before_overwriting_a_file_changed_outside_the_agent(yolo_term, model_server, pando_workdir):
    child = yolo_term
    model_server.script(Reply.tool("bash", {"command": "echo agent > a.txt"}), Reply.text("wrote a.txt"))
    child.send("write a.txt\r")
    child.expect("wrote a.txt")
    child.expect(PROMPT)
    (pando_workdir / "a.txt").write_text("mine\n")  # changed outside the agent after the turn

    child.send("/undo\r")
    child.expect("Changed outside the agent since: a.txt")
    child.send("n")
    child.expect("nothing was changed")
    child.expect(PROMPT)
    assert (pando_workdir / "a.txt").read_text() == "mine\n"

    child.send("/undo\r")
    child.expect("Overwrite")
    child.send("y")
    child.expect("back to before turn 1")
    child.expect(PROMPT)
    assert not (pando_workdir / "a.txt").exists()
    assert quit_with_ctrl_d(child) == 0


def test_undo_of_a_turn_whose_checkpoint_was_pruned_says_so_and_what_is_left(pando_env, pando_workdir, model_server):
    # every checkpoint older than ~90 ms is pruned when a turn records one: the turn's own, here
    write_model_config(pando_workdir, model_server.base_url, extra="\n[snapshots]\ncheckpoint_max_age_days = 0.000001\n")
    subprocess.run(["git", "init", "-q", str(pando_workdir)], check=True)
    env = dict(pando_env, TERM="xterm", COLUMNS="200", LINES="40", PROMPT_TOOLKIT_NO_CPR="1", PYTHONIOENCODING="utf-8")
    model_server.script(Reply.tool("bash", {"command": "sleep 0.3; echo one > a.txt"}), Reply.text("did one"))
    child = pexpect.spawn(sys.executable, ["-m", "pando_core", "--plugins", "none", "--yolo"], cwd=str(pando_workdir),
                          env=env, encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 200))
    try:
        child.expect(PROMPT)
        child.send("first change\r")
        child.expect("did one")
        child.expect(PROMPT)
        session = db_rows(pando_workdir, "SELECT id FROM sessions")[0][0]
        listed = subprocess.run([sys.executable, "-m", "pando_core", "--plugins", "none", "rewind", session, "--list"],
                                cwd=pando_workdir, env=pando_env, capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == ["1", "pruned", "first", "change"]
        refused = subprocess.run([sys.executable, "-m", "pando_core", "--plugins", "none", "rewind", session, "--files-only"],
                                 cwd=pando_workdir, env=pando_env, capture_output=True, text=True, timeout=120,
                                 stdin=subprocess.DEVNULL)
        assert refused.returncode == 2
        assert "the checkpoint of turn 1 was pruned" in refused.stderr
        assert "the files of turn 1 and before cannot be put back; use --chat-only" in refused.stderr
        assert "after turn 1" not in refused.stderr  # there is no later turn to offer

        child.send("/undo\r")
        child.expect_exact("nothing undone: the checkpoint of turn 1, the last turn that changed files, was pruned")
        child.expect_exact("([snapshots] keep_checkpoints = 50, checkpoint_max_age_days = 1e-06)")
        child.expect_exact("/rewind 1, then \"Conversation only\"")
        child.expect_exact(f"pando rewind {session} 1 --chat-only")
        child.expect(PROMPT)
        assert (pando_workdir / "a.txt").read_text() == "one\n"  # nothing was put back in part

        child.send("/rewind 1\r")
        child.expect("What goes back")
        child.send(DOWN + "\r")  # conversation only: what the message offers
        child.expect("back to before turn 1")
        child.expect(PROMPT)
        assert (pando_workdir / "a.txt").read_text() == "one\n"
        assert db_rows(pando_workdir, "SELECT COUNT(*) FROM messages")[0][0] == 0
        assert quit_with_ctrl_d(child) == 0
    finally:
        if child.isalive():
            child.terminate(force=True)
