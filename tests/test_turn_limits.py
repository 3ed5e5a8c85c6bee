"""What a turn does at its limits (issue 18: items 8, 11, 12, 13, 14): a prompt that cannot fit,
sub-agent spend, a runaway loop, history trimming, and the instruction-file family."""

from __future__ import annotations

import asyncio

from pando_core.agent.prompt import context_files_section
from pando_core.agent.request_history import trim_to_budget
from pando_core.testing.model_server import Reply


def run_turn(app, prompt, session=None):
    session = session or app.sessions.create(title="t")
    return session, asyncio.run(app.coder_agent.run(session["id"], prompt))


def test_a_prompt_that_cannot_fit_the_window_is_refused_before_any_request(make_app, model_server, pando_env):
    pando_env["PANDO_AGENT__CONTEXT_WINDOW"] = "8000"
    app = make_app(model_server=model_server)
    session, result = run_turn(app, "x" * 200_000)
    assert result.status == "error"
    assert "context window of 8,000 tokens" in result.error and "nothing was sent" in result.error
    assert model_server.requests == []
    assert app.messages.list(session["id"]) == []


def test_sub_agent_spend_is_part_of_the_turn(make_app, model_server):
    app = make_app(model_server=model_server)
    model_server.script(
        Reply.tool("agent", {"prompt": "look around"}, usage={"prompt_tokens": 100, "completion_tokens": 10}),
        Reply.text("the sub-agent's answer", usage={"prompt_tokens": 1000, "completion_tokens": 50}),
        Reply.text("all done", usage={"prompt_tokens": 200, "completion_tokens": 20}),
    )
    _, result = run_turn(app, "research")
    assert result.status == "success" and result.response == "all done"
    assert (result.tokens_in, result.tokens_out) == (1300, 80)


def test_the_same_failing_call_repeated_stops_the_turn_with_its_reason(make_app, model_server):
    app = make_app(model_server=model_server)
    model_server.script(*[Reply.tool("no_such_tool", {"x": 1}) for _ in range(10)])
    _, result = run_turn(app, "loop")
    assert result.status == "stuck" and result.finish_reason == "repeated_failure"
    assert "same failing call 3 times in a row (no_such_tool: Tool not found: no_such_tool)" in result.error
    assert len(model_server.requests) == 3


def test_hitting_max_requests_is_its_own_status(make_app, model_server, pando_env):
    pando_env["PANDO_AGENT__MAX_REQUESTS_PER_TURN"] = "3"
    app = make_app(model_server=model_server)
    model_server.script(*[Reply.tool("ls", {"path": "."}) for _ in range(5)])
    _, result = run_turn(app, "list forever")
    assert result.status == "max_requests" and "max_requests_per_turn" in result.error
    assert len(model_server.requests) == 3


def _m(role, chars):
    return {"role": role, "parts": [{"type": "text", "data": {"text": "x" * chars}}]}


def test_trimming_always_starts_with_a_user_message():
    history = [_m("user", 400), _m("assistant", 4000), _m("user", 40)]
    trimmed = trim_to_budget(history, budget_tokens=50)
    assert [m["role"] for m in trimmed] == ["user"]
    history = [_m("user", 40), _m("assistant", 400), _m("tool", 400), _m("assistant", 400), _m("user", 40), _m("assistant", 40)]
    trimmed = trim_to_budget(history, budget_tokens=30)
    assert trimmed[0]["role"] == "user" and [m["role"] for m in trimmed] == ["user", "assistant"]
    assert trim_to_budget(history, budget_tokens=100_000) == history


def test_only_the_first_instruction_file_of_the_family_is_used(tmp_path):
    (tmp_path / "AGENTS.md").write_text("agents rules", encoding="utf-8")
    (tmp_path / "CLAUDE.md").write_text("claude rules", encoding="utf-8")
    (tmp_path / ".cursorrules").write_text("cursor rules", encoding="utf-8")
    section = context_files_section(tmp_path, ["AGENTS.md", "PANDO.md", "CLAUDE.md", ".cursorrules"])
    assert "agents rules" in section.text and "cursor rules" in section.text
    assert "claude rules" not in section.text
    (tmp_path / "AGENTS.md").unlink()
    section = context_files_section(tmp_path, ["AGENTS.md", "PANDO.md", "CLAUDE.md"])
    assert "claude rules" in section.text


def test_a_stopped_turn_exits_3_with_its_reason(run_pando, pando_workdir, model_server):
    from pando_core.testing.pytest_plugin import write_model_config

    write_model_config(pando_workdir, model_server.base_url)
    model_server.script(*[Reply.tool("no_such_tool", {}) for _ in range(3)])
    result = run_pando("run", "loop")
    assert result.returncode == 3
    assert "pando: stopped: the model made the same failing call 3 times in a row" in result.stderr
