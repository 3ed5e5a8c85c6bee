"""Two real pando processes on one working directory, both with pando-mcp in gateway mode: both
call MCP tools, the secondary's usage rows land in the primary's database (proxied writes), and
discovery (a primary-only service) moves to the new primary after a SIGKILL."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.timeout(240)

CALL_ECHO = (
    "import asyncio\n"
    "tool = next(t for t in app.coder_agent.tools() if t.name == 'mcp_call_tool')\n"
    "s = app.sessions.create(title='mcp')\n"
    "ctx = app.tool_context(s['id'], 'm-1', 'c-1', None)\n"
    "out = asyncio.run(tool.run({'tool_name': 'faulty/echo', 'parameters': {'text': TEXT}}, ctx))\n"
    "result = [s['id'], out.content, out.is_error]\n"
)


def until(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_two_instances_share_the_gateway_and_discovery_follows_the_primary(pando_pair, pando_workdir, faulty_command):
    python, script = faulty_command
    (pando_workdir / ".pando.toml").write_text(
        f'[mcp]\ngateway = true\n\n[mcp.servers.faulty]\ncommand = "{python}"\nargs = ["{script}"]\n', encoding="utf-8"
    )
    primary, secondary = pando_pair(plugins=["mcp"])
    secondary_id = secondary.info["instance_id"]
    catalog = "result = len(app.store.mcp_catalog.tools(server='faulty'))"
    until(lambda: secondary.eval(catalog) == 7)  # discovered by the primary, read by the secondary
    assert secondary.eval("result = app.services.get('mcp.discovery') is None") is True

    session_id, content, is_error = secondary.eval(CALL_ECHO.replace("TEXT", "'from the secondary'"), timeout=60)
    assert (content, is_error) == ("echo: from the secondary", False)
    _, content, _ = primary.eval(CALL_ECHO.replace("TEXT", "'from the primary'"), timeout=60)
    assert content == "echo: from the primary"
    usage = primary.eval("result = app.store.mcp_catalog.usage(tool_id='faulty/echo')")
    assert {(row["instance_id"], row["session_id"]) for row in usage} >= {(secondary_id, session_id)}
    assert len(usage) == 2

    primary.kill()
    until(lambda: secondary.role == "primary", timeout=20)
    runs = "s = app.services.get('mcp.discovery')\nresult = s is not None and s.health().get('runs', 0) > 0"
    until(lambda: secondary.eval(runs), timeout=60)
    _, content, _ = secondary.eval(CALL_ECHO.replace("TEXT", "'after the failover'"), timeout=60)
    assert content == "echo: after the failover"
    assert len(secondary.eval("result = app.store.mcp_catalog.usage(tool_id='faulty/echo')")) == 3
