"""What ``pando evaluator stats`` and the ``pando_evaluator_stats`` tool show: one dict of JSON values."""

from __future__ import annotations

import math
from typing import Any

from .config import EvaluatorConfig
from .prompts import rank_variants


def collect_stats(app: Any, config: EvaluatorConfig | None = None) -> dict[str, Any]:
    config = config or EvaluatorConfig.of(app)
    store = app.store.evaluator
    summary = store.summary()
    sections = []
    for section in store.sections_with_variants():
        ranking = []
        for arm, score in rank_variants(store, section, config.ucb_c):
            ranking.append(
                {
                    "template_id": arm.id,
                    "times_used": arm.times_used,
                    "avg_reward": round(arm.avg_reward, 4),
                    "ucb": None if math.isinf(score) else round(score, 4),  # None: never tried yet
                }
            )
        sections.append({"section": section, "ranking": ranking})
    rules = [
        {
            "id": rule["id"],
            "task_type": rule["task_type"],
            "content": rule["content"],
            "confidence": rule["confidence"],
            "usage_count": rule["usage_count"],
            "success_rate": rule["success_rate"],
        }
        for rule in store.rules(include_inactive=False)
    ]
    return {
        **summary,
        "ucb_active": summary["sessions_scored"] >= config.min_sessions,
        "min_sessions": config.min_sessions,
        "sections": sections,
        "rules": rules,
    }
