"""The evaluator's bus method and the one way every caller reaches it.

``evaluator.evaluate`` runs on the primary (where the evaluations run). ``request_evaluation``
works from any instance: ``app.call_primary`` calls the handler directly on the primary and over
the bus on a secondary; with no other pando running, the CLI's own App is the primary.
"""

from __future__ import annotations

from typing import Any

from pando_core.errors import ValidationError

from .config import EvaluatorConfig

EVALUATE_METHOD = "evaluator.evaluate"
BUS_MARGIN_SECONDS = 30.0


def bus_methods(app: Any) -> dict[str, Any]:
    def evaluate(params: dict) -> dict:
        from .service import evaluate_now

        session_id = params.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            raise ValidationError("evaluator.evaluate: session_id must be a non-empty string")
        judge = params.get("judge")
        return evaluate_now(app, session_id, judge=judge if isinstance(judge, bool) else None)

    return {EVALUATE_METHOD: evaluate}


def request_evaluation(app: Any, session_id: str, judge: bool | None = None) -> dict:
    """Evaluate ``session_id`` (id or unique prefix) on the primary now; returns its outcome."""
    session = app.sessions.find(session_id)
    config = EvaluatorConfig.of(app)
    params: dict[str, Any] = {"session_id": session["id"]}
    if judge is not None:
        params["judge"] = judge
    return app.call_primary(EVALUATE_METHOD, params, timeout=config.judge_timeout + BUS_MARGIN_SECONDS)
