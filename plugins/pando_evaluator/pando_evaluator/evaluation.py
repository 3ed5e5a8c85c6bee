"""One session's evaluation: read it, compute the reward, maybe ask the judge, store it all at once.

Runs where the evaluator service runs (the primary). Nothing is written until the end, in one
``finish_evaluation`` transaction, so an evaluation interrupted by a crash is simply done again
by the next primary; a session is scored once per stretch of activity.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .config import EvaluatorConfig
from .judge import JudgeError, ask_judge, parse_verdict, transcript, user_texts
from .reward import compile_patterns, session_reward

log = logging.getLogger("pando.evaluator")

# The judge is asked only about sessions that went well enough to learn from (as the original).
JUDGE_REWARD_THRESHOLD = 0.5


def session_tokens(session: dict) -> int:
    prompt = session.get("total_prompt_tokens") or session.get("prompt_tokens") or 0
    completion = session.get("total_completion_tokens") or session.get("completion_tokens") or 0
    return int(prompt) + int(completion)


async def evaluate_session(app: Any, session_id: str, config: EvaluatorConfig | None = None, *, judge: bool | None = None) -> dict:
    """Score ``session_id`` unless a score already covers it; returns ``finish_evaluation``'s result
    plus ``judge_error`` (None, or why no rule could be asked for)."""
    config = config or EvaluatorConfig.of(app)
    # no judge model configured: no judge (installing the plugin never adds model requests by itself)
    use_judge = bool(config.model) and (config.judge if judge is None else judge)
    store = app.store.evaluator
    started = time.perf_counter()
    session = app.store.sessions.get(id=session_id)
    existing = store.score(session_id=session_id)
    message_count = int(session.get("message_count") or 0)
    if existing is not None and existing["message_count"] >= message_count:
        store.drop_pending(session_id=session_id)
        return {"stored": False, "score": existing, "rule": None, "retired": None, "judge_error": None}

    messages = app.store.messages.list(session_id=session_id)
    if not messages:  # nothing was asked: nothing to learn, and no reward to count
        store.drop_pending(session_id=session_id)
        return {"stored": False, "score": None, "rule": None, "retired": None, "judge_error": None, "empty": True}
    tokens = session_tokens(session)
    reward = session_reward(
        user_texts(messages),
        tokens,
        store.recent_tokens(limit=config.baseline_sessions, exclude=session_id),
        compile_patterns(config.correction_patterns),
        config.alpha,
        config.beta,
    )
    score: dict[str, Any] = {
        "reward": reward.reward,
        "success_score": reward.success,
        "efficiency_score": reward.efficiency,
        "corrections": reward.corrections,
        "tokens": tokens,
        "message_count": message_count,
        "task_type": "general",
    }
    rule = None
    judge_error = None
    if use_judge and (reward.reward > JUDGE_REWARD_THRESHOLD or reward.corrections == 0) and messages:
        try:
            model_ref, answer = await ask_judge(
                app,
                transcript(messages),
                model_ref=config.model,
                instructions=config.judge_instructions(app.workdir),
                timeout=config.judge_timeout,
            )
            score["judge_model"] = model_ref
            verdict = parse_verdict(answer)
            if verdict is None:
                judge_error = "the judge's answer held no JSON object"
                score["judge_analysis"] = answer[:2000]
            else:
                score["task_type"] = verdict.task_type
                score["judge_analysis"] = verdict.reasoning[:2000]
                if verdict.rule and verdict.confidence >= config.min_confidence:
                    rule = {"content": verdict.rule, "task_type": verdict.task_type, "confidence": verdict.confidence}
        except JudgeError as exc:
            judge_error = str(exc)
    score["judge_error"] = judge_error
    if judge_error:
        log.warning("evaluator: session %s scored without a rule: %s", session_id, judge_error)
    score["duration_ms"] = round((time.perf_counter() - started) * 1000)
    result = store.finish_evaluation(
        session_id=session_id, score=score, rule=rule, max_rules=config.max_rules, evaluated_by=app.instance_id
    )
    result["judge_error"] = judge_error
    return result
