"""The read-only ``diagnostics`` tool in an agent turn, and ``pando lsp status|diagnostics`` as real
processes, all against a real python-lsp-server."""

from __future__ import annotations

import asyncio
import json

from pando_core.app import AppOptions
from pando_core.testing.model_server import Reply

BROKEN = "import os\n\nprint(missing_name)\n"


def test_the_diagnostics_tool_reports_a_files_errors(make_app, model_server, lsp_config, pylsp_table, pando_workdir):
    (pando_workdir / "bad.py").write_text(BROKEN)
    options = AppOptions(startup_mode="run", skip_lsp=False)  # no yolo: a read-only tool asks nothing
    app = make_app(plugins=["lsp"], model_server=model_server, options=options, config=lsp_config(60000, pylsp_table))
    tool = next(t for t in app.coder_agent.tools() if t.name == "diagnostics")
    assert tool.read_only is True
    model_server.script(Reply.tool("diagnostics", {"file_path": "bad.py"}), Reply.text("ok"))
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "check bad.py"))
    assert result.status == "success", result.error
    assert result.tool_calls[0]["is_error"] is False
    content = [m for m in model_server.requests[1]["messages"] if m["role"] == "tool"][-1]["content"]
    assert "error 3:7 undefined name 'missing_name' [pyflakes]" in content
    assert "warning 1:1 'os' imported but unused [pyflakes]" in content
    assert "Project: 1 error, 1 warning." in content


def test_no_diagnostics_tool_without_servers(make_app, lsp_config):
    app = make_app(plugins=["lsp"], options=AppOptions(startup_mode="run", skip_lsp=False), config=lsp_config(100))
    assert "diagnostics" not in [t.name for t in app.coder_agent.tools()]


def test_cli_status_lists_configured_servers(run_pando, pando_workdir, lsp_config, pylsp_table, fake_table):
    missing = '[lsp.nothing]\ncommand = "no-such-language-server-x"\nfiletypes = ["go"]\n'
    (pando_workdir / ".pando.toml").write_text(lsp_config(1000, pylsp_table, missing))
    done = run_pando("--plugins", "lsp", "lsp", "status", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["running"] == []  # no pando runs on this directory
    rows = {row["name"]: row for row in shown["configured"]}
    assert set(rows) == {"pylsp", "nothing"}
    assert rows["pylsp"]["found"] and rows["pylsp"]["extensions"] == [".py"]
    assert rows["nothing"]["found"] is None and rows["nothing"]["extensions"] == [".go"]
    text = run_pando("--plugins", "lsp", "lsp", "status")
    assert "no running pando on this directory" in text.stdout and "NOT FOUND on PATH" in text.stdout


def test_cli_diagnostics_prints_a_files_errors(run_pando, pando_workdir, lsp_config, pylsp_table):
    (pando_workdir / ".pando.toml").write_text(lsp_config(60000, pylsp_table))
    (pando_workdir / "bad.py").write_text(BROKEN)
    done = run_pando("--plugins", "lsp", "lsp", "diagnostics", "bad.py")
    assert done.returncode == 0, done.stderr
    assert "error 3:7 undefined name 'missing_name' [pyflakes]" in done.stdout
    as_json = json.loads(run_pando("--plugins", "lsp", "lsp", "diagnostics", "bad.py", "--json").stdout)
    assert [d["message"] for d in as_json["diagnostics"]] == ["undefined name 'missing_name'", "'os' imported but unused"]


def test_cli_errors_are_one_line(run_pando, pando_workdir, lsp_config, pylsp_table):
    (pando_workdir / ".pando.toml").write_text(lsp_config(60000, pylsp_table))
    (pando_workdir / "notes.txt").write_text("x\n")
    for args, expected in (
        (("nope.py",), "error: nope.py: no such file"),
        (("notes.txt",), "error: no language server handles .txt files"),
    ):
        done = run_pando("--plugins", "lsp", "lsp", "diagnostics", *args)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [expected]
    (pando_workdir / ".pando.toml").write_text('[lsp.broken]\nargs = ["x"]\nfiletypes = ["py"]\n')
    done = run_pando("--plugins", "lsp", "lsp", "status")
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "[lsp.broken] needs command" in done.stderr
