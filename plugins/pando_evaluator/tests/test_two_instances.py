"""Two real pando processes on one working directory (the core's ``pando_pair``): evaluations
happen on the primary, once, also when the primary is killed in the middle of one."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from pando_core.testing.model_server import Reply
from pando_core.testing.pytest_plugin import write_model_config

pytestmark = pytest.mark.slow  # real pando processes

RUN_SESSION = """
import asyncio, time
session = app.sessions.create(title="t")
asyncio.run(app.coder_agent.run(session["id"], PROMPT))
start = time.perf_counter()
app.sessions.end(session["id"])
result = {"session_id": session["id"], "end_ms": (time.perf_counter() - start) * 1000}
"""


def run_session(instance, prompt: str) -> dict:
    return instance.eval(f"PROMPT = {prompt!r}\n" + RUN_SESSION, timeout=60)


@pytest.fixture
def pair(pando_pair, pando_workdir, model_server):
    write_model_config(pando_workdir, model_server.base_url, extra="\n[evaluator]\nsettle_seconds = 0\nmodel = \"scripted/test-model\"\n")
    return lambda: pando_pair(plugins=["evaluator"])


def _query(workdir: Path, sql: str) -> list[dict]:
    with sqlite3.connect(f"file:{workdir / '.pando' / 'pando.db'}?mode=ro", uri=True, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(sql)]


def wait_for_scores(workdir: Path, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _query(workdir, "SELECT * FROM evaluator_scores")
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{count} score(s) expected within {timeout} s")


def test_a_session_run_on_a_secondary_is_scored_once_on_the_primary(pair, model_server, pando_workdir, ev):
    ev.set_judge(model_server, ev.judge_answer(rule="Say which file you changed."))
    primary, secondary = pair()
    ended = run_session(secondary, "add a flag")
    (score,) = wait_for_scores(pando_workdir, 1)
    assert score["session_id"] == ended["session_id"]
    assert score["evaluated_by"] == primary.info["instance_id"] and score["evaluations"] == 1
    assert len(ev.judge_requests(model_server)) == 1
    assert _query(pando_workdir, "SELECT content FROM evaluator_rules") == [{"content": "Say which file you changed."}]
    # `pando evaluator evaluate ID` from the secondary reaches the primary: "already scored"
    again = secondary.eval(
        f"from pando_evaluator.methods import request_evaluation\nresult = request_evaluation(app, {ended['session_id']!r})"
    )
    assert again["stored"] is False and again["score"]["evaluations"] == 1
    assert len(_query(pando_workdir, "SELECT * FROM evaluator_scores")) == 1
    assert len(ev.judge_requests(model_server)) == 1
    stats = secondary.eval("from pando_evaluator.report import collect_stats\nresult = collect_stats(app)")
    assert stats["sessions_scored"] == 1 and stats["pending"] == 0


def test_evaluate_from_a_secondary_runs_on_the_primary(pair, model_server, pando_workdir, ev):
    ev.set_judge(model_server, ev.judge_answer())
    primary, secondary = pair()
    session_id = secondary.eval(
        "import asyncio\ns = app.sessions.create(title='t')\n"
        "asyncio.run(app.coder_agent.run(s['id'], 'hello'))\nresult = s['id']",
        timeout=60,
    )  # not ended: only the explicit request scores it
    result = secondary.eval(
        f"from pando_evaluator.methods import request_evaluation\nresult = request_evaluation(app, {session_id[:10]!r})",
        timeout=60,
    )
    assert result["stored"] is True and result["score"]["evaluated_by"] == primary.info["instance_id"]


def test_a_primary_killed_during_an_evaluation_leaves_it_to_the_next_primary(pair, model_server, pando_workdir, ev):
    ev.set_judge(model_server, Reply.text(ev.judge_answer(rule="Keep the change small."), delay=30))
    primary, secondary = pair()
    ended = run_session(secondary, "add a flag")
    assert ended["end_ms"] < 1000  # the judge takes 30 s: the end of the session only queued it
    assert model_server.wait_for(lambda s: len(ev.judge_requests(s)) == 1, timeout=30), "the primary never asked the judge"
    ev.set_judge(model_server, ev.judge_answer(rule="Keep the change small."))  # the next judge answers at once
    primary.kill()
    secondary.wait_for("result = app.role", "primary", timeout=20)
    (score,) = wait_for_scores(pando_workdir, 1)
    assert score["session_id"] == ended["session_id"]
    assert score["evaluated_by"] == secondary.info["instance_id"] and score["evaluations"] == 1
    assert _query(pando_workdir, "SELECT content FROM evaluator_rules") == [{"content": "Keep the change small."}]
    assert _query(pando_workdir, "SELECT * FROM evaluator_pending") == []
    assert len(ev.judge_requests(model_server)) == 1  # since the kill: the new primary asked once


def test_the_cli_on_a_secondary_evaluates_on_the_primary(pando_instance, pando_workdir, model_server, run_pando, ev):
    """`pando evaluator evaluate ID` run while another pando is the primary: the CLI is a secondary."""
    import json

    write_model_config(pando_workdir, model_server.base_url, extra="\n[evaluator]\nsettle_seconds = 600\nmodel = \"scripted/test-model\"\n")
    ev.set_judge(model_server, ev.judge_answer(rule="Name the command you ran."))
    primary = pando_instance(["evaluator"])
    assert primary.info["role"] == "primary"
    session_id = run_session(primary, "hello")["session_id"]  # queued; the service waits 600 s
    result = run_pando("--plugins", "evaluator", "evaluator", "evaluate", "--json", session_id)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["stored"] is True and outcome["score"]["evaluated_by"] == primary.info["instance_id"]
    assert outcome["rule"]["content"] == "Name the command you ran."
    assert _query(pando_workdir, "SELECT * FROM evaluator_pending") == []
