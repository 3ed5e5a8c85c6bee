"""``pando acp`` driven end to end by the ``acp`` library's client side, against the scripted model server."""

from __future__ import annotations

import asyncio
import sqlite3

import acp
import pytest
from acp import RequestError
from pando_acp.testing import DEADLINE_S, EditorClient, stored_messages

from pando_core.testing.model_server import Reply


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_initialize_says_what_pando_supports(start_acp):
    async def scenario():
        async with start_acp(EditorClient(), initialize=False) as (conn, _):
            return await conn.initialize(protocol_version=1)

    response = run(scenario())
    assert response.protocol_version == acp.PROTOCOL_VERSION
    assert response.agent_info.name == "pando"
    capabilities = response.agent_capabilities
    assert capabilities.load_session is True
    assert capabilities.prompt_capabilities.embedded_context is True
    assert capabilities.prompt_capabilities.image is False  # test-model is not declared to take images (test_images.py)
    assert capabilities.session_capabilities.list is not None


def test_a_prompt_streams_the_answer_and_ends_the_turn(start_acp, model_server, acp_workdir):
    model_server.script(Reply.text("The answer is forty-two, as computed.", chunk_size=6, reasoning="thinking it over"))
    client = EditorClient()

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            response = await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("what is the answer?")])
            listed = await conn.list_sessions()
            await client.wait_for(lambda: client.of_kind("available_commands_update"))
            return session, response, listed

    session, response, listed = run(scenario())
    assert response.stop_reason == "end_turn"
    chunks = client.of_kind("agent_message_chunk")
    assert len(chunks) > 1  # streamed, not sent at the end
    assert client.text() == "The answer is forty-two, as computed."
    assert client.text("agent_thought_chunk") == "thinking it over"
    assert session.modes.current_mode_id == "ask"
    # the ACP session is a pando session: stored under the same id, listed
    assert [m["role"] for m in stored_messages(acp_workdir, session.session_id)] == ["user", "assistant"]
    assert session.session_id in [s.session_id for s in listed.sessions]
    [named] = client.of_kind("session_info_update")  # the first prompt names the session
    assert named.title == "what is the answer?"
    assert [s.title for s in listed.sessions if s.session_id == session.session_id] == ["what is the answer?"]
    names = {c.name for c in client.of_kind("available_commands_update")[0].available_commands}
    assert {"help", "compact", "model"} <= names
    assert model_server.requests[0]["messages"][-1]["content"] == "what is the answer?"


def test_ask_mode_asks_the_editor_and_shows_the_diff(start_acp, model_server, acp_workdir):
    (acp_workdir / "notes.txt").write_text("old line\n", encoding="utf-8")
    model_server.script(
        Reply.tool("view", {"file_path": "notes.txt"}),
        Reply.tool("write", {"file_path": "notes.txt", "content": "new line\n"}),
        Reply.text("Rewritten."),
    )
    client = EditorClient(answers=["allow_once"])

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            return await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("rewrite notes")])

    response = run(scenario())
    assert response.stop_reason == "end_turn"
    assert (acp_workdir / "notes.txt").read_text() == "new line\n"
    # the read-only view was never asked about; the write was, with its diff
    [asked] = client.permission_requests
    assert asked.kind == "edit"
    [diff] = asked.content
    assert (diff.type, diff.old_text, diff.new_text) == ("diff", "old line\n", "new line\n")
    assert diff.path == str(acp_workdir / "notes.txt")
    starts = client.of_kind("tool_call")
    assert [(s.kind, s.title) for s in starts] == [("read", "Read notes.txt"), ("edit", "Write notes.txt")]
    assert starts[0].locations[0].path == str(acp_workdir / "notes.txt")
    statuses = [(u.tool_call_id, u.status) for u in client.of_kind("tool_call_update")]
    write_id = starts[1].tool_call_id
    assert [s for i, s in statuses if i == write_id] == ["in_progress", "completed"]
    finished = [u for u in client.of_kind("tool_call_update") if u.tool_call_id == write_id and u.status == "completed"][0]
    assert finished.content[0].type == "diff"
    assert client.text() == "Rewritten."


def test_a_rejection_is_honoured(start_acp, model_server, acp_workdir):
    model_server.script(Reply.tool("write", {"file_path": "new.txt", "content": "x\n"}), Reply.text("should not be asked"))
    client = EditorClient(answers=["reject_once"])

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            return session, await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("write it")])

    session, response = run(scenario())
    assert response.stop_reason == "end_turn"
    assert not (acp_workdir / "new.txt").exists()
    assert len(client.permission_requests) == 1
    failed = [u for u in client.of_kind("tool_call_update") if u.status == "failed"]
    assert len(failed) == 1 and "Permission denied" in failed[0].raw_output["content"]
    assert len(model_server.requests) == 1  # the turn ended at the refusal


def test_agent_mode_applies_permissions_only(start_acp, model_server, acp_workdir):
    model_server.script(Reply.tool("write", {"file_path": "new.txt", "content": "x\n"}), Reply.text("unused"))
    client = EditorClient(answers=["allow_once"])

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            await conn.set_session_mode(session_id=session.session_id, mode_id="agent")
            with pytest.raises(RequestError) as yolo:
                await conn.set_session_mode(session_id=session.session_id, mode_id="yolo")
            return yolo.value, await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("write it")])

    yolo_error, response = run(scenario())
    assert "allow_yolo" in str(yolo_error)
    assert response.stop_reason == "end_turn"
    assert client.permission_requests == []  # nobody was asked
    assert not (acp_workdir / "new.txt").exists()


def test_files_open_in_the_editor_are_read_and_written_through_it(start_acp, model_server, acp_workdir):
    disk = acp_workdir / "app.py"
    disk.write_text("print('saved')\n", encoding="utf-8")
    buffers = {str(disk): "print('unsaved edit')\n"}
    model_server.script(
        Reply.tool("view", {"file_path": "app.py"}),
        Reply.tool("write", {"file_path": "app.py", "content": "print('from pando')\n"}),
        Reply.text("done"),
    )
    client = EditorClient(answers=["allow_once"], buffers=buffers)

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            return await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("change app.py")])

    response = run(scenario())
    assert response.stop_reason == "end_turn"
    # the model saw the unsaved buffer, not the disk
    view_result = model_server.requests[1]["messages"][-1]["content"]
    assert "unsaved edit" in view_result and "saved')" not in view_result.replace("unsaved", "")
    # the write went to the editor (which owns saving), the disk is untouched
    assert client.writes == [(str(disk), "print('from pando')\n")]
    assert disk.read_text() == "print('saved')\n"
    [asked] = client.permission_requests
    assert asked.content[0].old_text == "print('unsaved edit')\n" or asked.content[0].new_text == "print('from pando')\n"


def test_embedded_resources_reach_the_model(start_acp, model_server, acp_workdir):
    client = EditorClient()
    resource = acp.resource_block(acp.embedded_text_resource(f"file://{acp_workdir}/lib.py", "def f():\n    return 1\n"))

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            return await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("explain"), resource])

    assert run(scenario()).stop_reason == "end_turn"
    sent = model_server.requests[0]["messages"][-1]["content"]
    assert sent.startswith("explain") and "def f():" in sent and "lib.py" in sent


def test_cancel_keeps_the_partial_answer_and_load_replays_it(start_acp, model_server, acp_workdir):
    model_server.script(Reply.text("word " * 200, chunk_size=5, chunk_delay=0.05))
    client = EditorClient()

    async def first():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            turn = asyncio.ensure_future(conn.prompt(session_id=session.session_id, prompt=[acp.text_block("talk")]))
            await client.wait_for(lambda: len(client.of_kind("agent_message_chunk")) >= 3)
            await conn.cancel(session_id=session.session_id)
            return session.session_id, await asyncio.wait_for(turn, DEADLINE_S)

    session_id, response = run(first())
    assert response.stop_reason == "cancelled"
    partial = client.text()
    assert partial and len(partial) < len("word " * 200)

    # a new process loads the session: the stored history comes back as updates, then a prompt
    # goes to the other configured model
    model_server.script(Reply.text("after the load"))
    reloaded = EditorClient()

    async def second():
        async with start_acp(reloaded) as (conn, _):
            loaded = await conn.load_session(cwd=str(acp_workdir), session_id=session_id, mcp_servers=[])
            await conn.set_config_option(config_id="model", session_id=session_id, value="scripted/other-model")
            response = await conn.prompt(session_id=session_id, prompt=[acp.text_block("go on")])
            return loaded, response

    loaded, response = run(second())
    assert reloaded.text("user_message_chunk") == "talk"
    replayed = reloaded.text()
    assert replayed.startswith(partial) and replayed.endswith("after the load")
    assert response.stop_reason == "end_turn"
    assert model_server.requests[-1]["model"] == "other-model"
    assert loaded.modes.current_mode_id == "ask"


def test_the_mode_is_stored_with_the_session_and_yolo_only_restored_where_allowed(start_acp, model_server, acp_workdir):
    config = acp_workdir / ".pando.toml"
    plain = config.read_text().replace("[agent]\n", '[agent]\ntitle_model = "scripted/title-model"\n', 1)
    model_server.add_rule(model="title-model", response=Reply.text("A title"))  # titles do not take scripted replies
    config.write_text(plain + "\n[acp]\nallow_yolo = true\n")
    setter = EditorClient()

    async def first():
        async with start_acp(setter) as (conn, _):
            agent = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            await conn.set_session_mode(session_id=agent.session_id, mode_id="agent")
            yolo = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            await conn.set_config_option(config_id="mode", session_id=yolo.session_id, value="yolo")
            return agent.session_id, yolo.session_id

    agent_id, yolo_id = run(first())

    # a new pando acp process (as acpx starts one per command), where yolo is not allowed
    config.write_text(plain)
    model_server.script(
        Reply.tool("write", {"file_path": "agent.txt", "content": "x\n"}),
        Reply.tool("write", {"file_path": "yolo.txt", "content": "x\n"}),
    )
    loader = EditorClient(answers=["reject_once"])

    async def second():
        async with start_acp(loader) as (conn, _):
            agent = await conn.load_session(cwd=str(acp_workdir), session_id=agent_id, mcp_servers=[])
            await conn.prompt(session_id=agent_id, prompt=[acp.text_block("write agent.txt")])
            asked_in_agent_mode = len(loader.permission_requests)
            yolo = await conn.load_session(cwd=str(acp_workdir), session_id=yolo_id, mcp_servers=[])
            await conn.prompt(session_id=yolo_id, prompt=[acp.text_block("write yolo.txt")])
            return agent, asked_in_agent_mode, yolo

    agent, asked_in_agent_mode, yolo = run(second())
    assert agent.modes.current_mode_id == "agent"  # set in the first process, restored by session/load
    assert asked_in_agent_mode == 0 and not (acp_workdir / "agent.txt").exists()  # agent mode: [permissions] only
    assert yolo.modes.current_mode_id == "ask"  # yolo is not offered here: [acp] default_mode instead
    assert [m.id for m in yolo.modes.available_modes] == ["ask", "agent"]
    assert len(loader.permission_requests) == 1 and not (acp_workdir / "yolo.txt").exists()  # asked, rejected


def test_set_model_the_way_zed_asks_for_it(start_acp, model_server, acp_workdir):
    client = EditorClient()

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            # session/set_model: the method of the SDKs editors ship (aliased to the agent)
            await conn._conn.send_request("session/set_model", {"sessionId": session.session_id, "modelId": "scripted/other-model"})
            with pytest.raises(RequestError) as unknown:
                await conn._conn.send_request("session/set_model", {"sessionId": session.session_id, "modelId": "nope/x"})
            await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("hi")])
            return unknown.value

    unknown = run(scenario())
    assert "not configured" in str(unknown)
    assert model_server.requests[-1]["model"] == "other-model"


def test_a_prompt_to_an_unknown_session_is_a_clear_error(start_acp, acp_workdir):
    async def scenario():
        async with start_acp(EditorClient()) as (conn, process):
            with pytest.raises(RequestError) as error:
                await conn.prompt(session_id="no-such-session", prompt=[acp.text_block("hi")])
            with pytest.raises(RequestError) as load_error:
                await conn.load_session(cwd=str(acp_workdir), session_id="no-such-session", mcp_servers=[])
            alive = process.returncode is None
            return error.value, load_error.value, alive

    error, load_error, alive = run(scenario())
    assert error.code == -32002 and "unknown session 'no-such-session'" in str(error)
    assert load_error.code == -32002 and "no session" in str(load_error)
    assert alive


def test_a_slash_command_runs_instead_of_a_turn(start_acp, model_server, acp_workdir):
    client = EditorClient()

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            return await conn.prompt(session_id=session.session_id, prompt=[acp.text_block("/model")])

    assert run(scenario()).stop_reason == "end_turn"
    assert client.text().startswith("Model: scripted/test-model")
    assert model_server.requests == []


def test_always_allow_is_remembered_and_sessions_end_when_the_editor_leaves(start_acp, model_server, acp_workdir):
    model_server.script(
        Reply.tool("write", {"file_path": "one.txt", "content": "1\n"}),
        Reply.text("first"),
        Reply.tool("write", {"file_path": "two.txt", "content": "2\n"}),
        Reply.text("second"),
    )
    client = EditorClient(answers=["allow_always"])

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            for text in ("write one", "write two"):
                response = await conn.prompt(session_id=session.session_id, prompt=[acp.text_block(text)])
                assert response.stop_reason == "end_turn"
            return session.session_id

    session_id = run(scenario())
    assert (acp_workdir / "one.txt").exists() and (acp_workdir / "two.txt").exists()
    assert len(client.permission_requests) == 1  # the second write was covered by "always"
    db = sqlite3.connect(f"file:{acp_workdir / '.pando' / 'pando.db'}?mode=ro", uri=True)
    try:
        grants = db.execute("SELECT tool_name FROM permission_grants").fetchall()
        [(ended_at,)] = db.execute("SELECT ended_at FROM sessions WHERE id = ?", (session_id,)).fetchall()
    finally:
        db.close()
    assert grants == [("write",)]
    assert ended_at is not None  # pando acp ended the session it used when the editor left


def test_bash_runs_in_the_editors_terminal_and_keeps_its_directory(start_acp, model_server, acp_workdir):
    (acp_workdir / "sub").mkdir()
    model_server.script(
        Reply.tool("bash", {"command": "cd sub && touch made-here && echo made"}),
        Reply.tool("bash", {"command": "pwd"}),
        Reply.tool("bash", {"command": "sleep 30"}, id="slow"),
        Reply.text("done"),
    )
    client = EditorClient(answers=["allow_once"], terminals=True)

    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            turn = asyncio.ensure_future(conn.prompt(session_id=session.session_id, prompt=[acp.text_block("make it")]))
            await client.wait_for(lambda: len(client.terminal_commands) == 3)
            await conn.cancel(session_id=session.session_id)  # kills the sleeping command
            return await asyncio.wait_for(turn, DEADLINE_S)

    response = run(scenario())
    assert response.stop_reason == "cancelled"
    assert (acp_workdir / "sub" / "made-here").exists()  # the editor ran it, in the working directory
    assert [cwd for _, _, cwd in client.terminal_commands] == [str(acp_workdir), str(acp_workdir / "sub"), str(acp_workdir / "sub")]
    assert len(client.permission_requests) == 1  # pwd and sleep are read-only: not asked
    results = [m for m in model_server.requests[1:3]]
    assert "made" in results[0]["messages"][-1]["content"]
    assert results[1]["messages"][-1]["content"].strip().endswith(str(acp_workdir / "sub"))
    shown = [c for u in client.of_kind("tool_call_update") for c in (u.content or []) if c.type == "terminal"]
    assert shown  # the tool call showed the live terminal
