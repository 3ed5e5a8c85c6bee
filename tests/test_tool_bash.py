"""The bash tool: real subprocesses in tmp_path."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from pando_core.agent.tools.base import PermissionDenied, ToolContext, ToolError
from pando_core.agent.tools.bash import BashTool, banned_word
from tests.support.doubles import Asker


def make_ctx(tmp_path: Path, asker: Asker | None = None, session: str | None = None, **kw) -> ToolContext:
    return ToolContext(workdir=tmp_path, session_id=session or uuid.uuid4().hex, permissions=asker, **kw)


def run(tool: BashTool, ctx: ToolContext, **args):
    return asyncio.run(tool.run(args, ctx))


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")  # a zombie is dead, just not reaped yet
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def test_echo_is_safe_and_needs_no_permission(tmp_path):
    asker = Asker()
    result = run(BashTool(), make_ctx(tmp_path, asker), command="echo hi")
    assert result.content == "hi"
    assert not result.is_error
    assert result.metadata["exit_code"] == 0
    assert asker.requests == []


def test_cwd_persists_between_calls_and_instances(tmp_path):
    (tmp_path / "sub").mkdir()
    session = uuid.uuid4().hex
    tool = BashTool()
    assert run(tool, make_ctx(tmp_path, session=session), command="cd sub").content == "no output"
    assert run(tool, make_ctx(tmp_path, session=session), command="pwd").content == str(
        (tmp_path / "sub").resolve()
    )
    # a fresh tool object (the agent may rebuild tools every turn) still knows the directory
    assert run(BashTool(), make_ctx(tmp_path, session=session), command="pwd").content.endswith("/sub")
    # another session starts in the working directory
    assert run(tool, make_ctx(tmp_path), command="pwd").content == str(tmp_path.resolve())


def test_exported_variables_persist(tmp_path):
    session = uuid.uuid4().hex
    tool = BashTool()
    run(tool, make_ctx(tmp_path, session=session), command="export PANDO_TEST_VAR=hello")
    assert run(tool, make_ctx(tmp_path, session=session), command="echo $PANDO_TEST_VAR").content == "hello"


def test_removed_directory_falls_back_to_workdir(tmp_path):
    (tmp_path / "gone").mkdir()
    session = uuid.uuid4().hex
    tool = BashTool()
    run(tool, make_ctx(tmp_path, session=session), command="cd gone")
    (tmp_path / "gone").rmdir()
    result = run(tool, make_ctx(tmp_path, session=session), command="pwd")
    assert "no longer exists" in result.content
    assert result.content.endswith(str(tmp_path.resolve()))


def test_exit_code_stderr_and_no_output(tmp_path):
    tool = BashTool()
    ctx = make_ctx(tmp_path)
    result = run(tool, ctx, command="false")
    assert result.content == "Exit code 1"
    assert result.metadata["exit_code"] == 1
    result = run(tool, ctx, command="echo out; echo err >&2; exit 3")
    assert result.content == "out\nerr\nExit code 3"
    assert run(tool, ctx, command="true").content == "no output"


def test_stdin_is_devnull_and_git_editor(tmp_path):
    tool = BashTool()
    ctx = make_ctx(tmp_path)
    started = time.monotonic()
    assert run(tool, ctx, command="cat").content == "no output"
    assert time.monotonic() - started < 5
    assert run(tool, ctx, command="echo $GIT_EDITOR").content == "true"


def test_timeout_kills_command_and_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()
    result = run(
        BashTool(),
        make_ctx(tmp_path),
        command=f"sleep 30 & echo $! > {pid_file}; wait",
        timeout=300,
    )
    elapsed = time.monotonic() - started
    assert "Command was aborted before completion" in result.content
    assert result.metadata["timed_out"] is True
    assert elapsed < 5
    child = int(pid_file.read_text().strip())
    assert wait_until(lambda: process_gone(child)), "the background child survived the timeout"


def test_cancel_event_aborts(tmp_path):
    marker = tmp_path / "started"

    async def scenario():
        event = asyncio.Event()
        ctx = make_ctx(tmp_path, cancel_event=event)
        task = asyncio.create_task(BashTool().run({"command": f"touch {marker}; sleep 30"}, ctx))
        deadline = time.monotonic() + 5
        while not marker.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        started_before_cancel = marker.exists()
        event.set()
        return started_before_cancel, await asyncio.wait_for(task, 5)

    started = time.monotonic()
    started_before_cancel, result = asyncio.run(scenario())
    assert started_before_cancel, "the command never started, so the cancel did not abort a running command"
    assert "Command was aborted before completion" in result.content
    assert result.metadata["cancelled"] is True
    assert time.monotonic() - started < 5


def test_background_job_does_not_block(tmp_path):
    started = time.monotonic()
    result = run(BashTool(), make_ctx(tmp_path), command="sleep 30 >/dev/null 2>&1 & echo $!")
    assert time.monotonic() - started < 5
    pid = int(result.content.strip())
    os.kill(pid, signal.SIGKILL)


def test_output_is_capped_keeping_start_and_end(tmp_path):
    result = run(BashTool(), make_ctx(tmp_path), command="seq 1 100000")
    assert result.metadata["truncated"] is True
    assert "lines truncated]" in result.content
    assert result.content.startswith("1\n2\n3\n")
    assert result.content.endswith("99999\n100000")
    assert len(result.content) < 30_100
    assert result.metadata["total_lines"] == 100000


def test_head_and_tail_limits(tmp_path):
    tool = BashTool()
    ctx = make_ctx(tmp_path)
    tail = run(tool, ctx, command="seq 1 100", tail_lines=3).content
    assert tail.endswith("98\n99\n100")
    assert "97" not in tail.split("\n")
    head = run(tool, ctx, command="seq 1 100", head_limit=2).content
    assert head.startswith("1\n2\n")
    assert "3" not in head.split("\n")


def test_banned_command_is_refused_and_not_run(tmp_path):
    tool = BashTool()
    with pytest.raises(ToolError, match="not allowed"):
        run(tool, make_ctx(tmp_path), command=f"touch {tmp_path / 'ran'} && curl http://example.com")
    assert not (tmp_path / "ran").exists()
    with pytest.raises(ToolError, match="not allowed"):
        run(tool, make_ctx(tmp_path), command="ls | WGET -q x")


def test_banned_list_is_configurable():
    assert banned_word("curl x", BashTool(allowed=["curl"]).banned) is None
    assert banned_word("wget x", BashTool(allowed=["curl"]).banned) == "wget"
    custom = BashTool(banned=["ls"])
    assert banned_word("ls -la", custom.banned) == "ls"
    assert banned_word("curl x", custom.banned) is None


def test_allowed_command_runs(tmp_path):
    tool = BashTool(banned=["curl"], allowed=["curl"])
    result = run(tool, make_ctx(tmp_path), command="echo curl is allowed")
    assert result.content == "curl is allowed"


@pytest.mark.parametrize(
    "command",
    [
        "sudo curl x",
        "FOO=1 /usr/bin/curl x",
        "bash -c 'wget y'",
        "echo $(curl q)",
        "timeout 5 nc host 80",
        "ls\ntelnet host",
    ],
)
def test_banned_detection_variants(command):
    assert banned_word(command, BashTool().banned) is not None


def test_unsafe_command_asks_execute_permission(tmp_path):
    asker = Asker(True)
    tool = BashTool()
    ctx = make_ctx(tmp_path, asker)
    run(tool, ctx, command="ls")
    assert asker.requests == []
    result = run(tool, ctx, command=f"ls; touch {tmp_path / 'made'}")
    assert (tmp_path / "made").exists()
    assert not result.is_error
    assert [r.action for r in asker.requests] == ["execute"]
    assert asker.requests[0].tool_name == "bash"
    assert "touch" in asker.requests[0].description


def test_permission_denied_propagates_and_nothing_runs(tmp_path):
    asker = Asker(False)
    with pytest.raises(PermissionDenied):
        run(BashTool(), make_ctx(tmp_path, asker), command=f"touch {tmp_path / 'nope'}")
    assert not (tmp_path / "nope").exists()
    assert len(asker.requests) == 1
