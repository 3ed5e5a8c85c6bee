"""`pando mcp-server` driven by a real SDK client in a separate process, over stdio and HTTP."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parent / "servers" / "sdk_client.py"


def sdk_client(*args: str, env: dict, cwd: Path, call: str = "", call_args: dict | None = None) -> dict:
    run_env = dict(env, CALL=call, ARGS=json.dumps(call_args or {}))
    done = subprocess.run([sys.executable, str(CLIENT), *args], env=run_env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def pando_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pando_core", "--plugins", "mcp", "mcp-server", *args]


def stored_tool_calls(workdir: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{workdir}/.pando/pando.db?mode=ro", uri=True)
    try:
        sessions = db.execute("SELECT id, title FROM sessions").fetchall()
        rows = db.execute("SELECT session_id, role, parts FROM messages ORDER BY seq").fetchall()
    finally:
        db.close()
    titles = dict(sessions)
    out = []
    for session_id, _role, parts in rows:
        for part in json.loads(parts):
            if part["type"] == "tool_result":
                out.append((titles[session_id], part["data"]["name"]))
    return out


def test_stdio_client_lists_read_only_tools_and_calls_view(pando_workdir, pando_env):
    (pando_workdir / "notes.txt").write_text("hello from the workdir\n")
    out = sdk_client("stdio", "--", *pando_argv(), env=pando_env, cwd=pando_workdir,
                     call="view", call_args={"file_path": "notes.txt"})
    assert set(out["tools"]) == {"view", "ls", "glob", "grep"} and all(out["tools"].values())
    assert "hello from the workdir" in out["result"]["text"] and not out["result"]["is_error"]
    assert stored_tool_calls(pando_workdir) == [("MCP client mcp", "view")]


def test_write_and_bash_only_when_allowed_and_still_under_permissions(pando_workdir, pando_env):
    (pando_workdir / ".pando.toml").write_text("[mcp_server]\nallow_write = true\nallow_bash = true\n")
    out = sdk_client("stdio", "--", *pando_argv(), env=pando_env, cwd=pando_workdir,
                     call="write", call_args={"file_path": "new.txt", "content": "x"})
    assert {"write", "edit", "patch", "bash"} <= set(out["tools"]) and not out["tools"]["write"]
    assert out["result"]["is_error"] and "Permission denied" in out["result"]["text"]
    assert not (pando_workdir / "new.txt").exists()
    (pando_workdir / ".pando.toml").write_text(
        '[mcp_server]\nallow_write = true\n\n[permissions]\nallow_tools = ["write"]\n')
    out = sdk_client("stdio", "--", *pando_argv(), env=pando_env, cwd=pando_workdir,
                     call="write", call_args={"file_path": "new.txt", "content": "x"})
    assert not out["result"]["is_error"], out
    assert (pando_workdir / "new.txt").read_text() == "x"


def test_http_client_lists_and_calls_on_loopback(pando_workdir, pando_env, listening_process):
    (pando_workdir / "a.txt").write_text("over http\n")
    _, port = listening_process(pando_argv("--http", "--host", "127.0.0.1"), env=pando_env, cwd=pando_workdir)
    url = f"http://127.0.0.1:{port}/mcp"
    first = sdk_client("http", url, env=pando_env, cwd=pando_workdir, call="grep", call_args={"pattern": "over"})
    second = sdk_client("http", url, env=pando_env, cwd=pando_workdir, call="ls", call_args={})
    assert "a.txt" in first["result"]["text"] and "a.txt" in second["result"]["text"]
    calls = stored_tool_calls(pando_workdir)
    assert [name for _, name in calls] == ["grep", "ls"]


def test_non_loopback_bind_needs_a_token_and_answers_401_without_it(pando_workdir, pando_env, listening_process):
    refused = subprocess.run(pando_argv("--http", "--host", "127.0.0.2", "--port", "9"), env=pando_env,
                             cwd=pando_workdir, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: binding to 127.0.0.2 exposes pando's tools to the network: set [mcp_server] token or PANDO_MCP_TOKEN"]
    env = dict(pando_env, PANDO_MCP_TOKEN="s3cret-token")
    _, port = listening_process(pando_argv("--http", "--host", "127.0.0.2"), host="127.0.0.2", env=env, cwd=pando_workdir)
    url = f"http://127.0.0.2:{port}/mcp"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=30)
        assert info.value.code == 401
    out = sdk_client("http", url, "s3cret-token", env=pando_env, cwd=pando_workdir, call="ls", call_args={})
    assert set(out["tools"]) == {"view", "ls", "glob", "grep"} and not out["result"]["is_error"]
