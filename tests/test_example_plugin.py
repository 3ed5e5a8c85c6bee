"""The plugin-author example (examples/pando-hello) works as documented in docs/plugins.md."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pando_core.testing.model_server import Reply
from tests.support.fake_dist import make_distribution

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pando-hello"


@pytest.fixture
def pando_hello():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import pando_hello as module

        yield module
    finally:
        sys.path.remove(str(EXAMPLE))


def test_the_agent_uses_greet(model_server, make_app, pando_hello):
    app = make_app(extra_plugins={"hello": pando_hello}, model_server=model_server)
    model_server.script(Reply.tool("greet", {"name": "Ada"}), Reply.text("Greeted Ada."))
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "greet Ada"))
    assert result.response == "Greeted Ada."
    assert model_server.requests[1]["messages"][-1]["content"] == "Hello, Ada!"


def test_prompt_rewrite_and_bus_method(model_server, make_app, pando_hello):
    app = make_app(extra_plugins={"hello": pando_hello}, model_server=model_server)
    session = app.sessions.create(title="t")
    asyncio.run(app.coder_agent.run(session["id"], "hi: Grace"))
    assert model_server.requests[0]["messages"][-1]["content"] == "Please greet Grace"
    assert "hello.ping" in app.runtime.bus.methods()


def test_installed_from_its_entry_point(tmp_path, pando_env):
    """The entry point declared in the example's pyproject.toml makes it discoverable."""
    text = (EXAMPLE / "pyproject.toml").read_text()
    assert 'hello = "pando_hello"' in text
    site = make_distribution(tmp_path / "site", "pando-hello", "0.1.0", {"hello": "pando_hello"}, {})
    env = dict(pando_env, PYTHONPATH=os.pathsep.join([str(site), str(EXAMPLE)]))
    (tmp_path / ".pando.toml").write_text('[hello]\ngreeting = "Howdy"\n')
    result = subprocess.run(
        [sys.executable, "-m", "pando_core", "--plugins", "hello", "hello", "Ada"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Howdy, Ada!"
