"""The prompts of goal mode: the first one, and the continuation after each iteration.

Both explain the status block the model must end each answer with (see `evaluation`).
"""

from __future__ import annotations

from .options import DEFAULT_MAX_DURATION, DEFAULT_MAX_ITERATIONS, DEFAULT_STALL_ITERATIONS, format_duration

STATUS_BLOCK_HELP = """## Reporting (required)
End EVERY answer with this status block, each field on its own line:

GOAL_STATUS: <in_progress | completed | blocked>
PROGRESS: <one line: what is concretely done so far>
NEXT_STEP: <one line: the next concrete action (when in_progress)>
BLOCKED_REASON: <one line: what you need from outside to continue (when blocked)>

- `completed`: the whole objective is achieved and verified. `GOAL COMPLETED: <summary>` also counts.
- `blocked`: you cannot continue without something only a human can provide (credentials, access,
  a decision). `GOAL BLOCKED: <what is needed>` also counts.
- `in_progress`: anything else; you will get another iteration.

## Plan
Keep your plan as a markdown checklist and repeat it, updated, in every answer:
- [x] a finished step
- [ ] a step still to do
Never report `completed` while the checklist has unchecked items: finish them, or check them off
(or drop them) when they no longer apply. If you keep a todo list with `todo_write`, it is the plan:
the goal is not complete while an item is pending or in_progress."""

INITIAL_PROMPT = """# GOAL MODE

You have a persistent objective. Work on it autonomously until it is achieved or genuinely blocked.

## Objective
{objective}

## How to work
1. Break the objective into concrete steps (your checklist plan).
2. Execute the steps with your tools: act, then check the result.
3. After each step, evaluate: did I make progress? Am I stuck? Is the objective achieved?
4. Keep going within this answer as far as you can; you will be called again if work remains.

## Rules
- Work autonomously: never ask the user questions and never say "let me know" — make reasonable
  assumptions and state them.
- Be efficient: if something can be done in one tool call, do it in one call.
- Verify your work (run the tests or the program) before reporting completion.

{status_help}

## Stop conditions
- You report `completed` (goal done) or `blocked` (external input needed).
- The iteration limit ({max_iterations}) or the time limit ({max_duration}) is reached.
- No measurable progress for {stall_iterations} consecutive iterations: the goal is marked stalled."""

CONTINUATION_PROMPT = """# GOAL MODE — iteration {iteration} of {max_iterations}

Continue working toward the objective.

## Objective
{objective}

## Progress so far
{progress}

## Next step
{next_step}
{notes}
Evaluate after this iteration: did you make measurable progress, what remains, is the objective
achieved?

{status_help}"""

NO_PROGRESS_YET = "None recorded yet."
DEFAULT_NEXT_STEP = "Take the next concrete action toward the objective and update the plan."


def build_initial_prompt(
    objective: str,
    *,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    max_duration: float = DEFAULT_MAX_DURATION,
    stall_iterations: int = DEFAULT_STALL_ITERATIONS,
    extra: str = "",
) -> str:
    text = INITIAL_PROMPT.format(
        objective=objective.strip(),
        status_help=STATUS_BLOCK_HELP,
        max_iterations=max_iterations,
        max_duration=format_duration(max_duration),
        stall_iterations=stall_iterations,
    )
    if extra.strip():
        text += "\n\n## Additional instructions\n" + extra.strip()
    return text


def build_continuation_prompt(
    objective: str,
    iteration: int,
    max_iterations: int,
    progress: str = "",
    next_step: str = "",
    *,
    unchecked: list[str] | None = None,
    extra: str = "",
) -> str:
    iteration = max(iteration, 1)
    max_iterations = max(max_iterations, iteration)
    notes = ""
    if unchecked:
        items = "\n".join(f"- [ ] {item}" for item in unchecked)
        notes += (
            "\n## Not completed yet\nYou reported the goal as completed, but your checklist (or todo list) still has "
            f"unchecked items:\n{items}\nFinish them (or check them off / drop them if they no longer "
            "apply) before reporting `GOAL_STATUS: completed`.\n"
        )
    if extra.strip():
        notes += "\n## Additional instructions\n" + extra.strip() + "\n"
    return CONTINUATION_PROMPT.format(
        iteration=iteration,
        max_iterations=max_iterations,
        objective=objective.strip(),
        progress=progress.strip() or NO_PROGRESS_YET,
        next_step=next_step.strip() or DEFAULT_NEXT_STEP,
        notes=notes,
        status_help=STATUS_BLOCK_HELP,
    )
