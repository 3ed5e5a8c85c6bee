"""The read-only ``diagnostics`` tool in an agent turn, and ``pando lsp status|diagnostics`` as real
processes, all against a real python-lsp-server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

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


SEVEN_ERRORS = "".join(f"print(missing_{i})\n" for i in range(7))


def test_the_diagnostics_tool_without_a_file_lists_the_project_per_file(make_app, model_server, lsp_config, pylsp_table):
    options = AppOptions(startup_mode="run", skip_lsp=False, yolo=True)
    app = make_app(plugins=["lsp"], model_server=model_server, options=options, config=lsp_config(60000, pylsp_table))
    model_server.script(
        Reply.tool("write", {"file_path": "few.py", "content": "import os\n"}),
        Reply.tool("write", {"file_path": "many.py", "content": SEVEN_ERRORS}),
        Reply.tool("write", {"file_path": "clean.py", "content": "x = 1\n"}),
        Reply.tool("diagnostics", {}),
        Reply.text("ok"),
    )
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "check the project"))
    assert result.status == "success", result.error
    content = [m for m in model_server.requests[4]["messages"] if m["role"] == "tool"][-1]["content"]
    lines = content.splitlines()
    assert lines[0] == "Project: 7 errors, 1 warning in the files opened so far."
    assert lines[1] == "many.py (pylsp): 7 errors, 0 warnings"  # the worst file first
    assert lines[2:7] == [f"  error {i + 1}:7 undefined name 'missing_{i}' [pyflakes]" for i in range(5)]
    assert lines[7] == "  ... and 2 more"
    assert lines[8:] == ["few.py (pylsp): 0 errors, 1 warning", "  warning 1:1 'os' imported but unused [pyflakes]"]
    assert "clean.py" not in content


def test_cli_diagnostics_of_a_directory_lists_its_files_worst_first(run_pando, pando_workdir, lsp_config, pylsp_table):
    (pando_workdir / ".pando.toml").write_text(lsp_config(60000, pylsp_table))
    (pando_workdir / ".gitignore").write_text("build/\n")
    for name, text in {"pkg/many.py": SEVEN_ERRORS, "pkg/few.py": "import os\n", "pkg/clean.py": "x = 1\n",
                       "pkg/sub/one.py": "print(nowhere)\n", "pkg/notes.txt": "hi\n", "build/gen.py": "print(ignored)\n",
                       ".hidden/h.py": "print(hidden)\n", "docs/readme.txt": "no code\n"}.items():  # fmt: skip
        (pando_workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (pando_workdir / name).write_text(text)
    done = run_pando("--plugins", "lsp", "lsp", "diagnostics", ".", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["checked"] == 4 and shown["not_checked"] == 0 and shown["notices"] == []  # not build/, not .hidden/
    assert (shown["errors"], shown["warnings"]) == (8, 1)
    assert [(Path(f["path"]).name, f["errors"], f["warnings"]) for f in shown["files"]] == [
        ("many.py", 7, 0), ("one.py", 1, 0), ("few.py", 0, 1)]  # fmt: skip
    assert len(shown["files"][0]["diagnostics"]) == 7
    text = run_pando("--plugins", "lsp", "lsp", "diagnostics", "pkg", "--top", "2")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "Project: 8 errors, 1 warning in 4 files checked under pkg."
    assert lines[1] == "pkg/many.py (pylsp): 7 errors, 0 warnings" and lines[7] == "  ... and 2 more"
    assert lines[8:] == ["pkg/sub/one.py (pylsp): 1 error, 0 warnings", "  error 1:7 undefined name 'nowhere' [pyflakes]",
                         "... and 1 more files with errors or warnings"]  # fmt: skip
    bounded = json.loads(run_pando("--plugins", "lsp", "lsp", "diagnostics", "pkg", "--max-files", "2", "--json").stdout)
    assert bounded["checked"] == 2 and bounded["not_checked"] == 2
    empty = run_pando("--plugins", "lsp", "lsp", "diagnostics", "docs")
    assert empty.returncode == 1 and empty.stderr.strip().splitlines() == ["error: no file under docs that a language server handles"]
