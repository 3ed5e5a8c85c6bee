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
