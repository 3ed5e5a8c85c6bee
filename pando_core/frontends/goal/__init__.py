"""Goal mode (spec §11): keep running agent turns in one session until an objective is reached.

``run_goal(app, objective, ...)`` creates a session titled ``Goal: <objective>`` and a
``session_goals`` row, then loops: one agent turn with a goal prompt, evaluate the answer, persist
the row, repeat. It stops when the model reports the goal completed or blocked, when it makes no
progress for ``stall_iterations`` turns (stalled), after ``max_iterations`` turns (failed), after
``max_duration`` seconds (timeout), on cancellation (cancelled) or when a turn fails (blocked, with
the error as the reason).

The protocol with the model (explained in every goal prompt): each answer ends with a status block ::

    GOAL_STATUS: in_progress | completed | blocked
    PROGRESS: <what is done so far>
    NEXT_STEP: <the next concrete action>          (in_progress)
    BLOCKED_REASON: <what is needed from outside>  (blocked)

The markers ``GOAL COMPLETED: <summary>`` and ``GOAL BLOCKED: <reason>`` and ``Next step:`` /
``Next:`` / ``Remaining work:`` lines are understood too; without any marker, deterministic phrase
heuristics decide (blocked / completion / remaining-work / no-progress phrases).
A markdown checklist in the answers (``- [ ] step`` / ``- [x] step``) is the model's TODO plan:
completion claimed while items are unchecked is not accepted; the goal continues with those items.

The package, by concern: `statuses` (the statuses and exit codes), `options` (the limits),
`prompts`, `evaluation` (judging an answer), `runner` (the loop), `result` (what it reports),
`display` (how ``pando goal`` shows it).
"""

from __future__ import annotations

from .evaluation import (
    Evaluation,
    TodoItem,
    evaluate,
    normalize,
    parse_checklist,
    parse_status_block,
    todo_signature,
)
from .options import (
    DEFAULT_MAX_DURATION,
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_STALL_ITERATIONS,
    GoalOptions,
    format_duration,
    parse_duration,
)
from .prompts import build_continuation_prompt, build_initial_prompt
from .result import GoalProgress, GoalResult
from .runner import GoalRunner, arun_goal, goal_title, run_goal
from .statuses import (
    BLOCKED,
    CANCELLED,
    COMPLETED,
    EXIT_CODES,
    FAILED,
    GOAL_STATUSES,
    IN_PROGRESS,
    RUNNING,
    STALLED,
    TERMINAL_STATUSES,
    TIMEOUT,
)

__all__ = [
    "BLOCKED",
    "CANCELLED",
    "COMPLETED",
    "DEFAULT_MAX_DURATION",
    "DEFAULT_MAX_ITERATIONS",
    "DEFAULT_STALL_ITERATIONS",
    "EXIT_CODES",
    "FAILED",
    "GOAL_STATUSES",
    "IN_PROGRESS",
    "RUNNING",
    "STALLED",
    "TERMINAL_STATUSES",
    "TIMEOUT",
    "Evaluation",
    "GoalOptions",
    "GoalProgress",
    "GoalResult",
    "GoalRunner",
    "TodoItem",
    "arun_goal",
    "build_continuation_prompt",
    "build_initial_prompt",
    "evaluate",
    "format_duration",
    "goal_title",
    "normalize",
    "parse_checklist",
    "parse_duration",
    "parse_status_block",
    "run_goal",
    "todo_signature",
]
