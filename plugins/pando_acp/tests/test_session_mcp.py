"""The MCP servers an editor gives in session/new and session/load: started for that session, their
tools offered to its turns, stopped with pando acp. The server is the real ``mcp-server-time``
(PyPI, installed with the test dependencies); pando-mcp is the real plugin."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import acp
import pytest
from acp.schema import EnvVariable, McpServerStdio
from pando_acp.testing import EditorClient

from pando_core.testing.model_server import Reply

BESIDE = Path(sys.executable).parent / "mcp-server-time"
TIME_SERVER = str(BESIDE) if BESIDE.exists() else shutil.which("mcp-server-time")  # .ci/run installs it


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 150))


@pytest.fixture
def time_server() -> tuple[McpServerStdio, str]:
    """The editor's entry for mcp-server-time, with a marker in its environment to find its process."""
    if not TIME_SERVER:
        pytest.fail("mcp-server-time is not installed (beside this Python or on PATH): pip install mcp-server-time")
    marker = uuid.uuid4().hex
    entry = McpServerStdio(name="time", command=TIME_SERVER, args=[], env=[EnvVariable(name="PANDO_TEST_MARK", value=marker)])
    return entry, marker


def processes_marked(marker: str) -> list[int]:
    """Pids of the processes whose environment carries ``PANDO_TEST_MARK=marker``."""
    found = []
    needle = f"PANDO_TEST_MARK={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def tool_names(request: dict) -> list[str]:
    return [t["function"]["name"] for t in request.get("tools") or []]


def test_the_editors_mcp_server_serves_that_session(start_acp, model_server, acp_workdir, time_server):
    entry, marker = time_server
    model_server.script(
        Reply.tool("time_get_current_time", {"timezone": "UTC"}),
        Reply.text("It is late."),
        Reply.text("no tools here"),
    )
    client = EditorClient()
    running: list[int] = []

    async def scenario():
        async with start_acp(client, plugins="acp,mcp") as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[entry])
            response = await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("what time is it?")])
            running.extend(processes_marked(marker))
            other = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            await conn.prompt(session_id=other.session_id, prompt=[acp.text_block("and here?")])
            return response

    response = run(scenario())
    assert response.stop_reason == "end_turn"
    first, second, third = model_server.requests
    assert {"time_get_current_time", "time_convert_time"} <= set(tool_names(first))
    # the call ran on the real server, unasked: its tools are marked read-only (readOnlyHint)
    assert client.permission_requests == []
    [call] = [u for u in client.of_kind("tool_call") if u.title == "time_get_current_time"]
    [done] = [u for u in client.of_kind("tool_call_update") if u.tool_call_id == call.tool_call_id and u.status == "completed"]
    result = second["messages"][-1]
    assert result["role"] == "tool" and '"timezone": "UTC"' in result["content"]
    # the server belongs to that session: another session's turn does not see its tools
    assert not any(name.startswith("time_") for name in tool_names(third))
    assert running, "the editor's MCP server was not running during the session"
    # pando acp exited: the server was stopped with it
    deadline = time.monotonic() + 15
    while processes_marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_marked(marker) == []


def test_session_load_starts_the_servers_it_names(start_acp, model_server, acp_workdir, time_server):
    entry, _ = time_server
    model_server.script(Reply.text("first"), Reply.text("second"))

    async def scenario():
        async with start_acp(EditorClient(), plugins="acp,mcp") as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("one")])
        async with start_acp(EditorClient(), plugins="acp,mcp") as (conn, _):
            await conn.load_session(cwd=str(acp_workdir), session_id=session.session_id, mcp_servers=[entry])
            await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("two")])

    run(scenario())
    first, second = model_server.requests
    assert not any(name.startswith("time_") for name in tool_names(first))
    assert "time_get_current_time" in tool_names(second)


def test_without_pando_mcp_the_servers_are_ignored_with_a_notice(start_acp, model_server, acp_workdir, time_server):
    entry, marker = time_server
    model_server.script(Reply.text("fine"))

    async def scenario():
        async with start_acp(EditorClient(), plugins="acp") as (conn, _):  # pando-mcp not enabled
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[entry])
            response = await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("hi")])
            return response, processes_marked(marker)

    response, running = run(scenario())
    assert response.stop_reason == "end_turn"
    assert running == []
    assert not any(name.startswith("time_") for name in tool_names(model_server.requests[0]))
    log = (acp_workdir / ".pando" / "logs" / "acp.log").read_text(encoding="utf-8")
    assert "the editor's MCP servers (time) are ignored: the pando-mcp plugin is not installed or not enabled" in log


def test_session_close_stops_its_servers_and_forgets_it(start_acp, model_server, acp_workdir, time_server):
    entry, marker = time_server
    model_server.script(Reply.text("hello"))
    seen: dict = {}

    async def scenario():
        async with start_acp(EditorClient(), initialize=False, plugins="acp,mcp") as (conn, process):
            init = await conn.initialize(protocol_version=1)
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[entry])
            await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("hi")])
            seen["running"] = processes_marked(marker)
            await conn.close_session(session_id=session.session_id)
            deadline = time.monotonic() + 15
            while processes_marked(marker) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            seen["after_close"] = processes_marked(marker)
            seen["agent_alive"] = process.returncode is None
            with pytest.raises(acp.RequestError) as unknown:
                await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("again")])
            return init, unknown.value

    init, unknown = run(scenario())
    assert init.agent_capabilities.session_capabilities.close is not None
    assert seen["running"] and seen["after_close"] == [] and seen["agent_alive"]
    assert unknown.code == -32002
