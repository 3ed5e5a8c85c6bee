"""pando-evaluator in `pando serve`: sessions really run and scored (the judge on the scripted
model server), then a real server process shows them as a chart and in the API."""

from __future__ import annotations

import re

import httpx
import pytest

from pando_core.testing.web import WebServerProcess


@pytest.mark.slow
def test_scores_chart_and_api(evaluator_app, model_server, ev, run_pando, pando_workdir, pando_env, tmp_path):
    app = evaluator_app()
    ev.set_judge(model_server, ev.judge_answer(rule="Prefer small, tested changes.", task_type="general"))
    ids = [ev.run_session(app, f"task {i}", title=f"scored session {i}") for i in range(2)]
    app.shutdown()
    for session_id in ids:
        result = run_pando("--plugins", "evaluator", "evaluator", "evaluate", session_id)
        assert result.returncode == 0, result.stderr
    with WebServerProcess(pando_workdir, pando_env, plugins="evaluator", log_path=tmp_path / "serve.log") as server, \
            httpx.Client(base_url=server.url, timeout=30) as c:
        data = c.get("/api/evaluator/scores").json()
        assert [s["session_id"] for s in data["scores"]] == ids
        assert [s["title"] for s in data["scores"]] == ["scored session 0", "scored session 1"]
        assert data["stats"]["sessions_scored"] == 2
        page = c.get("/evaluator").text
        assert page.count('<circle class="score"') == 2
        assert re.search(r"<title>scored session 1: \d\.\d{3}</title>", page)
        assert 'id="scored">2</strong>' in page and "Prefer small, tested changes." in page
        assert '<a href="/evaluator">Scores</a>' in page


def test_the_chart_of_no_scores_says_so():
    from html import escape

    from pando_evaluator.web import chart_svg

    assert "No session has been scored yet." in chart_svg([], escape, str)
    one = chart_svg([{"session_id": "s1", "reward": 0.5, "evaluated_at": 1000, "title": "<b>"}], escape, str)
    assert 'cy="110.0"' in one and "&lt;b&gt;: 0.500" in one
