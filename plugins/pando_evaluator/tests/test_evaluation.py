"""Evaluations of real sessions: the coder model and the judge are the scripted HTTP model server."""

from __future__ import annotations

import pytest
from pando_evaluator.service import EvaluatorService, evaluate_now

from pando_core.testing.model_server import Reply


def test_a_session_is_scored_and_the_judge_rule_in_prose_is_learned(evaluator_app, model_server, ev):
    app = evaluator_app()
    ev.set_judge(model_server, ev.judge_answer(rule="Run the tests after every edit.", confidence=0.9))
    session_id = ev.run_session(app, "add a parser for the config")
    result = evaluate_now(app, session_id)
    assert result["stored"] is True
    score = app.store.evaluator.score(session_id=session_id)
    assert score["reward"] == pytest.approx(0.9)  # no corrections, no baseline yet
    assert score["corrections"] == 0 and score["tokens"] > 0
    assert score["judge_model"] == "scripted/test-model" and score["task_type"] == "code"
    rules = app.store.evaluator.rules()
    assert [r["content"] for r in rules] == ["Run the tests after every edit."]
    assert rules[0]["source_session_id"] == session_id and rules[0]["title"] == "code rule"
    judged = ev.judge_requests(model_server)
    assert len(judged) == 1
    sent = judged[0]["messages"][-1]["content"]
    assert "USER: add a parser for the config" in sent and "ASSISTANT: echo: add a parser" in sent


def test_evaluating_twice_stores_one_score(evaluator_app, model_server, ev):
    app = evaluator_app()
    ev.set_judge(model_server, ev.judge_answer())
    session_id = ev.run_session(app, "hello")
    assert evaluate_now(app, session_id)["stored"] is True
    again = evaluate_now(app, session_id)
    assert again["stored"] is False and again["score"]["evaluations"] == 1
    assert len(ev.judge_requests(model_server)) == 1
    assert app.store.evaluator.scored_count() == 1


def test_a_continued_session_is_scored_again_in_its_one_row(evaluator_app, model_server, ev):
    app = evaluator_app(judge=False)
    session_id = ev.run_session(app, "hello")
    evaluate_now(app, session_id)
    import asyncio

    asyncio.run(app.coder_agent.run(session_id, "that's wrong, do it again"))
    result = evaluate_now(app, session_id)
    assert result["stored"] is True
    score = app.store.evaluator.score(session_id=session_id)
    assert score["evaluations"] == 2 and score["corrections"] == 1
    assert app.store.evaluator.scored_count() == 1


@pytest.mark.parametrize(("confidence", "kept"), [(0.69, False), (0.70, True)])
def test_a_rule_needs_confidence_0_7(evaluator_app, model_server, ev, confidence, kept):
    app = evaluator_app()
    ev.set_judge(model_server, ev.judge_answer(rule="Keep answers short.", confidence=confidence))
    session_id = ev.run_session(app, "explain the module")
    result = evaluate_now(app, session_id)
    assert result["stored"] is True
    assert (len(app.store.evaluator.rules()) == 1) is kept
    assert (result["rule"] is not None) is kept


def test_an_invalid_judge_answer_keeps_the_score_and_no_rule(evaluator_app, model_server, ev):
    app = evaluator_app()
    ev.set_judge(model_server, "The session went fine, I would not change anything.")
    session_id = ev.run_session(app, "hello")
    result = evaluate_now(app, session_id)
    assert result["stored"] is True and result["rule"] is None
    assert result["judge_error"] == "the judge's answer held no JSON object"
    assert app.store.evaluator.score(session_id=session_id)["reward"] == pytest.approx(0.9)
    assert app.store.evaluator.rules() == []


def test_a_judge_that_is_down_keeps_the_score_and_no_rule(evaluator_app, model_server, ev):
    app = evaluator_app()
    ev.set_judge(model_server, Reply.error(500))
    session_id = ev.run_session(app, "hello")
    result = evaluate_now(app, session_id)
    assert result["stored"] is True and result["rule"] is None
    assert result["judge_error"].startswith("judge scripted/test-model failed")
    assert app.store.evaluator.score(session_id=session_id)["judge_error"] == result["judge_error"]


def test_a_separate_judge_model_is_used(evaluator_app, model_server, ev):
    app = evaluator_app(model="scripted/judge-model")
    ev.set_judge(model_server, ev.judge_answer())
    evaluate_now(app, ev.run_session(app, "hello"))
    assert ev.judge_requests(model_server)[0]["model"] == "judge-model"


def test_judge_off_asks_nothing(evaluator_app, model_server, ev):
    app = evaluator_app(judge=False)
    ev.set_judge(model_server, ev.judge_answer())
    evaluate_now(app, ev.run_session(app, "hello"))
    assert ev.judge_requests(model_server) == []
    assert app.store.evaluator.scored_count() == 1


def test_a_badly_corrected_session_is_not_judged(evaluator_app, model_server, ev):
    app = evaluator_app()
    ev.set_judge(model_server, ev.judge_answer())
    session_id = ev.run_session(app, "do it", "that's wrong", "still wrong, fix that", "you missed it again")
    evaluate_now(app, session_id)
    score = app.store.evaluator.score(session_id=session_id)
    assert score["corrections"] == 3 and score["success_score"] == pytest.approx(0.1)
    assert score["reward"] <= 0.5
    assert ev.judge_requests(model_server) == []


def test_the_baseline_is_earlier_sessions_tokens(evaluator_app, model_server, ev):
    app = evaluator_app(judge=False)
    short = ev.run_session(app, "hi")
    evaluate_now(app, short)
    long = ev.run_session(app, "explain " + "in great detail " * 200)
    evaluate_now(app, long)
    first = app.store.evaluator.score(session_id=short)
    second = app.store.evaluator.score(session_id=long)
    assert first["efficiency_score"] == 0.5
    assert second["tokens"] > 2 * first["tokens"]
    assert second["efficiency_score"] == 0.0
    assert second["reward"] == pytest.approx(0.8)


def test_max_rules_retires_the_weakest(evaluator_app, model_server, ev):
    app = evaluator_app(max_rules=2)
    for confidence, rule in [(0.95, "Strong rule."), (0.75, "Weak rule."), (0.9, "Newest rule.")]:
        ev.set_judge(model_server, ev.judge_answer(rule=rule, confidence=confidence))
        result = evaluate_now(app, ev.run_session(app, "hello"))
    assert result["retired"] is not None
    rules = {r["content"]: r["is_active"] for r in app.store.evaluator.rules()}
    assert rules == {"Strong rule.": 1, "Newest rule.": 1, "Weak rule.": 0}


def _wait(predicate, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_service_catches_up_on_sessions_left_waiting(evaluator_app, model_server, ev):
    """What a killed primary left queued, and what the core ended with nobody to queue it, is done
    by the next service at its start, once."""
    app = evaluator_app(judge=False)
    running = app.services.get("evaluator")
    assert running is not None and running.running
    assert running.stop(5)  # as if this primary had died: nothing evaluates now
    waiting = [ev.run_session(app, f"task {i}") for i in range(2)]
    for session_id in waiting:
        app.store.evaluator.mark_ended(session_id=session_id, origin="an-instance-that-died")
    unqueued = ev.run_session(app, "ended where no evaluator ran")
    app.store.sessions.end(id=unqueued)  # the core's write alone: no plugin hook queued it
    assert sorted(app.store.evaluator.pending()) == sorted(waiting)
    assert app.store.evaluator.ended_unscored() == [unqueued]

    service = EvaluatorService()
    service.start(app)
    try:
        _wait(lambda: app.store.evaluator.scored_count() == 3)
    finally:
        assert service.stop(5)
    assert app.store.evaluator.pending() == [] and app.store.evaluator.ended_unscored() == []
    assert service.health()["evaluated"] == 3
    assert all(app.store.evaluator.score(session_id=s)["evaluations"] == 1 for s in [*waiting, unqueued])


def test_idle_sessions_are_queued(evaluator_app, model_server, ev):
    from pando_evaluator.config import EvaluatorConfig

    app = evaluator_app(judge=False, idle_minutes=1)
    assert app.services.get("evaluator").stop(5)  # this test drives a service of its own
    session_id = ev.run_session(app, "hello")
    service = EvaluatorService()
    config = EvaluatorConfig.of(app)
    assert service.queue_idle(app, config) == 0  # just used
    _age_session(app, session_id, minutes=2)
    assert service.queue_idle(app, config) == 1
    assert app.store.evaluator.pending() == [session_id]
    service.process(app, session_id)
    assert app.store.evaluator.pending() == [] and app.store.evaluator.scored_count() == 1
    assert service.queue_idle(app, config) == 0  # scored: not idle-ended again


def _age_session(app, session_id, minutes):
    """Make a session look untouched for ``minutes`` (test set-up straight on the SQLite file)."""
    import sqlite3

    with sqlite3.connect(app.workdir / ".pando" / "pando.db", timeout=10) as conn:
        conn.execute("UPDATE sessions SET updated_at = updated_at - ? WHERE id = ?", (minutes * 60_000, session_id))


def test_an_empty_session_is_not_scored(evaluator_app, model_server, ev):
    app = evaluator_app()
    session = app.sessions.create(title="t")
    app.store.evaluator.mark_ended(session_id=session["id"])
    result = evaluate_now(app, session["id"])
    assert result["stored"] is False and result["score"] is None and result["empty"] is True
    assert app.store.evaluator.pending() == [] and app.store.evaluator.scored_count() == 0
    app.sessions.end(session["id"])  # the hook does not queue it either
    assert app.store.evaluator.pending() == []


def test_ending_a_session_has_the_primary_service_score_it(evaluator_app, model_server, ev):
    app = evaluator_app()
    ev.set_judge(model_server, ev.judge_answer())
    session_id = ev.run_session(app, "hello")
    app.sessions.end(session_id)
    _wait(lambda: app.store.evaluator.score(session_id=session_id) is not None)
    assert app.store.evaluator.score(session_id=session_id)["evaluations"] == 1
    assert app.store.evaluator.pending() == []
    assert len(app.store.evaluator.rules()) == 1


def test_a_session_waits_settle_seconds_before_its_evaluation():
    service = EvaluatorService()
    service.settle_seconds = 60.0
    service.enqueue("later")
    assert service._next_ready() is None  # a pando that exits within the minute never starts it
    service.settle_seconds = 0.0
    service.enqueue("now")
    service.enqueue("now")  # queued once
    assert service._next_ready() == "now"
    assert service._next_ready() is None
    assert service.health()["queued"] == 1


def test_no_judge_model_means_no_judge(evaluator_app, model_server, ev):
    app = evaluator_app(model="")
    ev.set_judge(model_server, ev.judge_answer())
    evaluate_now(app, ev.run_session(app, "hello"))
    assert ev.judge_requests(model_server) == [] and app.store.evaluator.scored_count() == 1
