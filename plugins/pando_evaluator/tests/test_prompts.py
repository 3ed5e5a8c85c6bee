"""What reaches the coder model's system prompt: learned rules, and the UCB1-chosen variant of a section."""

from __future__ import annotations

import asyncio

from pando_evaluator.prompts import guess_task_type
from pando_evaluator.service import evaluate_now

from pando_core.agent.prompt import IDENTITY


def system_prompt(body: dict) -> str:
    first = body["messages"][0]
    assert first["role"] == "system"
    return first["content"] if isinstance(first["content"], str) else str(first["content"])


def coder_requests(model_server, ev) -> list[dict]:
    judged = {id(body) for body in ev.judge_requests(model_server)}
    return [body for body in model_server.requests if id(body) not in judged]


def test_learned_rules_reach_the_next_session_and_count_once(evaluator_app, model_server, ev):
    app = evaluator_app()
    ev.set_judge(model_server, ev.judge_answer(rule="Run the tests after every edit.", task_type="general"))
    evaluate_now(app, ev.run_session(app, "hello"))
    first_prompt = system_prompt(coder_requests(model_server, ev)[0])
    assert "Learned rules" not in first_prompt

    before = len(model_server.requests)
    session_id = ev.run_session(app, "add a flag", "and document it")
    later = model_server.requests[before:]
    assert len(later) == 2
    for body in later:
        prompt = system_prompt(body)
        assert "## Learned rules" in prompt and "- Run the tests after every edit." in prompt
    rule = app.store.evaluator.rules()[0]
    assert rule["usage_count"] == 1  # two turns, one session
    evaluate_now(app, session_id, judge=False)
    assert app.store.evaluator.rules()[0]["success_rate"] is not None


def test_rules_are_listed_for_their_kind_of_task(evaluator_app, model_server, ev):
    app = evaluator_app()
    ev.set_judge(model_server, ev.judge_answer(rule="Reproduce the bug with a test first.", task_type="debug"))
    evaluate_now(app, ev.run_session(app, "hello"))
    before = len(model_server.requests)
    ev.run_session(app, "explain what this module does")
    ev.run_session(app, "fix the crash in the parser")
    explain, debug = model_server.requests[before:]
    assert "Reproduce the bug" not in system_prompt(explain)
    assert "Reproduce the bug" in system_prompt(debug)


def test_task_type_guess():
    assert guess_task_type("Fix the failing test") == "debug"
    assert guess_task_type("refactor the loader") == "refactor"
    assert guess_task_type("explain the bus") == "explain"
    assert guess_task_type("implement a cache") == "code"
    assert guess_task_type("hello") == "general"


def test_variants_are_chosen_by_section_name_only_after_min_sessions(evaluator_app, model_server, ev, tmp_path):
    app = evaluator_app(judge=False, min_sessions=1)
    store = app.store.evaluator
    variant = store.add_template(section="identity", content="VARIANT IDENTITY: you are a careful engineer.")
    store.add_template(section="no_such_section", content="never shown")

    # below min_sessions: the core's text, and nothing recorded for the session
    first = ev.run_session(app, "hello")
    assert IDENTITY in system_prompt(model_server.requests[-1])
    assert store.template_uses(session_id=first) == {}
    evaluate_now(app, first)

    # now the arms are tried in order: the default first, then the variant (both untried)
    second = ev.run_session(app, "hello")
    assert store.template_uses(session_id=second) == {"identity": "default"}
    evaluate_now(app, second)
    third = ev.run_session(app, "hello", "that's wrong, again")  # a poor session with the variant
    assert store.template_uses(session_id=third) == {"identity": variant["id"]}
    for body in model_server.requests[-2:]:
        prompt = system_prompt(body)
        assert "VARIANT IDENTITY" in prompt and IDENTITY not in prompt and "never shown" not in prompt
    evaluate_now(app, third)

    # UCB1 (N=2, each arm once): the default scored 0.9, the variant less, so the default wins
    fourth = ev.run_session(app, "hello")
    assert store.template_uses(session_id=fourth) == {"identity": "default"}
    assert IDENTITY in system_prompt(model_server.requests[-1])


def test_a_session_keeps_its_variant_in_another_process_state(evaluator_app, model_server, ev):
    """The choice is read back from the table (as another instance would), not chosen again."""
    from pando_evaluator.prompts import PromptState

    app = evaluator_app(judge=False, min_sessions=0)
    variant = app.store.evaluator.add_template(section="identity", content="VARIANT")
    session = app.sessions.create(title="t")
    app.store.evaluator.record_template_use(session_id=session["id"], section="identity", template_id=variant["id"])
    fresh = PromptState()
    assert fresh.variant_text(app, session["id"], "identity", app.evaluator.config) == "VARIANT"
    asyncio.run(app.coder_agent.run(session["id"], "hello"))
    assert "VARIANT" in system_prompt(model_server.requests[-1])


def test_disabled_adds_nothing(make_app, model_server, ev):
    app = make_app(plugins=["evaluator"], model_server=model_server, config="\n" + ev.config_toml(enabled=False))
    assert getattr(app, "evaluator", None) is None
    ev.run_session(app, "hello")
    assert "Learned rules" not in system_prompt(model_server.requests[-1])
