"""Two ``pando acp`` processes on one working directory: the second is a secondary, and it keeps
working when the first (the primary) is killed in the middle of a turn."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import acp
from pando_acp.testing import DEADLINE_S, EditorClient, stored_messages

from pando_core.testing.model_server import Reply


def _primary_pid(workdir) -> int:  # noqa: ANN001
    return json.loads((workdir / ".pando" / "primary.json").read_text())["pid"]


async def _until(predicate, timeout: float = DEADLINE_S) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "the secondary never took over"
        await asyncio.sleep(0.01)


def test_the_second_instance_survives_the_first_being_killed_mid_turn(start_acp, model_server, acp_workdir):
    model_server.add_rule(contains="long", response=Reply.text("slow " * 400, chunk_size=5, chunk_delay=0.05))
    model_server.add_rule(contains="after", response=Reply.text("the secondary answers"))
    first, second = EditorClient(), EditorClient()

    async def scenario():
        async with start_acp(first) as (conn_a, process_a):
            session_a = await conn_a.new_session(cwd=str(acp_workdir), mcp_servers=[])
            assert _primary_pid(acp_workdir) == process_a.pid
            async with start_acp(second) as (conn_b, process_b):
                # a secondary: its session is written through the primary
                session_b = await conn_b.new_session(cwd=str(acp_workdir), mcp_servers=[])
                assert _primary_pid(acp_workdir) == process_a.pid
                turn_a = asyncio.ensure_future(conn_a.prompt(session_id=session_a.session_id, prompt=[acp.text_block("a long one")]))
                await first.wait_for(lambda: len(first.of_kind("agent_message_chunk")) >= 3)
                os.kill(process_a.pid, signal.SIGKILL)
                await asyncio.wait_for(process_a.wait(), DEADLINE_S)
                turn_a.cancel()
                await _until(lambda: _primary_pid(acp_workdir) == process_b.pid)  # promoted within ms
                response = await asyncio.wait_for(
                    conn_b.prompt(session_id=session_b.session_id, prompt=[acp.text_block("after the kill")]), DEADLINE_S
                )
                promoted = _primary_pid(acp_workdir) == process_b.pid
                sessions = await conn_b.list_sessions()
                return session_a.session_id, session_b.session_id, response, promoted, sessions

    session_a, session_b, response, promoted, sessions = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert response.stop_reason == "end_turn"
    assert second.text() == "the secondary answers"
    assert promoted
    assert {session_a, session_b} <= {s.session_id for s in sessions.sessions}
    roles = [m["role"] for m in stored_messages(acp_workdir, session_b)]
    assert roles == ["user", "assistant"]
    # what the killed primary had streamed before it died is in the shared database
    killed = stored_messages(acp_workdir, session_a)
    assert killed[0]["role"] == "user"
