"""`pando --plugins mcp run` with the scripted model server calling MCP tools, in real processes:
a failing server (missing command) next to working ones, text and stream-json output, a
permission denial for a tool its server does not mark read-only."""

from __future__ import annotations

import json

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config


def configure(workdir, model_server, faulty_command, time_bin):
    python, script = faulty_command
    servers = (
        f'\n[mcp.servers.faulty]\ncommand = "{python}"\nargs = ["{script}"]\n'
        f'\n[mcp.servers.time]\ncommand = "{time_bin}"\nargs = ["--local-timezone", "UTC"]\n'
        '\n[mcp.servers.ghost]\ncommand = "no-such-mcp-server-binary"\n'
    )
    write_model_config(workdir, model_server.base_url, extra=servers)


def tool_messages(model_server) -> dict[str, str]:
    """The tool results the model was sent, by tool call id."""
    out = {}
    for request in model_server.requests:
        for message in request["messages"]:
            if message.get("role") == "tool":
                out[message["tool_call_id"]] = message["content"]
    return out


def offered_tools(model_server) -> set[str]:
    return {t["function"]["name"] for t in model_server.requests[0].get("tools", [])}


def test_run_calls_mcp_tools_and_a_missing_server_costs_nothing_else(model_server, pando_workdir, run_pando,
                                                                       faulty_command, time_bin):
    configure(pando_workdir, model_server, faulty_command, time_bin)
    model_server.script(
        Reply.tools(
            {"id": "c1", "name": "time_get_current_time", "arguments": {"timezone": "UTC"}},
            {"id": "c2", "name": "faulty_echo", "arguments": {"text": "hello"}},
            {"id": "c3", "name": "faulty_hang_is_not_a_tool", "arguments": {}},
        ),
        Reply.text("It is now in UTC."),
    )
    result = run_pando("--plugins", "mcp", "run", "what time is it")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "It is now in UTC.\n"
    assert {"time_get_current_time", "time_convert_time", "faulty_echo", "faulty_schemaless"} <= offered_tools(model_server)
    results = tool_messages(model_server)
    assert json.loads(results["c1"])["timezone"] == "UTC"
    assert results["c2"] == "echo: hello"
    assert "not found" in results["c3"].lower()
    assert 'MCP server "ghost" failed to start' in result.stderr  # one notice, and the turn went on


def test_stream_json_shows_the_mcp_call_and_its_result(model_server, pando_workdir, run_pando, faulty_command, time_bin):
    configure(pando_workdir, model_server, faulty_command, time_bin)
    model_server.script(Reply.tool("faulty_echo", {"text": "streamed"}, id="s1"), Reply.text("done"))
    result = run_pando("--plugins", "mcp", "run", "-f", "stream-json", "echo it")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    calls = [e for e in events if e["type"] == "tool_call"]
    outputs = [e for e in events if e["type"] == "tool_result"]
    assert [c["name"] for c in calls] == ["faulty_echo"] and json.loads(calls[0]["input"]) == {"text": "streamed"}
    assert [o["id"] for o in outputs] == ["s1"] and "echo: streamed" in json.dumps(outputs[0])
    assert events[-1]["type"] == "result" and events[-1]["status"] == "success"


def test_a_tool_not_marked_read_only_is_refused_without_yolo(model_server, pando_workdir, run_pando, faulty_command, time_bin):
    configure(pando_workdir, model_server, faulty_command, time_bin)
    model_server.script(Reply.tool("faulty_state", {}, id="d1"), Reply.text("refused, fine"))
    denied = run_pando("--plugins", "mcp", "run", "get the pid")
    assert denied.returncode == 1, denied.stderr  # pando run reports a refused tool call
    assert 'pando: permission denied: faulty_state execute MCP server "faulty" tool "state" {}' in denied.stderr
    assert "Traceback" not in denied.stderr
    model_server.clear()
    model_server.script(Reply.tool("faulty_state", {}, id="y1"), Reply.text("ran"))
    allowed = run_pando("--plugins", "mcp", "run", "--yolo", "get the pid")
    assert allowed.returncode == 0, allowed.stderr
    assert tool_messages(model_server)["y1"].isdigit()
