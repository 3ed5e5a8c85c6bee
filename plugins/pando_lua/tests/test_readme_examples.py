"""Every ```lua block of the README compiles in the sandbox and does what the README says in a real
agent run against the scripted model server (one test per example, registered with ``@example``)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pando_lua.engine import LuaEngine

from pando_core.agent.prompt import TOOL_GUIDANCE
from pando_core.testing.model_server import Reply
from pando_core.testing.model_server import last_user_text as user_text

PLUGIN_DIR = Path(__file__).resolve().parents[1]
README = PLUGIN_DIR / "README.md"
WIRING = PLUGIN_DIR / "pando_lua" / "plugin.py"
CONFIG = '\n[lua]\nstrict = true\nscripts = ["x.lua"]\n'  # strict: a broken example fails loudly


def _readme_blocks() -> list[tuple[str, str]]:
    """(heading, code) for every ```lua block; the heading is the nearest one above, backticks removed."""
    blocks: list[tuple[str, str]] = []
    heading, code = "", None
    for line in README.read_text(encoding="utf-8").splitlines():
        if code is not None:
            if line.strip() == "```":
                blocks.append((heading, "\n".join(code) + "\n"))
                code = None
            else:
                code.append(line)
        elif line.startswith("#"):
            heading = line.lstrip("#").strip().replace("`", "")
        elif line.strip() == "```lua":
            code = []
    assert code is None, "unterminated ```lua block in the README"
    return blocks


BLOCKS = _readme_blocks()
EXAMPLES = dict(BLOCKS)
CHECKS: dict[str, Callable[..., None]] = {}


def example(heading: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Marks the test that runs the README example under ``heading`` through the agent."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        CHECKS[heading] = fn
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# The README itself
# ---------------------------------------------------------------------------------------------
def test_one_example_per_heading():
    headings = [h for h, _ in BLOCKS]
    assert len(headings) == len(set(headings)), headings
    assert len(BLOCKS) >= 17


def test_every_wired_hook_is_documented_with_an_example():
    wired = set(re.findall(r'lua\.hook\(\s*"(\w+)"', WIRING.read_text(encoding="utf-8")))
    assert len(wired) == 11, wired  # every hook site of plugin.py
    documented = set(EXAMPLES)
    for name in wired:
        assert f"hook_{name}" in documented
    for fallback in (
        "<tool>-input",
        "<tool>-output",
        "hook_global",
        "builtin-input / builtin-output",
        "global-input / global-output",
    ):
        assert fallback in documented


def test_every_example_is_run_by_an_agent_test():
    assert set(CHECKS) == set(EXAMPLES)


@pytest.mark.parametrize("heading", list(EXAMPLES))
def test_example_compiles_in_the_sandbox(heading, tmp_path):
    path = tmp_path / "example.lua"
    path.write_text(EXAMPLES[heading], encoding="utf-8")
    engine = LuaEngine([path], strict=True)  # raises LuaLoadError if it does not load
    try:
        defined = engine.defined_hooks()
    finally:
        engine.close()
    assert defined
    if heading.startswith("hook_"):
        assert heading in defined
    elif heading.startswith("<tool>-"):
        direction = heading.removeprefix("<tool>-")
        assert any(n.endswith((f"-{direction}", f"_{direction}")) for n in defined)
    elif "/" in heading:
        server = heading.split("-", 1)[0]
        assert any(n.startswith((f"{server}-", f"{server}_")) for n in defined), defined


# ---------------------------------------------------------------------------------------------
# The examples in agent runs
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def agent(make_app, model_server, pando_workdir, caplog):
    """agent(heading) -> App running that README example as its only Lua script (strict)."""
    caplog.set_level(logging.DEBUG, logger="pando.lua")

    def make(heading: str):
        (pando_workdir / "x.lua").write_text(EXAMPLES[heading], encoding="utf-8")
        app = make_app(plugins=["lua"], model_server=model_server, config=CONFIG)
        app.permissions.yolo = True
        return app

    yield make
    problems = [
        r.getMessage() for r in caplog.records if r.name == "pando.lua" and r.levelno >= logging.WARNING
    ]
    assert not problems


def one_turn(app, model_server, *replies):
    """Script ``replies``, then run one turn (prompt "hello") in a new session: (session, result)."""
    model_server.script(*replies)
    session = app.sessions.create(title="t")
    return session, run(app, session["id"])


def turns(app, model_server, *prompts: str) -> list[dict]:
    """One turn per prompt (each answered "ok") in one new session: the model requests."""
    model_server.script(*(Reply.text("ok") for _ in prompts))
    session = app.sessions.create(title="t")
    for prompt in prompts:
        run(app, session["id"], prompt)
    return model_server.requests


def run(app, session_id: str, prompt: str = "hello"):
    result = asyncio.run(app.coder_agent.run(session_id, prompt))
    assert result.status == "success", result.error
    return result


def system_prompt(request: dict) -> str:
    assert request["messages"][0]["role"] == "system"
    return request["messages"][0]["content"]


def tool_outputs(request: dict) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in request["messages"] if m["role"] == "tool"}


def lua_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pando.lua"]


@example("Writing a script")
def test_overview_example(agent, model_server):
    app = agent("Writing a script")
    model_server.script(Reply.tool("bash", {"command": "seq 1 300"}, id="c1"), Reply.text("done"))
    session = app.sessions.create(title="t")
    run(app, session["id"], "use sk-live123 please")
    first, second = model_server.requests
    assert system_prompt(first).endswith("\n\nAlways answer in Spanish.")
    assert user_text(first) == "use [REDACTED] please"
    lines = tool_outputs(second)["c1"].splitlines()
    assert "200" in lines and "201" not in lines  # head_limit = 200 added by bash-input


@example("hook_session_start")
def test_session_start(agent, caplog):
    app = agent("hook_session_start")
    app.sessions.create(title="refactor the parser")
    assert "lua[x.lua]: session started: refactor the parser" in lua_logs(caplog)


@example("hook_session_restore")
def test_session_restore(agent, model_server, caplog):
    app = agent("hook_session_restore")
    session, _ = one_turn(app, model_server, Reply.text("hi"))
    app.sessions.restore(session["id"][:8])
    assert 'lua[x.lua]: continuing "t" (2 messages)' in lua_logs(caplog)


@example("hook_provider_select")
def test_provider_select(agent, model_server):
    app = agent("hook_provider_select")
    _, result = one_turn(app, model_server, Reply.text("hi"))
    assert model_server.requests[0]["model"] == "gpt-4o-mini"  # configured: scripted/test-model
    assert result.model == "scripted/gpt-4o-mini"


def test_provider_select_sees_the_model_of_the_turn(make_app, model_server, pando_workdir, caplog):
    caplog.set_level(logging.INFO, logger="pando.lua")
    (pando_workdir / "x.lua").write_text(
        'function hook_provider_select(ctx) pando_log("info", ctx.provider .. " | " .. ctx.model) end\n'
    )
    app = make_app(plugins=["lua"], model_server=model_server, config=CONFIG)
    model_server.script(Reply.text("hi"), Reply.text("hi"))
    session = app.sessions.create(title="t")
    run(app, session["id"])  # [agent] model
    asyncio.run(app.coder_agent.run(session["id"], "again", model_ref="scripted/other"))  # --model
    assert lua_logs(caplog) == ["lua[x.lua]: scripted | test-model", "lua[x.lua]: scripted | other"]
    assert [r["model"] for r in model_server.requests] == ["test-model", "other"]  # nothing chosen


@example("hook_conversation_start")
def test_conversation_start(agent, model_server, pando_workdir):
    (pando_workdir / "NOTES.md").write_text("Use tabs.", encoding="utf-8")
    app = agent("hook_conversation_start")
    first, second = turns(app, model_server, "hello", "again")
    assert user_text(first) == "Team notes:\nUse tabs.\n\nhello"
    assert user_text(second) == "again"  # only the first turn of a session
    assert [m["content"] for m in second["messages"] if m["role"] == "user"][0] == user_text(first)


@example("hook_user_prompt")
def test_user_prompt(agent, model_server):
    app = agent("hook_user_prompt")
    first, second = turns(app, model_server, "my key is sk-abc-123, fix the client", "no secrets here")
    assert user_text(first) == "my key is [REDACTED], fix the client"
    assert user_text(second) == "no secrets here"
    stored = [m["content"] for m in second["messages"] if m["role"] == "user"]
    assert "sk-abc-123" not in json.dumps(stored)  # the history keeps the rewritten text


@example("hook_capability_check")
def test_capability_check(agent, model_server):
    app = agent("hook_capability_check")
    one_turn(app, model_server, Reply.text("ok"))
    tools = {t["function"]["name"] for t in model_server.requests[0]["tools"]}
    assert "fetch" not in tools and "bash" not in tools
    assert {"view", "write", "edit"} <= tools


@example("hook_template_section")
def test_template_section(agent, model_server):
    app = agent("hook_template_section")
    one_turn(app, model_server, Reply.text("ok"))
    system = system_prompt(model_server.requests[0])
    assert "<env>" not in system and "Working directory" not in system  # section dropped
    assert "Run `make lint` before every commit." in system
    assert TOOL_GUIDANCE in system  # the other sections are kept


@example("hook_prompt_compose")
def test_prompt_compose(agent, model_server, pando_workdir):
    (pando_workdir / "TEAM_RULES.md").write_text("Rule: tabs, never spaces.", encoding="utf-8")
    app = agent("hook_prompt_compose")
    one_turn(app, model_server, Reply.text("ok"))
    system = system_prompt(model_server.requests[0])
    assert system.startswith("Rule: tabs, never spaces.\n\n")
    assert TOOL_GUIDANCE not in system
    assert "<env>" in system


@example("hook_system_prompt")
def test_system_prompt(agent, model_server):
    app = agent("hook_system_prompt")
    one_turn(app, model_server, Reply.tool("ls", {}), Reply.text("ok"))
    for request in model_server.requests:
        assert system_prompt(request).endswith("\n\nAlways answer in Spanish.")
        assert system_prompt(request).count("Always answer in Spanish.") == 1  # once per turn


@example("<tool>-input")
def test_tool_input(agent, model_server, pando_workdir):
    app = agent("<tool>-input")
    model_server.script(
        Reply.tools(
            {"id": "rm", "name": "bash", "arguments": {"command": "rm -rf victim"}},
            {"id": "seq", "name": "bash", "arguments": {"command": "seq 1 500"}},
            {"id": "seq5", "name": "bash", "arguments": {"command": "seq 1 500", "head_limit": 5}},
            {"id": "write", "name": "write", "arguments": {"file_path": "notes.txt", "content": "hello"}},
        ),
        Reply.text("done"),
    )
    (pando_workdir / "victim").mkdir()
    session = app.sessions.create(title="t")
    result = run(app, session["id"])
    outputs = tool_outputs(model_server.requests[1])
    assert outputs["rm"].startswith("refused by hooks.lua: rm -rf")
    assert (pando_workdir / "victim").is_dir()
    lines = outputs["seq"].splitlines()
    assert "100" in lines and "101" not in lines  # head_limit = 100 added
    lines = outputs["seq5"].splitlines()
    assert "5" in lines and "6" not in lines  # the model's own limit is kept
    assert (pando_workdir / "notes.txt").read_text(encoding="utf-8") == "hello\n"  # write_input
    # the model's call is recorded as sent; only what ran was rewritten
    assert json.loads(result.tool_calls[0]["input"]) == {"command": "rm -rf victim"}


@example("<tool>-output")
def test_tool_output(agent, model_server):
    app = agent("<tool>-output")
    model_server.script(
        Reply.tools(
            {"id": "b", "name": "bash", "arguments": {"command": "echo user=bob password=hunter2"}},
            {"id": "l", "name": "ls", "arguments": {}},
        ),
        Reply.text("done"),
    )
    (app.workdir / "password=visible.txt").write_text("x", encoding="utf-8")
    session = app.sessions.create(title="t")
    run(app, session["id"])
    outputs = tool_outputs(model_server.requests[1])
    assert "user=bob password=***" in outputs["b"] and "hunter2" not in outputs["b"]
    assert "password=visible.txt" in outputs["l"]  # other tools are not filtered


@example("builtin-input / builtin-output")
def test_builtin_fallback(agent, model_server):
    app = agent("builtin-input / builtin-output")
    model_server.script(
        Reply.tool("bash", {"command": r"printf '\033[31mred\033[0m plain'"}, id="b"), Reply.text("done")
    )
    session = app.sessions.create(title="t")
    run(app, session["id"])
    output = tool_outputs(model_server.requests[1])["b"]
    assert "red plain" in output and "\x1b" not in output


def test_builtin_fallback_order(make_app, model_server, pando_workdir):
    """<tool>- beats builtin-, which beats global- (per script)."""
    (pando_workdir / "x.lua").write_text(
        EXAMPLES["builtin-input / builtin-output"]
        + '_G["global-output"] = function(ctx) ctx.output = "GLOBAL"; return ctx end\n'
        + '_G["ls-output"] = function(ctx) ctx.output = "LS"; return ctx end\n',
        encoding="utf-8",
    )
    app = make_app(plugins=["lua"], model_server=model_server, config=CONFIG)
    app.permissions.yolo = True
    model_server.script(
        Reply.tools(
            {"id": "b", "name": "bash", "arguments": {"command": "echo hi"}},
            {"id": "l", "name": "ls", "arguments": {}},
        ),
        Reply.text("done"),
    )
    session = app.sessions.create(title="t")
    run(app, session["id"])
    outputs = tool_outputs(model_server.requests[1])
    assert outputs["l"] == "LS"
    assert outputs["b"].startswith("hi") and "GLOBAL" not in outputs["b"]


@example("global-input / global-output")
def test_global_filters(agent, model_server, caplog):
    app = agent("global-input / global-output")
    model_server.script(
        Reply.tools(
            {"id": "long", "name": "bash", "arguments": {"command": "seq 1 2000"}},
            {"id": "short", "name": "bash", "arguments": {"command": "echo short"}},
        ),
        Reply.text("done"),
    )
    session = app.sessions.create(title="t")
    run(app, session["id"])
    outputs = tool_outputs(model_server.requests[1])
    assert outputs["long"].endswith("\n[cut to 4000 characters by hooks.lua]")
    assert len(outputs["long"]) == 4000 + len("\n[cut to 4000 characters by hooks.lua]")
    assert outputs["short"].startswith("short") and "[cut" not in outputs["short"]
    logs = lua_logs(caplog)
    assert 'lua[x.lua]: bash {"command":"seq 1 2000"}' in logs
    assert 'lua[x.lua]: bash {"command":"echo short"}' in logs


@example("hook_agent_response_finish")
def test_agent_response_finish(agent, model_server, caplog):
    app = agent("hook_agent_response_finish")
    one_turn(app, model_server, Reply.text("ok", usage={"prompt_tokens": 120, "completion_tokens": 7}))
    assert "lua[x.lua]: turn finished (end_turn): 120 tokens in, 7 out" in lua_logs(caplog)


@example("hook_session_end")
def test_session_end(agent, model_server, caplog):
    app = agent("hook_session_end")
    session, _ = one_turn(app, model_server, Reply.text("ok"))
    app.sessions.end(session["id"])
    assert f"lua[x.lua]: session {session['id']} ended after 2 messages" in lua_logs(caplog)


@example("hook_global")
def test_hook_global(agent, model_server, caplog):
    app = agent("hook_global")
    session, result = one_turn(app, model_server, Reply.tool("ls", {}), Reply.text("ok"))
    app.sessions.restore(session["id"])
    app.sessions.end(session["id"])
    fired = {m.removeprefix("lua[x.lua]: hook fired: ") for m in lua_logs(caplog) if "hook fired: " in m}
    wired = {
        f"hook_{name}" for name in re.findall(r'lua\.hook\(\s*"(\w+)"', WIRING.read_text(encoding="utf-8"))
    }
    assert fired == wired  # every hook site of the wiring fired, and nothing else reached hook_global
    assert result.response == "ok"  # returning nil changed nothing
