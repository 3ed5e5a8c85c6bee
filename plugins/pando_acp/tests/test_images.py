"""Images from the editor: announced when the model takes them, sent to the model as image parts."""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib

import acp
import pytest
from acp import RequestError
from pando_acp.testing import EditorClient, stored_messages

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

VISION = '\n[providers.scripted.models.test-model]\nimages = true\n\n[providers.scripted.models.other-model]\n'


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(asyncio.wait_for(coro, 120))


def tiny_png() -> bytes:
    """A real 1x1 red PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def image_prompt() -> tuple[str, list]:
    data = base64.b64encode(tiny_png()).decode()
    return data, [acp.text_block("what colour is this?"), acp.image_block(data, "image/png", uri="file:///tmp/red.png")]


def test_a_vision_model_gets_the_editors_image(start_acp, model_server, acp_workdir):
    write_model_config(acp_workdir, model_server.base_url, extra=VISION)
    model_server.script(Reply.text("Red."))
    client = EditorClient()
    data, blocks = image_prompt()

    async def scenario():
        async with start_acp(client, initialize=False) as (conn, _):
            init = await conn.initialize(protocol_version=1, client_capabilities=client.capabilities)
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            response = await conn.prompt(session_id=session.session_id, prompt=blocks)
            return init, session, response

    init, session, response = run(scenario())
    assert init.agent_capabilities.prompt_capabilities.image is True
    assert response.stop_reason == "end_turn"
    assert client.text() == "Red."
    # the request the model server received carries the image as an OpenAI image_url part
    content = model_server.requests[0]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "what colour is this?"}
    assert content[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    [user, _] = stored_messages(acp_workdir, session.session_id)
    assert [p["type"] for p in user["parts"]] == ["text", "image"]
    assert user["parts"][1]["data"]["path"] == "file:///tmp/red.png"


def test_the_image_is_shown_again_on_load(start_acp, model_server, acp_workdir):
    write_model_config(acp_workdir, model_server.base_url, extra=VISION)
    model_server.script(Reply.text("Red."))
    data, blocks = image_prompt()

    async def scenario():
        async with start_acp(EditorClient()) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=blocks)
        reader = EditorClient()
        async with start_acp(reader) as (conn, _):
            await conn.load_session(cwd=str(acp_workdir), session_id=session.session_id, mcp_servers=[])
        return reader

    reader = run(scenario())
    shown = [u.content for u in reader.of_kind("user_message_chunk")]
    assert [c.type for c in shown] == ["text", "image"]
    assert shown[1].data == data and shown[1].mime_type == "image/png"


def test_a_model_without_images_refuses_them_clearly(start_acp, model_server, acp_workdir):
    client = EditorClient()
    _, blocks = image_prompt()

    async def scenario():
        async with start_acp(client, initialize=False) as (conn, _):
            init = await conn.initialize(protocol_version=1, client_capabilities=client.capabilities)
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            with pytest.raises(RequestError) as refused:
                await conn.prompt(session_id=session.session_id, prompt=blocks)
            return init, refused.value

    init, error = run(scenario())
    assert init.agent_capabilities.prompt_capabilities.image is False
    assert error.code == -32602
    assert "model scripted/test-model does not accept images" in str(error.data or error)
    assert model_server.requests == []  # nothing was sent


def test_a_switch_to_a_model_without_images_refuses_them(start_acp, model_server, acp_workdir):
    write_model_config(acp_workdir, model_server.base_url, extra=VISION)
    _, blocks = image_prompt()

    async def scenario():
        async with start_acp(EditorClient()) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            await conn.set_config_option(config_id="model", session_id=session.session_id, value="scripted/other-model")
            with pytest.raises(RequestError) as refused:
                await conn.prompt(session_id=session.session_id, prompt=blocks)
            return refused.value

    error = run(scenario())
    assert "model scripted/other-model does not accept images" in str(error.data or error)
    assert model_server.requests == []


def test_a_broken_image_is_an_invalid_params_error(start_acp, model_server, acp_workdir):
    write_model_config(acp_workdir, model_server.base_url, extra=VISION)
    bmp = base64.b64encode(b"BM" + bytes(60)).decode()

    async def scenario():
        async with start_acp(EditorClient()) as (conn, _):
            session = await conn.new_session(cwd=str(acp_workdir), mcp_servers=[])
            with pytest.raises(RequestError) as refused:
                await conn.prompt(session_id=session.session_id, prompt=[acp.image_block(bmp, "image/bmp")])
            return refused.value

    error = run(scenario())
    assert error.code == -32602
    assert "image 1 (image/bmp) is not a PNG, JPEG, GIF or WebP image" in str(error.data or error)
