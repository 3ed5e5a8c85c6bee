"""Patch results, pull diagnostics and shutdown, with real server processes."""

from __future__ import annotations

import asyncio
import os
import time

from pando_core.app import AppOptions
from pando_core.testing.model_server import Reply


def _app(make_app, model_server, config):
    options = AppOptions(startup_mode="run", skip_lsp=False, yolo=True)
    return make_app(plugins=["lsp"], model_server=model_server, options=options, config=config)


def _turn(app):
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "go"))
    assert result.status == "success", result.error
    return result


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_patch_gets_each_added_files_diagnostics_and_shutdown_stops_the_server(
    make_app, model_server, lsp_config, pylsp_table
):
    app = _app(make_app, model_server, lsp_config(60000, pylsp_table))
    patch = "*** Begin Patch\n*** Add File: pkg/one.py\n+print(nowhere)\n*** Add File: notes.md\n+# hi\n*** End Patch\n"
    model_server.script(Reply.tool("patch", {"patch_text": patch}), Reply.text("ok"))
    _turn(app)
    content = [m for m in model_server.requests[1]["messages"] if m["role"] == "tool"][-1]["content"]
    assert "LSP: new errors and warnings in pkg/one.py (pylsp) since this edit:" in content
    assert "error 1:7 undefined name 'nowhere' [pyflakes]" in content
    assert "notes.md (" not in content
    (row,) = app.lsp.status()
    assert row["state"] == "running" and _alive(row["pid"])
    began = time.monotonic()
    app.shutdown()
    assert time.monotonic() - began < 6
    deadline = time.monotonic() + 5
    while _alive(row["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(row["pid"])


def test_pull_diagnostics_are_used_when_the_server_offers_them(make_app, model_server, lsp_config, fake_table):
    app = _app(make_app, model_server, lsp_config(30000, fake_table("pull_server.py", [".txt"])))
    model_server.script(
        Reply.tool("write", {"file_path": "plan.txt", "content": "step one\nTODO step two\n"}),
        Reply.tool("diagnostics", {"file_path": "plan.txt"}),
        Reply.text("ok"),
    )
    began = time.monotonic()
    _turn(app)
    assert time.monotonic() - began < 15  # answered by the pull, not by waiting out wait_ms
    for index in (1, 2):
        content = [m for m in model_server.requests[index]["messages"] if m["role"] == "tool"][-1]["content"]
        assert "warning 2:1 TODO left [pull]" in content
        assert "Project: 0 errors, 1 warning." in content
