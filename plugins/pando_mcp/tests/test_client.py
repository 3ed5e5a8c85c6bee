"""The pooled client against real servers: mcp-server-time (PyPI), server-everything (npm) over
stdio, SSE and streamable HTTP, and the faulty test server for every failure the issue lists."""

from __future__ import annotations

import json
import time

import pytest
from pando_mcp.client import McpError


def test_mcp_server_time_over_stdio_lists_and_calls(pool_factory, make_spec, time_bin):
    pool = pool_factory([make_spec("time", command=time_bin, args=["--local-timezone", "UTC"])])
    tools = pool.run_sync(pool.list_tools("time"))
    assert sorted(t.name for t in tools) == ["convert_time", "get_current_time"]
    assert all(t.read_only for t in tools)  # the server marks both readOnlyHint
    outcome = pool.run_sync(pool.call_tool("time", "convert_time", {
        "source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}))
    assert not outcome.is_error
    assert json.loads(outcome.text)["target"]["datetime"].endswith("T21:00:00+09:00")


@pytest.mark.parametrize("mode", ["stdio", "sse", "streamableHttp"])
def test_server_everything_echo_over_each_transport(pool_factory, make_spec, everything_bin, everything_http, mode):
    if mode == "stdio":
        spec = make_spec("everything", command=everything_bin, args=["stdio"])
    else:
        spec = make_spec("everything", type="sse" if mode == "sse" else "http", url=everything_http(mode))
    pool = pool_factory([spec])
    names = {t.name for t in pool.run_sync(pool.list_tools("everything"))}
    assert {"echo", "get-sum", "get-tiny-image"} <= names
    outcome = pool.run_sync(pool.call_tool("everything", "echo", {"message": f"over {mode}"}))
    assert outcome.text == f"Echo: over {mode}"
    assert pool.status("everything").state == "connected"


def test_images_and_resources_are_summarised_text_joined(pool_factory, make_spec, everything_bin):
    pool = pool_factory([make_spec("everything", command=everything_bin, args=["stdio"])])
    image = pool.run_sync(pool.call_tool("everything", "get-tiny-image", {}))
    assert "[image: image/png," in image.text and "bytes]" in image.text
    assert image.text.count("\n") >= 1  # the text items around the image are kept, joined
    links = pool.run_sync(pool.call_tool("everything", "get-resource-links", {"count": 2}))
    assert links.text.count("[resource link:") == 2


def test_one_session_is_reused_across_calls(pool_factory, faulty_spec):
    pool = pool_factory([faulty_spec()])
    pids = {pool.run_sync(pool.call_tool("faulty", "state", {})).text for _ in range(5)}
    assert len(pids) == 1


def test_missing_command_fails_alone_and_says_why(pool_factory, make_spec, faulty_spec):
    pool = pool_factory([make_spec("ghost", command="no-such-mcp-server-binary"), faulty_spec()])
    found = pool.run_sync(pool.discover())
    assert isinstance(found["ghost"], McpError)
    assert 'MCP server "ghost" failed to start' in str(found["ghost"])
    assert "no-such-mcp-server-binary" in str(found["ghost"])
    assert [t.name for t in found["faulty"]][:1] == ["echo"]
    assert pool.status("ghost").state == "failed"


def test_server_that_exits_during_a_call_is_reopened_on_the_next(pool_factory, faulty_spec):
    pool = pool_factory([faulty_spec()])
    first_pid = pool.run_sync(pool.call_tool("faulty", "state", {})).text
    with pytest.raises(McpError) as info:
        pool.run_sync(pool.call_tool("faulty", "exit_now", {}), timeout=60)
    assert 'MCP server "faulty" tool call "exit_now" failed' in str(info.value)
    again = pool.run_sync(pool.call_tool("faulty", "state", {}))
    assert again.text != first_pid and again.text.isdigit()


def test_hanging_call_times_out_with_the_message_and_reconnects(pool_factory, faulty_spec):
    pool = pool_factory([faulty_spec(timeout="1s")])
    started = time.monotonic()
    with pytest.raises(McpError) as info:
        pool.run_sync(pool.call_tool("faulty", "hang", {}), timeout=60)
    assert str(info.value) == 'MCP server "faulty" timed out during tool call "hang" after 1s'
    assert time.monotonic() - started < 10
    assert pool.run_sync(pool.call_tool("faulty", "echo", {"text": "back"})).text == "echo: back"


def test_garbage_on_stdout_does_not_break_the_session(pool_factory, faulty_spec):
    pool = pool_factory([faulty_spec(garbage=True)])
    assert pool.run_sync(pool.call_tool("faulty", "echo", {"text": "a"})).text == "echo: a"
    assert pool.run_sync(pool.call_tool("faulty", "echo", {"text": "b"})).text == "echo: b"


def test_five_megabyte_result_arrives_whole(pool_factory, faulty_spec):
    pool = pool_factory([faulty_spec()])
    outcome = pool.run_sync(pool.call_tool("faulty", "big", {}), timeout=60)
    assert len(outcome.text) == 5 * 1024 * 1024


def test_schemaless_tool_gets_an_object_schema_and_error_results_keep_the_session(pool_factory, faulty_spec):
    pool = pool_factory([faulty_spec()])
    tools = {t.name: t for t in pool.run_sync(pool.list_tools("faulty"))}
    assert tools["schemaless"].input_schema == {"type": "object", "properties": {}}
    assert tools["echo"].read_only and not tools["exit_now"].read_only
    pid = pool.run_sync(pool.call_tool("faulty", "state", {})).text
    failed = pool.run_sync(pool.call_tool("faulty", "failing", {}))
    assert failed.is_error and failed.text == "this tool failed on purpose"
    assert pool.run_sync(pool.call_tool("faulty", "state", {})).text == pid


def test_disabled_tools_are_not_listed(pool_factory, faulty_spec):
    pool = pool_factory([faulty_spec(disabled_tools=["hang", "exit_now"])])
    names = {t.name for t in pool.run_sync(pool.list_tools("faulty"))}
    assert "hang" not in names and "exit_now" not in names and "echo" in names


def test_closing_the_pool_stops_stdio_servers(pool_factory, faulty_spec):
    import os

    pool = pool_factory([faulty_spec()])
    pid = int(pool.run_sync(pool.call_tool("faulty", "state", {})).text)
    pool.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"server {pid} still runs after close()")
