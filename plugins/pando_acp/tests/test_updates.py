"""The pure mappings: stop reasons, tool call rendering, replay of stored sessions, prompt content, frames."""

from __future__ import annotations

import base64
from pathlib import Path

import acp
import pytest
from pando_acp import updates
from pando_acp.frames import check_frame
from pando_acp.prompt_content import prompt_content


@pytest.mark.parametrize(
    ("status", "finish", "expected"),
    [
        ("success", "end_turn", "end_turn"),
        ("success", "max_tokens", "max_tokens"),
        ("success", "refusal", "refusal"),
        ("success", "content_filter", "refusal"),
        ("cancelled", "canceled", "cancelled"),
        ("cancelled", "end_turn", "cancelled"),
        ("max_requests", "max_requests", "max_turn_requests"),
        ("stuck", "stuck", "max_turn_requests"),
        ("permission_denied", "permission_denied", "end_turn"),
        ("success", "something new", "end_turn"),
    ],
)
def test_stop_reasons(status, finish, expected):
    assert updates.stop_reason(status, finish) == expected


def test_tool_calls_get_kind_title_locations_and_diff(tmp_path: Path):
    (tmp_path / "a.py").write_text("x = 1\n")
    edit = updates.tool_call_start(
        tmp_path, {"id": "c1", "name": "edit", "input": '{"file_path": "a.py", "old_string": "x = 1", "new_string": "x = 2"}'}
    )
    assert (edit.kind, edit.title, edit.status) == ("edit", "Edit a.py", "pending")
    assert edit.locations[0].path == str(tmp_path / "a.py")
    assert (edit.content[0].old_text, edit.content[0].new_text) == ("x = 1", "x = 2")
    write = updates.tool_call_start(tmp_path, {"id": "c2", "name": "write", "input": '{"file_path": "a.py", "content": "y\\n"}'})
    assert (write.content[0].old_text, write.content[0].new_text) == ("x = 1\n", "y\n")
    new_file = updates.tool_call_start(tmp_path, {"id": "c3", "name": "write", "input": '{"file_path": "b.py", "content": "z"}'})
    assert new_file.content[0].old_text is None
    bash = updates.tool_call_start(tmp_path, {"id": "c4", "name": "bash", "input": '{"command": "pytest  -x"}'})
    assert (bash.kind, bash.title, bash.content, bash.locations) == ("execute", "Run `pytest -x`", None, None)
    odd = updates.tool_call_start(tmp_path, {"id": "c5", "name": "mcp_thing", "input": "not json"})
    assert (odd.kind, odd.title, odd.raw_input) == ("other", "mcp_thing", {})
    done = updates.tool_call_finished("c1", {"content": "Edited", "is_error": False}, edit.content)
    assert done.status == "completed" and [c.type for c in done.content] == ["diff", "content"]
    failed = updates.tool_call_finished("c1", {"content": "no match", "is_error": True}, edit.content)
    assert failed.status == "failed" and [c.type for c in failed.content] == ["content"]


def test_replay_of_a_stored_session(tmp_path: Path):
    messages = [
        {"role": "user", "parts": [{"type": "text", "data": {"text": "hi"}}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "data": {"thinking": "hmm"}},
                {"type": "text", "data": {"text": "looking"}},
                {"type": "tool_call", "data": {"id": "t1", "name": "ls", "input": "{}"}},
                {"type": "finish", "data": {"reason": "tool_use"}},
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_result", "data": {"tool_call_id": "t1", "name": "ls", "content": "a.py", "is_error": False}}]},
    ]
    kinds = [u.session_update for u in updates.replay(tmp_path, messages)]
    assert kinds == ["user_message_chunk", "agent_thought_chunk", "agent_message_chunk", "tool_call", "tool_call_update"]


def test_prompt_content_to_text(tmp_path: Path):
    (tmp_path / "linked.txt").write_text("linked body")
    blocks = [
        acp.text_block("look at these"),
        acp.resource_block(acp.embedded_text_resource("file:///w/a.py", "code ```fenced```")),
        acp.resource_link_block("linked.txt", f"file://{tmp_path}/linked.txt"),
        acp.resource_link_block("gone", "file:///nowhere/x"),
    ]
    content = prompt_content(blocks, lambda uri: (tmp_path / "linked.txt").read_text() if "linked" in uri else None)
    text = content.text
    assert content.images == []
    assert text.startswith("look at these")
    assert "/w/a.py:\n````\ncode ```fenced```\n````" in text
    assert "linked body" in text and "(see file:///nowhere/x)" in text
    with pytest.raises(ValueError, match="audio"):
        prompt_content([acp.audio_block("AAAA", "audio/wav")])


def test_image_blocks_become_image_parts():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(40)).decode()
    content = prompt_content([acp.text_block("what is this?"), acp.image_block(png, "image/png", uri="file:///w/shot.png")])
    assert content.text == "what is this?"
    assert content.images == [{"type": "image", "data": {"mime_type": "image/png", "data": png, "path": "file:///w/shot.png", "bytes": 48}}]
    with pytest.raises(ValueError, match="not a PNG, JPEG, GIF or WebP"):
        prompt_content([acp.image_block(base64.b64encode(b"BM" + bytes(40)).decode(), "image/bmp")])
    with pytest.raises(ValueError, match="not base64"):
        prompt_content([acp.image_block("%%%", "image/png")])
    with pytest.raises(ValueError, match=r"48 bytes; the limit is 10 \(\[agent\] max_image_bytes\)"):
        prompt_content([acp.image_block(png, "image/png")], max_image_bytes=10)


def test_frames_are_checked():
    assert check_frame(b'{"jsonrpc":"2.0","id":1,"method":"initialize"}')[0]["method"] == "initialize"
    assert check_frame(b'{"jsonrpc":"2.0","id":1,"method":"session/set_model"}')[0]["method"] == "_session/set_model"
    assert check_frame(b'{"jsonrpc":"2.0","id":1,"result":{}}')[1] is None  # a response to one of ours
    assert check_frame(b"{nope")[1]["error"]["code"] == -32700
    assert check_frame(b"3")[1]["error"]["code"] == -32600
    assert check_frame(b'{"method": 5, "id": 2}')[1]["error"] == {"code": -32600, "message": "Invalid request: method must be a string"}
