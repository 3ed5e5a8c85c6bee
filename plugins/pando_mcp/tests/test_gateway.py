"""Gateway mode in a real App: the catalog filled by discovery, the two proxy tools driven by the
scripted model (malformed parameters repaired), usage rows with the session id, favorites."""

from __future__ import annotations

import asyncio
import json

from pando_mcp.gateway import discover_into_catalog

from pando_core.testing.model_server import Reply


def gateway_config(faulty_command, threshold=2):
    python, script = faulty_command
    return (
        f"\n[mcp]\ngateway = true\nfavorite_threshold = {threshold}\n"
        f'\n[mcp.servers.faulty]\ncommand = "{python}"\nargs = ["{script}"]\n'
        '\n[mcp.servers.ghost]\ncommand = "no-such-mcp-server-binary"\n'
    )


def tool_contents(model_server):
    return {m["tool_call_id"]: m["content"] for r in model_server.requests for m in r["messages"] if m.get("role") == "tool"}


def test_catalog_search_and_proxied_calls_record_usage(model_server, make_app, faulty_command):
    app = make_app(plugins=["mcp"], model_server=model_server, config=gateway_config(faulty_command))
    report = discover_into_catalog(app, app.mcp.pool)
    assert report["faulty"] == "7 tools" and "failed to start" in report["ghost"]
    names = {tool.name for tool in app.coder_agent.tools()}
    assert {"mcp_query_catalog", "mcp_call_tool"} <= names and "faulty_echo" not in names
    model_server.script(
        Reply.tools(
            {"id": "q", "name": "mcp_query_catalog", "arguments": {"query": "echo text"}},
            {"id": "c1", "name": "mcp_call_tool", "arguments": {"tool_name": "echo", "parameters": {"text": "one"}}},
            # parameters sent as a malformed JSON string: repaired before the call
            {"id": "c2", "name": "mcp_call_tool",
             "arguments": {"tool_name": "faulty/echo", "parameters": "{'text': 'two',}"}},
            {"id": "c3", "name": "mcp_call_tool", "arguments": {"tool_name": "nope"}},
        ),
        Reply.text("done"),
    )
    session = app.sessions.create(title="gw")
    result = asyncio.run(app.coder_agent.run(session["id"], "use the catalog"))
    assert result.response == "done"
    contents = tool_contents(model_server)
    assert [t["tool_name"] for t in json.loads(contents["q"])] == ["echo"]
    assert contents["c1"] == "echo: one" and contents["c2"] == "echo: two"
    assert "no MCP tool" in contents["c3"] and "mcp_query_catalog" in contents["c3"]
    usage = app.store.mcp_catalog.usage(tool_id="faulty/echo")
    assert [(u["session_id"], u["success"], u["instance_id"]) for u in usage] == [
        (session["id"], True, app.instance_id)] * 2


def test_favorites_become_direct_tools_and_their_calls_count(model_server, make_app, faulty_command):
    app = make_app(plugins=["mcp"], model_server=model_server, config=gateway_config(faulty_command, threshold=2))
    discover_into_catalog(app, app.mcp.pool)
    model_server.script(
        Reply.tools(*({"id": f"c{i}", "name": "mcp_call_tool", "arguments": {"tool_name": "echo", "parameters": {"text": str(i)}}}
                      for i in range(2))),
        Reply.text("twice"),
    )
    session = app.sessions.create(title="fav")
    asyncio.run(app.coder_agent.run(session["id"], "call echo twice"))
    assert "faulty_echo" in {tool.name for tool in app.coder_agent.tools()}
    model_server.script(Reply.tool("faulty_echo", {"text": "fav"}, id="f1"), Reply.text("ok"))
    asyncio.run(app.coder_agent.run(session["id"], "use the favorite"))
    assert tool_contents(model_server)["f1"] == "echo: fav"
    assert len(app.store.mcp_catalog.usage(tool_id="faulty/echo")) == 3  # the favorite's call counted too


def test_discovery_runs_as_a_primary_service_at_start(model_server, make_app, faulty_command):
    import time

    app = make_app(plugins=["mcp"], model_server=model_server, config=gateway_config(faulty_command))
    service = app.services.get("mcp.discovery")
    assert service is not None and app.role == "primary"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not app.store.mcp_catalog.tools(server="faulty"):
        time.sleep(0.05)
    assert len(app.store.mcp_catalog.tools(server="faulty")) == 7
    while time.monotonic() < deadline and service.runs == 0:
        time.sleep(0.05)
    assert service.health()["servers"]["faulty"] == "7 tools"
