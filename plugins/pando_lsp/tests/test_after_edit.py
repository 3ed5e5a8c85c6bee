"""Diagnostics appended to edit/write results, through real agent turns (scripted model server)
against a real python-lsp-server with pyflakes, and against fake servers that crash or stay silent."""

from __future__ import annotations

import asyncio
import time

from pando_core.app import AppOptions
from pando_core.testing.model_server import Reply

OPTIONS = dict(startup_mode="run", skip_lsp=False, yolo=True)


def _lsp_app(make_app, model_server, config):
    return make_app(plugins=["lsp"], model_server=model_server, options=AppOptions(**OPTIONS), config=config)


def _turn(app, prompt="go"):
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], prompt))
    assert result.status == "success", result.error
    return result


def _tool_message(model_server, index):
    return [m for m in model_server.requests[index]["messages"] if m["role"] == "tool"][-1]["content"]


def test_write_with_an_undefined_name_gets_the_diagnostic_and_a_fix_clears_it(make_app, model_server, lsp_config, pylsp_table):
    app = _lsp_app(make_app, model_server, lsp_config(60000, pylsp_table))
    model_server.script(
        Reply.tool("write", {"file_path": "mod.py", "content": "def f():\n    return undefined_thing\n"}),
        Reply.tool("view", {"file_path": "mod.py"}),
        Reply.tool("edit", {"file_path": "mod.py", "old_string": "undefined_thing", "new_string": "42"}),
        Reply.text("done"),
    )
    _turn(app)
    after_write = _tool_message(model_server, 1)
    assert "LSP: new errors and warnings in mod.py (pylsp) since this edit:" in after_write
    assert "error 2:12 undefined name 'undefined_thing' [pyflakes]" in after_write
    assert "Project: 1 error, 0 warnings." in after_write
    after_edit = _tool_message(model_server, 3)
    assert "undefined_thing" not in after_edit.split("\n\n", 1)[-1]
    assert "LSP: no errors or warnings in mod.py (pylsp)." in after_edit
    assert "Project: 0 errors, 0 warnings." in after_edit
    assert [row["state"] for row in app.lsp.status()] == ["running"]


def test_a_file_type_without_a_server_gets_nothing_appended(make_app, model_server, lsp_config, pylsp_table):
    app = _lsp_app(make_app, model_server, lsp_config(60000, pylsp_table))
    model_server.script(Reply.tool("write", {"file_path": "notes.txt", "content": "hello\n"}), Reply.text("ok"))
    _turn(app)
    content = _tool_message(model_server, 1)
    assert "LSP" not in content and "Project:" not in content
    assert [row["state"] for row in app.lsp.status()] == ["not started"]  # lazily: no .py file yet


def test_a_crashing_server_is_a_notice_and_is_restarted_once(make_app, model_server, lsp_config, fake_table, tmp_path):
    counter = tmp_path / "starts"
    app = _lsp_app(make_app, model_server, lsp_config(20000, fake_table("crashing_server.py", [".py"], str(counter))))
    model_server.script(
        Reply.tool("write", {"file_path": "a.py", "content": "x = 1\n"}),
        Reply.tool("write", {"file_path": "b.py", "content": "y = 2\n"}),
        Reply.tool("write", {"file_path": "c.py", "content": "z = 3\n"}),
        Reply.text("ok"),
    )
    result = _turn(app)
    assert [call["is_error"] for call in result.tool_calls] == [False, False, False]
    for index in (1, 2, 3):
        content = _tool_message(model_server, index)
        notices = [line for line in content.splitlines() if line.startswith("lsp: ")]
        assert len(notices) == 1, content
        assert "crashing_server" in notices[0]
    assert "not restarting" in _tool_message(model_server, 3) or "failed again" in _tool_message(model_server, 3)
    assert counter.read_text() == "2"  # first start + one restart, never a third
    assert app.lsp.status()[0]["state"] == "failed"


def test_a_server_that_never_answers_ends_the_wait_at_wait_ms(make_app, model_server, lsp_config, fake_table):
    app = _lsp_app(make_app, model_server, lsp_config(1500, fake_table("silent_server.py", [".py"])))
    model_server.script(Reply.tool("write", {"file_path": "a.py", "content": "x = 1\n"}), Reply.text("ok"))
    began = time.monotonic()
    result = _turn(app)
    elapsed = time.monotonic() - began
    assert result.tool_calls[0]["is_error"] is False
    assert "lsp: silent_server did not answer within 1500 ms" in _tool_message(model_server, 1)
    assert 1.4 < elapsed < 30
    began = time.monotonic()
    app.shutdown()  # the silent server ignores shutdown: killed within the 5 s budget
    assert time.monotonic() - began < 7


def test_enabled_false_starts_nothing(make_app, model_server, lsp_config, pylsp_table):
    app = _lsp_app(make_app, model_server, lsp_config(60000, pylsp_table).replace("[lsp]\n", "[lsp]\nenabled = false\n"))
    assert getattr(app, "lsp", None) is None


def test_skip_lsp_starts_nothing(make_app, model_server, lsp_config, pylsp_table):
    options = AppOptions(startup_mode="run", skip_lsp=True)
    app = make_app(plugins=["lsp"], model_server=model_server, options=options, config=lsp_config(60000, pylsp_table))
    assert getattr(app, "lsp", None) is None


def test_pando_run_gets_diagnostics_and_skip_lsp_turns_them_off(run_pando, pando_workdir, model_server, lsp_config, pylsp_table):
    """`pando run` is headless but edits files: it gets the diagnostics unless --skip-lsp is given."""
    from pando_core.testing.pytest_plugin import write_model_config

    write_model_config(pando_workdir, model_server.base_url, extra=lsp_config(60000, pylsp_table))
    for index, args in enumerate((["run", "--yolo"], ["--skip-lsp", "run", "--yolo"], ["run", "--yolo", "--skip-lsp"])):
        source = f"def f{index}():\n    return undefined_{index}\n"
        model_server.script(Reply.tool("write", {"file_path": f"m{index}.py", "content": source}), Reply.text("ok"))
        ran = run_pando(*args, "go")
        assert ran.returncode == 0, ran.stderr
        content = _tool_message(model_server, len(model_server.requests) - 1)
        if index == 0:
            assert f"undefined name 'undefined_{index}'" in content
        else:
            assert "LSP" not in content, args


def test_an_edit_gets_only_the_errors_it_introduced(make_app, model_server, lsp_config, pylsp_table, pando_workdir):
    """A file with an error from before: the edit that adds a second one gets only that one."""
    (pando_workdir / "old.py").write_text("def f():\n    return alpha\n")
    (pando_workdir / "other.py").write_text("import os\n")  # a warning elsewhere in the project
    app = _lsp_app(make_app, model_server, lsp_config(60000, pylsp_table))
    app.lsp.run(app.lsp.check(pando_workdir / "other.py"), 60)
    model_server.script(
        Reply.tool("view", {"file_path": "old.py"}),  # edit wants the file read first
        Reply.tool("edit", {"file_path": "old.py", "old_string": "return alpha", "new_string": "return alpha + beta"}),
        Reply.tool("edit", {"file_path": "old.py", "old_string": "def f():", "new_string": "def f(unused=1):"}),
        Reply.tool("edit", {"file_path": "old.py", "old_string": " + beta", "new_string": ""}),
        Reply.tool("patch", {"patch_text": "*** Begin Patch\n*** Update File: old.py\n@@\n-    return alpha\n+    return alpha or gamma\n*** End Patch\n"}),
        Reply.text("done"),
    )
    result = _turn(app)
    assert [call["is_error"] for call in result.tool_calls] == [False] * 5, [m["content"] for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
    introduced = _tool_message(model_server, 2)
    assert "LSP: new errors and warnings in old.py (pylsp) since this edit:" in introduced
    assert "error 2:20 undefined name 'beta' [pyflakes]" in introduced
    assert "alpha" not in introduced.split("LSP:", 1)[1]  # the error from before is not repeated
    assert "(1 more from before this edit, not listed)" in introduced
    assert "Project: 2 errors, 1 warning." in introduced
    unchanged = _tool_message(model_server, 3)  # an edit that breaks nothing new
    assert "LSP: no new errors or warnings in old.py (pylsp); 2 from before this edit." in unchanged
    fixed = _tool_message(model_server, 4)
    assert "LSP: no new errors or warnings in old.py (pylsp); 1 from before this edit." in fixed
    assert "Project: 1 error, 1 warning." in fixed
    patched = _tool_message(model_server, 5)
    assert "error 2:21 undefined name 'gamma' [pyflakes]" in patched and "'alpha'" not in patched
    assert "(1 more from before this edit, not listed)" in patched


def test_new_since_is_at_most_ten_and_ignores_positions():
    from pando_lsp.manager import Report, format_report, new_since

    def diag(line, message):
        return {"range": {"start": {"line": line, "character": 0}}, "severity": 1, "message": message, "source": "x"}

    before = [diag(0, "undefined name 'a'"), diag(5, "undefined name 'a'")]
    after = [diag(3, "undefined name 'a'"), diag(9, "undefined name 'a'"), diag(12, "undefined name 'a'")]
    assert new_since(after, before) == [after[2]]  # two of the same from before cancel two, wherever they moved
    many = [diag(i, f"undefined name 'n{i}'") for i in range(14)]
    from pathlib import Path

    text = format_report(Report(Path("/w/m.py"), "x", many + before, 16, 0, answered=True), Path("/w"), before)
    listed = [line for line in text.splitlines() if line.startswith("  error")]
    assert len(listed) == 10 and "  ... and 4 more new" in text and "(2 more from before this edit, not listed)" in text
