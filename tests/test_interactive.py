"""The interactive session (bare ``pando``) driven through a real pseudo-terminal with pexpect.

Every test runs the real ``python -m pando_core --plugins none`` in a pty (TERM=xterm, 100x40)
against a ScriptedModelServer; no fixed sleeps, only ``expect`` with timeouts.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pexpect
import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

PROMPT = "pando \\(primary\\) › "
TIMEOUT = 20


@pytest.fixture
def term(pando_env, pando_workdir, model_server):
    """spawn() -> a pexpect child at its first prompt; killed at teardown if still alive."""
    write_model_config(pando_workdir, model_server.base_url)
    env = dict(
        pando_env,
        TERM="xterm",
        COLUMNS="100",
        LINES="40",
        PROMPT_TOOLKIT_NO_CPR="1",
        PYTHONIOENCODING="utf-8",
    )
    children: list[pexpect.spawn] = []

    def spawn() -> pexpect.spawn:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "pando_core", "--plugins", "none"],
            cwd=str(pando_workdir),
            env=env,
            encoding="utf-8",
            timeout=TIMEOUT,
            dimensions=(40, 100),
        )
        children.append(child)
        child.expect(PROMPT)
        return child

    yield spawn
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def quit_with_ctrl_d(child: pexpect.spawn) -> int:
    child.send("\x04")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def db_rows(workdir, query, *args):
    db = sqlite3.connect(f"file:{workdir}/.pando/pando.db?mode=ro", uri=True)
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def test_prompt_is_answered_with_markdown_and_ctrl_d_exits_0(term, model_server, pando_workdir):
    model_server.add_rule(contains="hello", response=Reply.text("Hi there, **friend**.\n\n- alpha\n- beta\n"))
    child = term()
    child.send("hello pando\r")
    child.expect("Hi there")
    child.expect("alpha")
    child.expect(PROMPT)
    assert quit_with_ctrl_d(child) == 0
    (count,) = db_rows(pando_workdir, "SELECT COUNT(*) FROM sessions WHERE message_count > 0")[0]
    assert count == 1
    assert (pando_workdir / ".pando" / "history").read_text(encoding="utf-8").count("hello pando") == 1


def test_permission_prompt_allow_once_writes_the_file(term, model_server, pando_workdir):
    model_server.script(
        Reply.tool("write", {"file_path": "hello.txt", "content": "hi there\n"}),
        Reply.text("I wrote hello.txt for you."),
    )
    child = term()
    child.send("make the greeting file\r")
    child.expect("hello.txt")  # the tool line: • write  hello.txt
    child.expect("Allow write\\?")
    child.expect("Deny")
    child.send("\r")  # the first choice, "Allow once"
    child.expect("✓")
    child.expect("I wrote hello.txt for you")
    child.expect(PROMPT)
    assert (pando_workdir / "hello.txt").read_text(encoding="utf-8") == "hi there\n"
    assert quit_with_ctrl_d(child) == 0


def test_slash_commands_status_and_help(term):
    child = term()
    child.send("/status\r")
    child.expect("role")
    child.expect("primary")
    child.expect("epoch")
    child.expect("cost")
    child.expect(PROMPT)
    child.send("/help\r")
    for name in ("/new", "/sessions", "/model", "/compact", "/status", "/exit", "Esc Enter"):
        child.expect_exact(name)
    child.expect(PROMPT)
    child.send("/nope\r")
    child.expect("unknown command /nope")
    child.expect(PROMPT)
    assert quit_with_ctrl_d(child) == 0


def test_ctrl_c_cancels_a_streaming_answer_and_keeps_the_partial_text(term, model_server, pando_workdir):
    model_server.add_rule(
        contains="long story", response=Reply.text("word " * 400, chunk_delay=0.05, chunk_size=5)
    )
    child = term()
    child.send("tell me a long story\r")
    child.expect("word")  # streaming has started
    child.send("\x03")
    child.expect("cancelled")
    child.expect(PROMPT)
    assert quit_with_ctrl_d(child) == 0
    rows = db_rows(pando_workdir, "SELECT parts FROM messages WHERE role = 'assistant' ORDER BY seq")
    assert rows, "the partial answer was not stored"
    parts = json.loads(rows[-1][0])
    finish = [p["data"] for p in parts if p["type"] == "finish"]
    text = "".join(p["data"]["text"] for p in parts if p["type"] == "text")
    assert finish and finish[0]["reason"] == "canceled"
    assert text.startswith("word") and len(text) < len("word " * 400)


def test_ctrl_c_twice_at_the_prompt_quits(term):
    child = term()
    child.send("\x03")
    child.expect("Ctrl-C again")
    child.send("\x03")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_new_starts_another_session(term, pando_workdir):
    child = term()
    child.send("first question\r")
    child.expect("echo: first question")
    child.expect(PROMPT)
    child.send("/new\r")
    child.expect("new session")
    child.expect(PROMPT)
    child.send("second question\r")
    child.expect("echo: second question")
    child.expect(PROMPT)
    assert quit_with_ctrl_d(child) == 0
    rows = db_rows(pando_workdir, "SELECT id FROM sessions WHERE message_count > 0")
    assert len(rows) == 2
    firsts = {
        json.loads(parts)[0]["data"]["text"]
        for (parts,) in db_rows(pando_workdir, "SELECT parts FROM messages WHERE role = 'user'")
    }
    assert firsts == {"first question", "second question"}


def _run_piped(workdir, env, stdin_text):
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none"],
        cwd=workdir,
        env=env,
        input=stdin_text,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_piped_stdin_runs_one_prompt_or_prints_help(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    result = _run_piped(pando_workdir, pando_env, "hello from a pipe\n")
    assert result.returncode == 0, result.stderr
    assert "echo: hello from a pipe" in result.stdout
    empty = _run_piped(pando_workdir, pando_env, "")
    assert empty.returncode == 0, empty.stderr
    assert "Usage" in empty.stdout
