"""`pando mcp list|tools|call|add|remove` as a user runs them (real processes, real servers)."""

from __future__ import annotations

import json
import sys


def write_servers(workdir, faulty_command, extra=""):
    python, script = faulty_command
    (workdir / ".pando.toml").write_text(
        "# project settings: keep this comment\n[agent]\nmodel = \"x/y\"  # and this one\n\n"
        f'[mcp.servers.faulty]\ncommand = "{python}"\nargs = ["{script}"]\n' + extra
    )


def test_list_shows_source_type_status_tools_and_errors(pando_workdir, run_pando, faulty_command):
    write_servers(pando_workdir, faulty_command)
    (pando_workdir / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "ghost": {"command": "${GHOST_BIN:-no-such-mcp-binary}"},
        "faulty": {"command": "shadowed-by-pando"},
        "off": {"type": "http", "url": "http://127.0.0.1:9/mcp", "enabled": False},
    }}))
    done = run_pando("--plugins", "mcp", "mcp", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["faulty"]["source"] == str(pando_workdir / ".pando.toml")
    assert (rows["faulty"]["status"], rows["faulty"]["tools"], rows["faulty"]["type"]) == ("ok", 7, "stdio")
    assert rows["ghost"]["source"] == str(pando_workdir / ".mcp.json") and rows["ghost"]["status"] == "failed"
    assert "no-such-mcp-binary" in rows["ghost"]["last_error"]
    assert rows["off"]["status"] == "disabled" and rows["off"]["type"] == "http"
    text = run_pando("--plugins", "mcp", "mcp", "list")
    assert "faulty  [stdio]  ok  7 tools" in text.stdout and "Traceback" not in text.stderr


def test_tools_and_call(pando_workdir, run_pando, faulty_command):
    write_servers(pando_workdir, faulty_command)
    tools = run_pando("--plugins", "mcp", "mcp", "tools", "faulty", "--json")
    assert tools.returncode == 0, tools.stderr
    by_name = {t["name"]: t for t in json.loads(tools.stdout)}
    assert by_name["echo"]["input_schema"]["properties"] == {"text": {"type": "string"}} and by_name["echo"]["read_only"]
    ok = run_pando("--plugins", "mcp", "mcp", "call", "faulty", "echo", "--args", '{"text": "hi"}')
    assert (ok.returncode, ok.stdout) == (0, "echo: hi\n")
    failing = run_pando("--plugins", "mcp", "mcp", "call", "faulty", "failing")
    assert (failing.returncode, failing.stdout) == (1, "this tool failed on purpose\n")
    unknown = run_pando("--plugins", "mcp", "mcp", "call", "nobody", "echo")
    assert unknown.returncode == 1 and unknown.stderr.strip() == 'error: no MCP server named "nobody" (see pando mcp list)'
    bad = run_pando("--plugins", "mcp", "mcp", "call", "faulty", "echo", "--args", "not json")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_add_and_remove_keep_the_rest_of_the_file(pando_workdir, run_pando, faulty_command, time_bin):
    write_servers(pando_workdir, faulty_command)
    before = (pando_workdir / ".pando.toml").read_text()
    added = run_pando("--plugins", "mcp", "mcp", "add", "time", "--env", "TZ=UTC", "--", time_bin, "--local-timezone", "UTC")
    assert added.returncode == 0, added.stderr
    text = (pando_workdir / ".pando.toml").read_text()
    assert text.startswith(before) and "# and this one" in text
    called = run_pando("--plugins", "mcp", "mcp", "call", "time", "get_current_time", "--args", '{"timezone": "UTC"}')
    assert called.returncode == 0 and json.loads(called.stdout)["timezone"] == "UTC"
    remote = run_pando("--plugins", "mcp", "mcp", "add", "docs", "--url", "http://127.0.0.1:9/sse", "--transport", "sse")
    assert remote.returncode == 0, remote.stderr
    again = run_pando("--plugins", "mcp", "mcp", "add", "docs", "--url", "http://x/mcp")
    assert again.returncode == 1 and "already exists" in again.stderr
    for name in ("time", "docs"):
        assert run_pando("--plugins", "mcp", "mcp", "remove", name).returncode == 0
    assert (pando_workdir / ".pando.toml").read_text() == before
    missing = run_pando("--plugins", "mcp", "mcp", "remove", "time")
    assert missing.returncode == 1 and "no MCP server 'time'" in missing.stderr
    neither = run_pando("--plugins", "mcp", "mcp", "add", "x")
    assert neither.returncode == 1 and "give either a command after -- or --url URL" in neither.stderr
    assert sys.executable  # the servers above ran with this interpreter
