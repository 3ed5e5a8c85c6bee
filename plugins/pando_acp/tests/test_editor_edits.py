"""``edit`` and ``patch`` through the editor: with ``fs.writeTextFile`` offered the change goes to the
editor's buffer (``fs/write_text_file``), worked out on the text it has (``fs/read_text_file``
when offered); without it, the disk. The editor is a real ACP client process side
(``EditorClient``) recording every fs call; pando acp is a real process."""

from __future__ import annotations

import asyncio

import acp
from pando_acp.testing import EditorClient

from pando_core.testing.model_server import Reply


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 120))


def prompt_once(start_acp, workdir, client: EditorClient, text: str):  # noqa: ANN001, ANN201
    async def scenario():
        async with start_acp(client) as (conn, _):
            session = await conn.new_session(cwd=str(workdir), mcp_servers=[])
            return await conn.prompt(session_id=session.session_id, prompt=[acp.text_block(text)])

    return run(scenario())


def tool_results(model_server) -> list[str]:  # noqa: ANN001
    return [m["content"] for r in model_server.requests for m in r["messages"][-1:] if m["role"] == "tool"]


def test_an_edit_changes_the_editors_buffer(start_acp, model_server, acp_workdir):
    disk = acp_workdir / "app.py"
    disk.write_text("x = 1\ny = 2\n", encoding="utf-8")
    buffers = {str(disk): "x = 1\ny = 'unsaved'\n"}
    model_server.script(
        Reply.tool("view", {"file_path": "app.py"}),
        Reply.tool("edit", {"file_path": "app.py", "old_string": "y = 'unsaved'", "new_string": "y = 'edited'"}),
        Reply.tool("edit", {"file_path": "made.py", "old_string": "", "new_string": "print('new')\n"}),
        Reply.text("done"),
    )
    client = EditorClient(answers=["allow_once", "allow_once"], buffers=buffers)

    response = prompt_once(start_acp, acp_workdir, client, "edit app.py")
    assert response.stop_reason == "end_turn"
    # the edit was worked out on the unsaved buffer and handed to the editor; the disk is untouched
    assert client.reads.count(str(disk)) >= 2  # view, then edit
    assert client.writes == [(str(disk), "x = 1\ny = 'edited'\n"), (str(acp_workdir / "made.py"), "print('new')\n")]
    assert disk.read_text() == "x = 1\ny = 2\n"
    assert not (acp_workdir / "made.py").exists()
    edited, created = tool_results(model_server)[1:3]
    assert edited.startswith("Edited app.py: replaced 1 occurrence (+1 -1)") and "y = 'edited'" in edited
    assert created.startswith("Created made.py")
    asked = client.permission_requests[0]
    assert asked.raw_input["file_path"] == str(disk) and "+y = 'edited'" in asked.raw_input["diff"]
    assert "-y = 'unsaved'" in asked.raw_input["diff"]  # the diff is against the buffer


def test_an_edit_that_does_not_match_the_buffer_fails_without_writing(start_acp, model_server, acp_workdir):
    disk = acp_workdir / "app.py"
    disk.write_text("y = 2\n", encoding="utf-8")
    buffers = {str(disk): "y = 'unsaved'\n"}
    model_server.script(
        Reply.tool("view", {"file_path": "app.py"}),
        Reply.tool("edit", {"file_path": "app.py", "old_string": "y = 2", "new_string": "y = 3"}),  # the disk's text
        Reply.text("sorry"),
    )
    client = EditorClient(buffers=buffers)

    assert prompt_once(start_acp, acp_workdir, client, "edit").stop_reason == "end_turn"
    assert "old_string was not found in app.py" in tool_results(model_server)[1]
    assert client.writes == [] and client.permission_requests == []
    assert disk.read_text() == "y = 2\n"


def test_writes_only_reads_the_disk_and_writes_through_the_editor(start_acp, model_server, acp_workdir):
    disk = acp_workdir / "app.py"
    disk.write_text("y = 2\n", encoding="utf-8")
    model_server.script(
        Reply.tool("view", {"file_path": "app.py"}),
        Reply.tool("edit", {"file_path": "app.py", "old_string": "y = 2", "new_string": "y = 3"}),
        Reply.text("done"),
    )
    client = EditorClient(answers=["allow_once"], buffers={}, reads=False)

    assert prompt_once(start_acp, acp_workdir, client, "edit").stop_reason == "end_turn"
    assert client.reads == []  # fs.readTextFile was not offered: never called
    assert client.writes == [(str(disk), "y = 3\n")]
    assert disk.read_text() == "y = 2\n"


def test_without_the_fs_capability_edit_and_patch_change_the_disk(start_acp, model_server, acp_workdir):
    disk = acp_workdir / "app.py"
    disk.write_text("y = 2\n", encoding="utf-8")
    patch = "*** Begin Patch\n*** Add File: extra.txt\n+added\n*** End Patch\n"
    model_server.script(
        Reply.tool("view", {"file_path": "app.py"}),
        Reply.tool("edit", {"file_path": "app.py", "old_string": "y = 2", "new_string": "y = 3"}),
        Reply.tool("patch", {"patch_text": patch}),
        Reply.text("done"),
    )
    client = EditorClient(answers=["allow_once", "allow_once"])  # no buffers: no fs capability

    assert prompt_once(start_acp, acp_workdir, client, "edit").stop_reason == "end_turn"
    assert disk.read_text() == "y = 3\n"
    assert (acp_workdir / "extra.txt").read_text() == "added\n"
    assert client.reads == [] and client.writes == []


def test_a_patch_updates_and_adds_through_the_editor(start_acp, model_server, acp_workdir):
    one, two = acp_workdir / "one.txt", acp_workdir / "two.txt"
    one.write_text("alpha\nbeta\n", encoding="utf-8")
    two.write_text("gamma\n", encoding="utf-8")
    buffers = {str(one): "alpha\nbeta (unsaved)\n"}
    patch = (
        "*** Begin Patch\n*** Update File: one.txt\n alpha\n-beta (unsaved)\n+beta patched\n"
        "*** Update File: two.txt\n-gamma\n+delta\n*** Add File: three.txt\n+new file\n*** End Patch\n"
    )
    model_server.script(
        Reply.tool("view", {"file_path": "one.txt"}),
        Reply.tool("view", {"file_path": "two.txt"}),
        Reply.tool("patch", {"patch_text": patch}),
        Reply.text("patched"),
    )
    client = EditorClient(answers=["allow_once"] * 3, buffers=buffers)

    assert prompt_once(start_acp, acp_workdir, client, "patch them").stop_reason == "end_turn"
    assert client.writes == [
        (str(one), "alpha\nbeta patched\n"),
        (str(two), "delta\n"),
        (str(acp_workdir / "three.txt"), "new file\n"),
    ]
    assert one.read_text() == "alpha\nbeta\n" and two.read_text() == "gamma\n"  # the disk is the editor's to save
    assert not (acp_workdir / "three.txt").exists()
    assert len(client.permission_requests) == 3  # one per file, each with its diff
    assert tool_results(model_server)[2].startswith("Patch applied: 3 file(s) changed")


def test_a_patch_that_deletes_runs_on_the_disk(start_acp, model_server, acp_workdir):
    gone = acp_workdir / "gone.txt"
    gone.write_text("bye\n", encoding="utf-8")
    patch = "*** Begin Patch\n*** Delete File: gone.txt\n*** End Patch\n"
    model_server.script(Reply.tool("view", {"file_path": "gone.txt"}), Reply.tool("patch", {"patch_text": patch}), Reply.text("ok"))
    client = EditorClient(answers=["allow_once"], buffers={})

    assert prompt_once(start_acp, acp_workdir, client, "delete it").stop_reason == "end_turn"
    assert not gone.exists()  # ACP cannot delete: pando's own patch did
    assert client.writes == []


def test_a_patch_the_editor_refuses_in_part_is_undone(start_acp, model_server, acp_workdir):
    one, two = acp_workdir / "one.txt", acp_workdir / "two.txt"
    one.write_text("alpha\n", encoding="utf-8")
    two.write_text("gamma\n", encoding="utf-8")
    buffers = {str(one): "alpha\n", str(two): "gamma\n"}
    patch = "*** Begin Patch\n*** Update File: one.txt\n-alpha\n+beta\n*** Update File: two.txt\n-gamma\n+delta\n*** End Patch\n"
    model_server.script(
        Reply.tool("view", {"file_path": "one.txt"}),
        Reply.tool("view", {"file_path": "two.txt"}),
        Reply.tool("patch", {"patch_text": patch}),
        Reply.text("it failed"),
    )
    client = EditorClient(answers=["allow_once"] * 2, buffers=buffers, refused={str(two)})

    assert prompt_once(start_acp, acp_workdir, client, "patch them").stop_reason == "end_turn"
    # one.txt was written, two.txt refused: one.txt got its text back, through the editor
    assert client.writes == [(str(one), "beta\n"), (str(one), "alpha\n")]
    assert buffers == {str(one): "alpha\n", str(two): "gamma\n"}
    failed = tool_results(model_server)[2]
    assert "The editor did not write two.txt" in failed and "read-only in this editor" in failed
    assert failed.rstrip().endswith("no files were changed")
