"""Lua hook sites change the agent's behaviour in real runs against the scripted model server."""

from __future__ import annotations

import asyncio
import json

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

SCRIPT = """
function hook_user_prompt(ctx)
  return {modified_content = "REWRITTEN: " .. ctx.user_content}
end
function hook_system_prompt(ctx)
  return {system_prompt = ctx.system_prompt .. "\\nLUA-WAS-HERE"}
end
function hook_template_section(ctx)
  if ctx.section_name == "environment" then return {section_content = ""} end
  return nil
end
function hook_capability_check(ctx)
  if ctx.capability == "fetch" then return {available = false} end
  return nil
end
_G["bash-input"] = function(ctx)
  ctx.command = "echo filtered"
  return ctx
end
function global_output(ctx)
  return {output = ctx.output .. " [lua]"}
end
"""


def test_hook_sites_in_an_agent_run(model_server, make_app, pando_workdir):
    (pando_workdir / "hooks.lua").write_text(SCRIPT)
    app = make_app(plugins=["lua"], model_server=model_server, config='\n[lua]\nscripts = ["hooks.lua"]\n')
    app.permissions.yolo = True
    model_server.script(Reply.tool("bash", {"command": "rm -rf /tmp/nothing"}), Reply.text("done"))
    session = app.sessions.create(title="t")
    result = asyncio.run(app.coder_agent.run(session["id"], "hello"))
    assert result.status == "success", result.error
    first = model_server.requests[0]
    system = first["messages"][0]["content"]
    assert "LUA-WAS-HERE" in system  # system prompt changed
    assert "<env>" not in system  # a section dropped
    assert first["messages"][-1]["content"] == "REWRITTEN: hello"  # prompt rewritten
    assert "fetch" not in [t["function"]["name"] for t in first["tools"]]  # capability turned off
    assert json.loads(result.tool_calls[0]["input"]) == {"command": "rm -rf /tmp/nothing"}
    tool_message = [m for m in model_server.requests[1]["messages"] if m["role"] == "tool"][0]
    assert tool_message["content"].startswith("filtered")  # arguments rewritten before running
    assert tool_message["content"].endswith(" [lua]")  # output rewritten


def test_hot_reload_between_turns_is_done_by_the_engine(model_server, make_app, pando_workdir):
    """The wiring calls the engine once per hook; the engine's own per-call check picks up the edit."""
    import os

    script = pando_workdir / "live.lua"
    script.write_text('function hook_user_prompt(ctx) return {modified_content = "ONE"} end\n')
    app = make_app(plugins=["lua"], model_server=model_server, config='\n[lua]\nscripts = ["live.lua"]\n')
    calls: list[str] = []
    engine = app.lua.engine
    original = engine.reload_if_changed
    engine.reload_if_changed = lambda: calls.append("reload") or original()  # the plugin must not call it
    model_server.script(Reply.text("a"), Reply.text("b"))
    session = app.sessions.create(title="t")
    assert asyncio.run(app.coder_agent.run(session["id"], "hello")).status == "success"
    script.write_text('function hook_user_prompt(ctx) return {modified_content = "TWO!"} end\n')
    stat = script.stat()
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert asyncio.run(app.coder_agent.run(session["id"], "again")).status == "success"
    assert model_server.requests[0]["messages"][-1]["content"] == "ONE"
    assert model_server.requests[1]["messages"][-1]["content"] == "TWO!"
    assert calls == []


def test_strict_load_error_refuses_to_start(model_server, pando_workdir, run_pando):
    write_model_config(
        pando_workdir, model_server.base_url, extra='\n[lua]\nstrict = true\nscripts = ["bad.lua"]\n'
    )
    (pando_workdir / "bad.lua").write_text("this is not lua (")
    result = run_pando("--plugins", "lua", "run", "hi", timeout=60)
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and "bad.lua" in result.stderr
    assert "Traceback" not in result.stderr


def test_lua_cli(pando_workdir, run_pando):
    (pando_workdir / "t.lua").write_text(SCRIPT)
    lua = ("--plugins", "lua", "lua")
    check = run_pando(*lua, "check", "t.lua")
    assert check.returncode == 0 and "hook_user_prompt" in check.stdout and "bash-input" in check.stdout
    hook = run_pando(*lua, "run", "t.lua", "--hook", "user_prompt", "--input", '{"user_content": "x"}')
    assert json.loads(hook.stdout) == {"modified_content": "REWRITTEN: x"}
    filt = run_pando(*lua, "run", "t.lua", "--hook", "bash-input", "--input", '{"command": "ls"}')
    assert json.loads(filt.stdout) == {"command": "echo filtered"}


def test_no_scripts_builds_no_engine(model_server, make_app):
    """The default (no scripts): no Lua runtime, no app.lua, every hook returns at once."""
    app = make_app(plugins=["lua"], model_server=model_server)
    assert "lua" not in app.subsystems and getattr(app, "lua", None) is None


def test_bad_config_is_refused_even_without_scripts(model_server, make_app):
    from pando_core.errors import ConfigError

    with pytest.raises(ConfigError, match="lua.timeout"):
        make_app(plugins=["lua"], model_server=model_server, config='\n[lua]\ntimeout = "soon"\n')


def test_lua_cli_filter_name_spellings(tmp_path):
    """`--hook` takes `<tool>-input` and `<tool>_input` alike (the engine's own parsing)."""
    from pando_lua.cli import build_cli
    from typer.testing import CliRunner

    script = tmp_path / "t.lua"
    script.write_text(SCRIPT)
    runner = CliRunner()
    for hook in ("bash-input", "bash_input"):
        result = runner.invoke(
            build_cli(), ["run", str(script), "--hook", hook, "--input", '{"command": "ls"}']
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"command": "echo filtered"}
    out = runner.invoke(
        build_cli(), ["run", str(script), "--hook", "grep_output", "--input", '{"output": "x"}']
    )
    assert json.loads(out.stdout) == {"output": "x [lua]"}  # no grep/builtin filter: global_output


@pytest.mark.parametrize("hook", ["nope", "hook_nope", "nope-input"])
def test_lua_run_with_a_hook_the_script_does_not_define_is_a_one_line_error(hook, tmp_path):
    """Issue 18 #9: it printed {} and exited 0."""
    from pando_lua.cli import build_cli
    from typer.testing import CliRunner

    script = tmp_path / "t.lua"
    script.write_text("function hook_user_prompt(ctx) return ctx end\n")
    result = CliRunner().invoke(build_cli(), ["run", str(script), "--hook", hook])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "defines no" in lines[0] and "hook_user_prompt" in lines[0]
