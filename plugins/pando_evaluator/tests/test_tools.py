"""The three tools `pando mcp-server` offers, run as the server runs them."""

from __future__ import annotations

import asyncio
import json


def _tools(app):
    return {tool.name: tool for tool in app.plugins.hooks.pando_mcp_server_tools.flat(app=app)}


def test_the_tools_are_offered_and_work(evaluator_app, model_server, ev):
    app = evaluator_app()
    tools = _tools(app)
    assert {"pando_evaluator_stats", "pando_evaluator_rules", "pando_evaluator_evaluate"} <= set(tools)
    assert tools["pando_evaluator_stats"].read_only and tools["pando_evaluator_rules"].read_only
    assert tools["pando_evaluator_evaluate"].read_only is False  # it writes a score: the core asks first

    ev.set_judge(model_server, ev.judge_answer(rule="Name the file you changed.", task_type="code"))
    session_id = ev.run_session(app, "hello")
    ctx = app.tool_context(session_id, "m", "c", None)
    result = asyncio.run(tools["pando_evaluator_evaluate"].run({"session_id": session_id}, ctx))
    assert not result.is_error, result.content
    assert json.loads(result.content)["score"]["session_id"] == session_id

    stats = json.loads(asyncio.run(tools["pando_evaluator_stats"].run({}, ctx)).content)
    assert stats["sessions_scored"] == 1 and stats["rules"][0]["content"] == "Name the file you changed."
    code_rules = json.loads(asyncio.run(tools["pando_evaluator_rules"].run({"task_type": "code"}, ctx)).content)
    assert [r["content"] for r in code_rules] == ["Name the file you changed."]
    assert json.loads(asyncio.run(tools["pando_evaluator_rules"].run({"task_type": "explain"}, ctx)).content) == []

    missing = asyncio.run(tools["pando_evaluator_evaluate"].run({"session_id": "nope"}, ctx))
    assert missing.is_error and "session nope not found" in missing.content
    bad = asyncio.run(tools["pando_evaluator_rules"].run({"task_type": "poetry"}, ctx))
    assert bad.is_error
