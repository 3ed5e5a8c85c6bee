"""The interactive session (bare ``pando``) driven through a real pseudo-terminal with pexpect.

Every test runs the real ``python -m pando_core --plugins none`` in a pty (TERM=xterm, 100x40)
against a ScriptedModelServer; no fixed sleeps, only ``expect`` with timeouts.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys

import pexpect
import pytest
from prompt_toolkit import PromptSession
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from pando_core import hookimpl
from pando_core.agent.tools.base import PermissionRequest
from pando_core.frontends.interactive import InteractiveSession
from pando_core.frontends.prompt_input import _key_bindings
from pando_core.frontends.turn_view import live_tail, tool_summary
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

PROMPT = "pando \\(primary\\) › "
SECONDARY_PROMPT = "pando \\(secondary\\) › "
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

    def spawn(role: str = "primary") -> pexpect.spawn:
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
        child.expect(PROMPT if role == "primary" else SECONDARY_PROMPT)
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_slash_commands_status_help_and_ctrl_c_twice_quits(term):
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
    child.send("\x03")  # Ctrl-C twice at the prompt quits
    child.expect("Ctrl-C again")
    child.send("\x03")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


@pytest.mark.slow
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


@pytest.mark.slow
def test_new_starts_another_session_and_multiline_input(term, pando_workdir):
    child = term()
    child.send("first\\\rquestion\r")  # a trailing backslash + Enter inserts a new line
    child.expect("echo: first")
    child.expect(PROMPT)
    child.send("/new\r")
    child.expect("new session")
    child.expect(PROMPT)
    child.send("second\x1b\rquestion\r")  # so does Esc Enter
    child.expect("echo: second")
    child.expect(PROMPT)
    assert quit_with_ctrl_d(child) == 0
    rows = db_rows(pando_workdir, "SELECT id FROM sessions WHERE message_count > 0")
    assert len(rows) == 2
    firsts = {
        json.loads(parts)[0]["data"]["text"]
        for (parts,) in db_rows(pando_workdir, "SELECT parts FROM messages WHERE role = 'user'")
    }
    assert firsts == {"first\nquestion", "second\nquestion"}


@pytest.mark.slow
def test_failover_is_announced_and_the_secondary_carries_on(term):
    primary = term()
    secondary = term(role="secondary")
    secondary.send("/status\r")
    secondary.expect("role")
    secondary.expect("secondary")
    secondary.expect(SECONDARY_PROMPT)
    os.kill(primary.pid, signal.SIGKILL)
    secondary.expect("⚡ this instance is now the primary \\(epoch 2\\)")
    secondary.expect(PROMPT)  # the prompt shows the new role
    secondary.send("still here?\r")
    secondary.expect("echo: still here\\?")
    secondary.expect(PROMPT)
    assert quit_with_ctrl_d(secondary) == 0


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


@pytest.mark.slow
def test_piped_stdin_runs_one_prompt_or_prints_help(model_server, pando_workdir, pando_env):
    write_model_config(pando_workdir, model_server.base_url)
    result = _run_piped(pando_workdir, pando_env, "hello from a pipe\n")
    assert result.returncode == 0, result.stderr
    assert "echo: hello from a pipe" in result.stdout
    empty = _run_piped(pando_workdir, pando_env, "")
    assert empty.returncode == 0, empty.stderr
    assert "Usage" in empty.stdout


# ------------------------------------------------------------------ in-process pieces (no terminal)


def test_enter_sends_while_backslash_enter_and_esc_enter_insert_newlines():
    with create_pipe_input() as pipe:
        session = PromptSession(
            multiline=True, key_bindings=_key_bindings(), input=pipe, output=DummyOutput()
        )
        pipe.send_text("one\\\rtwo\x1b\rthree\r")
        assert session.prompt() == "one\ntwo\nthree"


@pytest.mark.parametrize(
    ("keys", "answer"),
    [
        ("\r", "once"),
        ("\x1b[B\r", "session"),
        ("\x1b[B\x1b[B\r", "always"),
        ("\x1b[A\r", "deny"),
        ("\x03", "deny"),
    ],
)
def test_permission_asker_maps_the_choices(keys, answer):
    out = io.StringIO()
    with create_pipe_input() as pipe:
        ui = InteractiveSession(Console(file=out, width=100), pt_input=pipe, pt_output=DummyOutput())
        pipe.send_text(keys)
        request = PermissionRequest("bash", "execute", "ls -la", params={"command": "ls -la"})
        assert asyncio.run(ui.ask_permission(request)) == answer
    assert "bash wants to execute: ls -la" in out.getvalue()


def _greet(app, args):
    """Say hello to someone."""
    return f"hello **{args}** from {app.role}"


async def _shout(app, args):
    return args.upper()


class SlashCommandsPlugin:
    """A real plugin implementing the ``pando_slash_commands`` hook (validated against its spec)."""

    def __init__(self) -> None:
        self.seen_apps: list = []

    @hookimpl
    def pando_slash_commands(self, app):
        self.seen_apps.append(app)
        return {"/greet": _greet, "shout": _shout, "/status": _greet}


def test_plugin_slash_commands_run_and_are_listed_in_help(make_app):
    plugin = SlashCommandsPlugin()
    app = make_app(extra_plugins={"slashes": plugin})
    out = io.StringIO()
    ui = InteractiveSession(Console(file=out, width=100))
    ui.attach(app)

    async def scenario():
        ui.plugin_commands = await ui._load_plugin_commands()
        assert sorted(ui.plugin_commands) == ["/greet", "/shout"]  # a built-in is never shadowed
        assert await ui._command("/greet world")
        assert await ui._command("/shout quiet")
        assert await ui._command("/help")
        assert not await ui._command("/exit")

    asyncio.run(scenario())
    assert plugin.seen_apps == [app]  # the hook was called through the real plugin manager, with the app
    text = out.getvalue()
    assert "plugin slash commands failed" not in text
    assert "hello world from primary" in text
    assert "QUIET" in text
    assert "/greet" in text and "Say hello to someone." in text and "Plugin commands" in text


def test_tool_summary_and_live_tail():
    assert tool_summary('{"command": "ls -la"}') == "ls -la"
    assert tool_summary({"file_path": "src/app.py", "content": "x"}) == "src/app.py"
    assert tool_summary('{"pattern": "TODO", "path": "src"}') == "TODO in src"
    assert tool_summary("not json") == "not json"
    assert tool_summary("{}") == ""
    text = "intro\n\n```python\n" + "x = 1\n" * 2000
    tail = live_tail(text, max_chars=600)
    assert tail.startswith("```python\n") and len(tail) < len(text)
    assert live_tail("short") == "short"
