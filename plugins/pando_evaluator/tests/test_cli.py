"""`pando evaluator ...` through the real CLI, in a subprocess, with no other pando running."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # real pando processes


def _sessions_then_stop(evaluator_app, model_server, ev, count=1, **settings):
    app = evaluator_app(**settings)
    ev.set_judge(model_server, ev.judge_answer(rule="Prefer small, tested changes.", task_type="general"))
    ids = [ev.run_session(app, f"task {i}") for i in range(count)]
    app.shutdown()  # no pando left running: the CLI's own App is the primary
    return ids


def test_evaluate_then_stats_and_rules(evaluator_app, model_server, ev, run_pando):
    (session_id,) = _sessions_then_stop(evaluator_app, model_server, ev)
    result = run_pando("--plugins", "evaluator", "evaluator", "evaluate", session_id[:10])
    assert result.returncode == 0, result.stderr
    assert f"Session {session_id} scored: reward 0.900" in result.stdout
    assert "Learned rule" in result.stdout and "Prefer small, tested changes." in result.stdout

    again = run_pando("--plugins", "evaluator", "evaluator", "evaluate", session_id)
    assert again.returncode == 0 and "already scored" in again.stdout
    assert len(ev.judge_requests(model_server)) == 1

    stats = run_pando("--plugins", "evaluator", "evaluator", "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["sessions_scored"] == 1 and data["pending"] == 0
    assert abs(data["average_reward"] - 0.9) < 1e-9
    assert data["last_evaluation"]["session_id"] == session_id
    assert [r["content"] for r in data["rules"]] == ["Prefer small, tested changes."]

    text = run_pando("--plugins", "evaluator", "evaluator", "stats")
    assert "Sessions scored:  1 (0 waiting)" in text.stdout and "Average reward:   0.900" in text.stdout

    rules = json.loads(run_pando("--plugins", "evaluator", "evaluator", "rules", "--json").stdout)
    rule_id = rules[0]["id"]
    disabled = run_pando("--plugins", "evaluator", "evaluator", "rules", "disable", rule_id[:8])
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    listed = run_pando("--plugins", "evaluator", "evaluator", "rules", "list")
    assert "disabled" in listed.stdout and rule_id[:12] in listed.stdout
    assert json.loads(run_pando("--plugins", "evaluator", "evaluator", "stats", "--json").stdout)["rules"] == []
    enabled = run_pando("--plugins", "evaluator", "evaluator", "rules", "enable", rule_id)
    assert enabled.returncode == 0 and "enabled" in enabled.stdout


def test_evaluate_without_the_judge(evaluator_app, model_server, ev, run_pando):
    (session_id,) = _sessions_then_stop(evaluator_app, model_server, ev)
    result = run_pando("--plugins", "evaluator", "evaluator", "evaluate", "--no-judge", "--json", session_id)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["stored"] is True and outcome["rule"] is None
    assert ev.judge_requests(model_server) == []


def test_templates_add_and_list(evaluator_app, model_server, ev, run_pando, pando_workdir):
    _sessions_then_stop(evaluator_app, model_server, ev)
    variant = pando_workdir / "identity.txt"
    variant.write_text("You are Pando. Be brief.\n", encoding="utf-8")
    added = run_pando("--plugins", "evaluator", "evaluator", "templates", "add", "identity", str(variant))
    assert added.returncode == 0, added.stderr
    assert "(version 1) of section identity" in added.stdout
    rows = json.loads(run_pando("--plugins", "evaluator", "evaluator", "templates", "--json").stdout)
    assert [(r["section"], r["version"], r["content"]) for r in rows] == [("identity", 1, "You are Pando. Be brief.")]
    stats = json.loads(run_pando("--plugins", "evaluator", "evaluator", "stats", "--json").stdout)
    assert [arm["template_id"] for arm in stats["sections"][0]["ranking"]] == ["default", rows[0]["id"]]


def test_errors_are_one_line(evaluator_app, model_server, ev, run_pando, pando_workdir):
    _sessions_then_stop(evaluator_app, model_server, ev)
    for args, message in [
        (("evaluator", "evaluate", "nosuchsession"), "pando: error: session nosuchsession not found"),
        (("evaluator", "rules", "disable", "nosuchrule"), "pando: error: rule nosuchrule not found"),
        (("evaluator", "templates", "add", "identity", "missing.txt"), "pando: error: cannot read missing.txt"),
    ]:
        result = run_pando("--plugins", "evaluator", *args)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_pando_run_hands_its_session_to_the_evaluator(model_server, ev, run_pando, pando_workdir):
    """The real `pando run`: its session ends, is queued (or already scored by that process's
    service), and is scored exactly once, whoever gets there first."""
    import sqlite3

    from pando_core.testing.pytest_plugin import write_model_config

    write_model_config(pando_workdir, model_server.base_url, extra='\n[evaluator]\nmodel = "scripted/test-model"\n')
    ev.set_judge(model_server, ev.judge_answer(rule="Answer in one line."))
    ran = run_pando("--plugins", "evaluator", "run", "--output-format", "json", "say hello")
    assert ran.returncode == 0, ran.stderr
    session_id = json.loads(ran.stdout)["session_id"]
    with sqlite3.connect(pando_workdir / ".pando" / "pando.db") as conn:
        queued = conn.execute("SELECT count(*) FROM evaluator_pending WHERE session_id = ?", (session_id,)).fetchone()[0]
        scored = conn.execute("SELECT count(*) FROM evaluator_scores WHERE session_id = ?", (session_id,)).fetchone()[0]
    assert queued + scored == 1
    result = run_pando("--plugins", "evaluator", "evaluator", "evaluate", "--json", session_id)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["score"]["session_id"] == session_id and outcome["score"]["evaluations"] == 1
    assert len(ev.judge_requests(model_server)) == 1
