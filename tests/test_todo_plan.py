"""The todo list and plan mode end to end: real `pando run` / `pando goal` processes against the
scripted model server; what the model was offered and received is read from the server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

ITEMS = [
    {"id": "1", "content": "write the parser", "status": "completed"},
    {"id": "2", "content": "write its tests", "status": "in_progress"},
]


def pando(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def state(workdir: Path, session: str, key: str):
    db = sqlite3.connect(f"file:{workdir / '.pando' / 'pando.db'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM session_state WHERE session_id = ? AND key = ?", (session, key)).fetchone()
    finally:
        db.close()
    return None if row is None else json.loads(row[0])


def tool_results(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def offered_tools(request: dict) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools", [])}


@pytest.fixture
def workdir(pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url)
    return pando_workdir


def test_todo_write_is_stored_streamed_and_read_back(workdir, pando_env, model_server):
    model_server.script(Reply.tool("todo_write", {"todos": ITEMS}), Reply.text("listed"))
    result = pando(workdir, pando_env, "run", "-f", "stream-json", "plan the work")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    todo_events = [e for e in events if e["type"] == "todos"]
    assert [e["todos"] for e in todo_events] == [ITEMS]
    session = events[-1]["session_id"]
    assert state(workdir, session, "todos") == ITEMS

    model_server.script(Reply.tool("todo_read", {}), Reply.text("read"))
    again = pando(workdir, pando_env, "run", "-f", "json", "--session", session, "where are we")
    assert again.returncode == 0, again.stderr
    shown = tool_results(model_server.requests[-1])[-1]
    assert "- [x] write the parser" in shown and "- [~] write its tests" in shown


def test_a_bad_todo_list_is_an_error_for_the_model_and_stores_nothing(workdir, pando_env, model_server):
    bad = [{"id": "1", "content": "x", "status": "someday"}]
    model_server.script(Reply.tool("todo_write", {"todos": bad}), Reply.text("oops"))
    result = pando(workdir, pando_env, "run", "-f", "json", "plan")
    data = json.loads(result.stdout)
    assert data["tool_calls"][0]["is_error"] is True
    assert "status must be one of pending, in_progress, completed" in tool_results(model_server.requests[-1])[0]
    assert state(workdir, data["session_id"], "todos") is None


def test_goal_is_not_complete_while_todo_items_are_open(workdir, pando_env, model_server):
    done = [dict(item, status="completed") for item in ITEMS]
    model_server.script(
        Reply.tool("todo_write", {"todos": ITEMS}),
        Reply.text("GOAL_STATUS: completed\nPROGRESS: parser written"),
        Reply.tool("todo_write", {"todos": done}),
        Reply.text("GOAL_STATUS: completed\nPROGRESS: parser and tests written"),
    )
    result = pando(workdir, pando_env, "goal", "--yolo", "-f", "json", "a parser with tests")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "completed" and data["iteration"] == 2
    second_prompt = [m for m in model_server.requests[2]["messages"] if m["role"] == "user"][-1]["content"]
    assert "unchecked items" in second_prompt and "write its tests" in second_prompt


def test_run_plan_offers_only_read_only_tools_and_ends_with_the_plan(workdir, pando_env, model_server):
    (workdir / "app.py").write_text("print('hi')\n")
    plan_text = "1. Rename the greeting in app.py\n2. Run it"
    model_server.script(
        Reply.tool("write", {"file_path": "made.txt", "content": "x"}),
        Reply.tool("bash", {"command": "touch made.txt"}),
        Reply.tool("bash", {"command": "cat app.py"}),
        Reply.tool("present_plan", {"plan": plan_text}),
    )
    result = pando(workdir, pando_env, "run", "--plan", "--yolo", "-f", "json", "rename the greeting")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["plan"] == plan_text and data["status"] == "success"
    assert not (workdir / "made.txt").exists()
    first = model_server.requests[0]
    assert {"view", "grep", "bash", "todo_write", "present_plan"} <= offered_tools(first)
    assert not {"write", "edit", "patch"} & offered_tools(first)
    assert "plan mode" in first["messages"][0]["content"].lower()
    results = tool_results(model_server.requests[3])
    assert "plan mode" in results[0] and "plan mode" in results[1]
    assert "print('hi')" in results[2]
    assert len(model_server.requests) == 4  # the run ended with the presented plan, asking nothing more
    session = data["session_id"]
    assert state(workdir, session, "plan")["status"] == "presented"
    assert state(workdir, session, "plan")["plan"] == plan_text

    # going on without --plan accepts the plan: every tool is back
    model_server.script(Reply.tool("write", {"file_path": "made.txt", "content": "x"}), Reply.text("done"))
    go = pando(workdir, pando_env, "run", "--yolo", "-f", "json", "--session", session, "go ahead")
    assert go.returncode == 0, go.stderr
    assert (workdir / "made.txt").exists(), go.stdout
    assert (workdir / "made.txt").read_text() == "x"
    assert "write" in offered_tools(model_server.requests[-1])
    assert "present_plan" not in offered_tools(model_server.requests[-1])
    assert state(workdir, session, "plan") == dict(state(workdir, session, "plan"), status="accepted", plan=plan_text)


def test_run_plan_prints_the_plan_as_text_and_streams_it(workdir, pando_env, model_server):
    model_server.script(Reply.tool("present_plan", {"plan": "## Plan\n- step one"}))
    result = pando(workdir, pando_env, "run", "--plan", "make a plan")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("## Plan\n- step one")

    model_server.script(Reply.tool("present_plan", {"plan": "- streamed"}))
    streamed = pando(workdir, pando_env, "run", "--plan", "-f", "stream-json", "make another")
    events = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert {"type": "plan", "plan": "- streamed", "session_id": events[-1]["session_id"]} in events
    assert events[-1]["type"] == "result" and events[-1]["plan"] == "- streamed"


def test_plan_mode_without_a_plan_keeps_planning(workdir, pando_env, model_server):
    model_server.script(Reply.text("I need to look around more first."))
    result = pando(workdir, pando_env, "run", "--plan", "-f", "json", "plan something")
    data = json.loads(result.stdout)
    assert "plan" not in data
    assert state(workdir, data["session_id"], "plan")["status"] == "planning"


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([{"id": "1", "content": "a", "status": "pending"}, {"id": "1", "content": "b", "status": "pending"}], "used twice"),
        ([{"id": "1", "content": "  ", "status": "pending"}], "content is empty"),
        ("not a list", "must be a list"),
        ([{"id": "1", "content": "a", "status": "done"}], "status must be one of"),
    ],
)
def test_todo_list_validation(items, error):
    from pando_core.errors import ValidationError
    from pando_core.services.todos import validate

    with pytest.raises(ValidationError, match=error):
        validate(items)


def test_goal_plan_plans_first_then_carries_the_plan_out(workdir, pando_env, model_server):
    model_server.script(
        Reply.tool("write", {"file_path": "early.txt", "content": "x"}),
        Reply.tool("present_plan", {"plan": "- write out.txt"}),
        Reply.tool("write", {"file_path": "out.txt", "content": "done\n"}),
        Reply.text("GOAL_STATUS: completed\nPROGRESS: out.txt written"),
    )
    result = pando(workdir, pando_env, "goal", "--plan", "--yolo", "-f", "json", "write out.txt")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "completed" and data["iteration"] == 2
    assert not (workdir / "early.txt").exists()
    assert (workdir / "out.txt").read_text() == "done\n"
    first, _, carried, _ = model_server.requests
    assert "write" not in offered_tools(first) and "write" in offered_tools(carried)
    last_prompt = [m for m in carried["messages"] if m["role"] == "user"][-1]["content"]
    assert last_prompt.startswith("Your plan is accepted") and "- write out.txt" in last_prompt
    assert state(workdir, data["session_id"], "plan")["status"] == "accepted"
