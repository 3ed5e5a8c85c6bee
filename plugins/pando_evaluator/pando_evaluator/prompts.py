"""What the evaluator puts in the system prompt: the chosen variant of a section, and learned rules.

Variants are keyed by the section's NAME (``identity``, ``tools``, a plugin's section): the core's
own text is always one arm (``default``), each ``pando evaluator templates add SECTION FILE`` adds
another. Until ``min_sessions`` sessions are scored every section keeps its own text; after that,
the first turn of a session picks the arm with the best UCB1 score, records it for the session
(the session keeps it for all its turns, in every instance) and its reward counts for that arm.

The "Learned rules" section lists the active rules for the session's kind of task; a rule counts
as used once per session, not once per turn.
"""

from __future__ import annotations

import contextvars
import re
import threading
from typing import Any

from .config import EvaluatorConfig
from .store import DEFAULT_TEMPLATE
from .ucb import Arm, choose, rank

RULES_SECTION = "learned_rules"
RULES_ORDER = 65  # after the skills section (60)

# The session whose system prompt is being built: the section filter hook is not told it, the
# sections hook (called first, in the same task) is.
building_for: contextvars.ContextVar[str | None] = contextvars.ContextVar("pando_evaluator_session", default=None)

_TASK_WORDS = (
    ("debug", r"\b(bug|error|fail\w*|crash\w*|traceback|exception|broken|debug\w*|fix)\b"),
    ("refactor", r"\b(refactor\w*|rename|clean ?up|restructure|simplify|extract)\b"),
    ("explain", r"\b(explain|what does|why does|how does|what is|describe)\b"),
    ("code", r"\b(implement|write|add|create|build|generate)\b"),
)


def guess_task_type(prompt: str) -> str:
    """The kind of task a prompt asks for, from its words (the judge's labels)."""
    for task_type, pattern in _TASK_WORDS:
        if re.search(pattern, prompt or "", re.IGNORECASE):
            return task_type
    return "general"


def rules_text(rules: list[dict]) -> str:
    lines = ["## Learned rules", "Rules learned from earlier sessions in this project; follow them when they apply:"]
    lines += [f"- {rule['content']}" for rule in rules]
    return "\n".join(lines)


def rank_variants(store: Any, section: str, c: float) -> list[tuple[Arm, float]]:
    """The arms of ``section`` (default first, then variants by version) with their UCB1 scores."""
    return rank(variant_arms(store, section, store.templates(section=section, active_only=True)), c)


class PromptState:
    """Per process: what each session was given, so each turn after the first costs no write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._choices: dict[tuple[str, str], str] = {}  # (session, section) -> template id
        self._rules_counted: set[str] = set()
        self._task_types: dict[str, str] = {}

    def learned_rules(self, app: Any, session_id: str, prompt: str, config: EvaluatorConfig) -> str | None:
        with self._lock:
            task_type = self._task_types.setdefault(session_id, guess_task_type(prompt))
        rules = app.store.evaluator.active_rules(task_type=task_type, limit=config.rules_in_prompt)
        if not rules:
            return None
        with self._lock:
            first_time = session_id not in self._rules_counted
            self._rules_counted.add(session_id)
        if first_time:
            app.store.evaluator.record_rule_uses(session_id=session_id, rule_ids=[r["id"] for r in rules])
        return rules_text(rules)

    def variant_text(self, app: Any, session_id: str | None, section: str, config: EvaluatorConfig) -> str | None:
        """The text of the variant this session uses for ``section``, or None to keep the core's."""
        if session_id is None:
            return None
        store = app.store.evaluator
        key = (session_id, section)
        with self._lock:
            chosen = self._choices.get(key)
        if chosen is None:
            variants = store.templates(section=section, active_only=True)
            if not variants:
                return None
            chosen = store.template_uses(session_id=session_id).get(section)  # chosen in another instance
            if chosen is None:
                if store.scored_count() < config.min_sessions:
                    return None  # too few scores to learn from: the core's text, and nothing recorded
                best = choose(variant_arms(store, section, variants), config.ucb_c)
                chosen = store.record_template_use(session_id=session_id, section=section, template_id=best.id)[
                    "template_id"
                ]
            with self._lock:
                self._choices[key] = chosen
        if chosen == DEFAULT_TEMPLATE:
            return None
        for template in store.templates(section=section):
            if template["id"] == chosen:
                return template["content"]
        return None

    def forget(self, session_id: str) -> None:
        """The session ended: its next stretch of activity is a new session for the counters."""
        with self._lock:
            self._rules_counted.discard(session_id)
            self._task_types.pop(session_id, None)
            for key in [k for k in self._choices if k[0] == session_id]:
                del self._choices[key]


def variant_arms(store: Any, section: str, variants: list[dict]) -> list[Arm]:
    stats = {row["template_id"]: row for row in store.template_stats(section=section)}

    def arm(template_id: str) -> Arm:
        row = stats.get(template_id)
        return Arm(template_id, int(row["times_used"]), float(row["total_reward"] or 0.0)) if row else Arm(template_id)

    return [arm(DEFAULT_TEMPLATE)] + [arm(v["id"]) for v in variants]
