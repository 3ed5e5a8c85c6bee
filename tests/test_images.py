"""Images: real PNG files sent by the real CLI to the scripted model server (OpenAI and Anthropic shapes)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from pando_core.agent.attachments import dropped_image_paths, image_type
from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config
from tests.support.images import VISION, image_urls, tiny_png


def run_cli(workdir, env, *args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "none", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def png(pando_workdir):
    path = pando_workdir / "shot.png"
    path.write_bytes(tiny_png())
    return path


def test_run_image_is_sent_as_a_data_url_and_stored_with_the_message(png, pando_workdir, pando_env, model_server):
    write_model_config(pando_workdir, model_server.base_url, extra=VISION)
    model_server.script(Reply.text("a red square"))
    result = run_cli(pando_workdir, pando_env, "run", "-f", "json", "--image", "shot.png", "--image", str(png), "what is it?")
    assert result.returncode == 0, result.stderr
    expected = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    assert image_urls(model_server.requests[0]) == [expected, expected]
    content = model_server.requests[0]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "what is it?"}
    # `pando sessions export` shows the image part of the stored message
    session_id = json.loads(result.stdout)["session_id"]
    exported = run_cli(pando_workdir, pando_env, "sessions", "export", session_id, "--format", "json")
    assert exported.returncode == 0, exported.stderr
    user = [m for m in json.loads(exported.stdout)["messages"] if m["role"] == "user"][0]
    images = [p for p in user["parts"] if p["type"] == "image"]
    assert [p["data"]["mime_type"] for p in images] == ["image/png", "image/png"]
    assert base64.b64decode(images[0]["data"]["data"]) == png.read_bytes()
    markdown = run_cli(pando_workdir, pando_env, "sessions", "export", session_id)
    assert "_(image shot.png, image/png)_" in markdown.stdout


def test_a_model_without_images_is_refused_before_anything_is_sent(png, pando_workdir, pando_env, model_server):
    write_model_config(pando_workdir, model_server.base_url)  # test-model: no images capability
    result = run_cli(pando_workdir, pando_env, "run", "--image", "shot.png", "describe")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'pando: error: model scripted/test-model does not accept images (shot.png); pick a vision model with --model, '
        'or set [providers.scripted.models."test-model"] images = true'
    ]
    assert model_server.requests == []
    # a mentioned image in a prompt is refused the same way, as the turn's error
    result = run_cli(pando_workdir, pando_env, "run", "describe @shot.png")
    assert result.returncode == 2 and "does not accept images (shot.png)" in result.stderr
    assert model_server.requests == []


def test_bad_image_files_are_one_line_usage_errors(png, pando_workdir, pando_env, model_server):
    write_model_config(pando_workdir, model_server.base_url, extra=VISION)
    (pando_workdir / "fake.png").write_text("not an image")
    cases = {
        "missing.png": "image missing.png: no such file",
        "fake.png": "fake.png is not a PNG, JPEG, GIF or WebP image",
    }
    for name, message in cases.items():
        result = run_cli(pando_workdir, pando_env, "run", "--image", name, "x")
        assert result.returncode == 2 and result.stderr.strip() == f"pando: error: {message}", result.stderr
    config = pando_workdir / ".pando.toml"
    config.write_text(config.read_text().replace("[agent]\n", "[agent]\nmax_image_bytes = 20\n"))
    result = run_cli(pando_workdir, pando_env, "run", "--image", "shot.png", "x")
    size = png.stat().st_size
    assert result.returncode == 2
    assert result.stderr.strip() == f"pando: error: image shot.png is {size} bytes; the limit is 20 ([agent] max_image_bytes)"
    assert model_server.requests == []


def test_anthropic_gets_a_base64_image_block_and_a_mentioned_image(png, pando_workdir, pando_env, model_server):
    (pando_workdir / ".pando.toml").write_text(
        '[agent]\nmodel = "claude/claude-sonnet-4-5"\n\n'  # a Claude model takes images with no setting
        f'[providers.claude]\ntype = "anthropic"\nbase_url = "{model_server.root_url}"\napi_key = "test"\n'
    )
    model_server.script(Reply.text("red"))
    result = run_cli(pando_workdir, pando_env, "run", "what colour is @shot.png")
    assert result.returncode == 0, result.stderr
    blocks = model_server.requests[0]["messages"][-1]["content"]
    assert blocks[0]["type"] == "text"
    source = {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png.read_bytes()).decode()}
    assert blocks[1]["type"] == "image" and blocks[1]["source"] == source


def test_image_types_by_magic_bytes_and_dropped_paths(png, pando_workdir, tmp_path):
    assert image_type(tiny_png()) == "image/png"
    assert image_type(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert image_type(b"GIF89a\x01\x00") == "image/gif"
    assert image_type(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert image_type(b"%PDF-1.7\n") is None
    # a terminal drops a file from anywhere as a quoted or backslash-escaped path
    dropped = tmp_path / "Screen Shot 1.png"
    dropped.write_bytes(tiny_png(3, 1))
    (pando_workdir / "fake.png").write_text("text")
    for text in (f"look '{dropped}' please", "look " + str(dropped).replace(" ", "\\ "), f'"{dropped}"'):
        (part,) = dropped_image_paths(text, pando_workdir)
        assert part["data"]["path"] == str(dropped) and part["data"]["bytes"] == dropped.stat().st_size
    assert [p["data"]["path"] for p in dropped_image_paths("shot.png and fake.png, @shot.png", pando_workdir)] == ["shot.png"]
    assert dropped_image_paths("no images here", pando_workdir) == []


def test_attachments_larger_than_a_bus_message_are_refused(png, pando_workdir, pando_env, model_server):
    write_model_config(pando_workdir, model_server.base_url, extra=VISION + "\n[runtime]\nmax_message_bytes = 40000\n")
    (pando_workdir / "big.png").write_bytes(tiny_png() + b"\x00" * 30_000)  # a PNG with trailing bytes
    result = run_cli(pando_workdir, pando_env, "run", "--image", "big.png", "look")
    assert result.returncode == 2
    assert "a message may be at most 36,000 ([runtime] max_message_bytes)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and model_server.requests == []
    model_server.script(Reply.text("small is fine"))
    ok = run_cli(pando_workdir, pando_env, "run", "--image", "shot.png", "look")
    assert ok.returncode == 0 and ok.stdout == "small is fine\n", ok.stderr


def test_a_secondary_stores_an_image_and_a_mention_through_the_primary(png, pando_workdir, pando_env, model_server):
    from tests.support.primary import primary_holder
    from tests.test_mentions import stored_parts

    write_model_config(pando_workdir, model_server.base_url, extra=VISION)
    (pando_workdir / "notes.txt").write_text("secondary notes\n")
    with primary_holder(pando_workdir, pando_env) as holder:
        assert holder.role == "primary"
        model_server.script(Reply.text("seen from a secondary"))
        result = run_cli(pando_workdir, pando_env, "run", "-f", "json", "--image", "shot.png", "read @notes.txt")
        assert result.returncode == 0, result.stderr
        session_id = json.loads(result.stdout)["session_id"]
        (parts,) = stored_parts(pando_workdir, session_id)
        assert [p["type"] for p in parts] == ["text", "file", "image"]
        assert base64.b64decode(parts[2]["data"]["data"]) == png.read_bytes()
