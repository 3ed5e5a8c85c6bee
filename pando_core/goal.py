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

The Go markers ``GOAL COMPLETED: <summary>`` and ``GOAL BLOCKED: <reason>`` and ``Next step:`` /
``Next:`` / ``Remaining work:`` lines are understood too; without any marker the deterministic
heuristics of the Go evaluator apply (blocked / completion / remaining-work / no-progress phrases).
A markdown checklist in the answers (``- [ ] step`` / ``- [x] step``) is the model's TODO plan:
completion claimed while items are unchecked is not accepted; the goal continues with those items.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import now_ms
from .config import core_defaults
from .errors import UsageError
from .services.messages import text_of

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
BLOCKED = "blocked"
TIMEOUT = "timeout"
STALLED = "stalled"
GOAL_STATUSES = (RUNNING, COMPLETED, FAILED, CANCELLED, BLOCKED, TIMEOUT, STALLED)
TERMINAL_STATUSES = frozenset(GOAL_STATUSES) - {RUNNING}

# completed 0; failed, timeout 2; blocked, cancelled, stalled 1 (spec §11.10)
EXIT_CODES = {COMPLETED: 0, FAILED: 2, TIMEOUT: 2, BLOCKED: 1, CANCELLED: 1, STALLED: 1, RUNNING: 1}

# the defaults are those of the config section [goal]
_GOAL_DEFAULTS = core_defaults("goal")
DEFAULT_MAX_ITERATIONS: int = _GOAL_DEFAULTS["max_iterations"]
DEFAULT_MAX_DURATION: float = _GOAL_DEFAULTS["max_duration"]
DEFAULT_STALL_ITERATIONS: int = _GOAL_DEFAULTS["stall_iterations"]
MAX_PROGRESS_CHARS = 2000
MUTATING_TOOLS = frozenset({"write", "edit", "patch", "multiedit"})

# the model's own verdict inside the status block
IN_PROGRESS = "in_progress"


# ----------------------------------------------------------------------------------------- result


@dataclass
class GoalResult:
    """The outcome of a goal run (seed: NonInteractiveGoalResult)."""

    session_id: str
    objective: str
    status: str
    iteration: int
    max_iterations: int
    max_duration_seconds: int
    response: str = ""
    progress: str = ""
    next_step: str = ""
    blocked_reason: str = ""

    def as_json(self) -> dict[str, Any]:
        """The JSON object of ``pando goal -f json`` (empty progress/next_step/blocked_reason omitted)."""
        data: dict[str, Any] = {
            "session_id": self.session_id,
            "objective": self.objective,
            "status": self.status,
            "iteration": self.iteration,
            "max_iterations": self.max_iterations,
            "max_duration_seconds": self.max_duration_seconds,
            "response": self.response,
        }
        for key in ("progress", "next_step", "blocked_reason"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> GoalResult:
        return cls(
            session_id=row["session_id"],
            objective=row["objective"],
            status=row["status"],
            iteration=int(row["iteration"] or 0),
            max_iterations=int(row["max_iterations"] or 0),
            max_duration_seconds=int(row["max_duration_seconds"] or 0),
            response=row.get("response") or "",
            progress=row.get("last_progress") or "",
            next_step=row.get("next_step") or "",
            blocked_reason=row.get("blocked_reason") or "",
        )


@dataclass
class GoalProgress:
    """What ``on_progress`` receives: ``kind`` is started, iteration_start, iteration or finished."""

    kind: str
    goal_id: str
    session_id: str
    objective: str
    status: str
    iteration: int
    max_iterations: int
    elapsed: float
    progress: str = ""
    next_step: str = ""
    blocked_reason: str = ""
    resumed: bool = False


# ------------------------------------------------------------------------------------------ prompts

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
(or drop them) when they no longer apply."""

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
            "\n## Not completed yet\nYou reported the goal as completed, but your checklist still has "
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


# -------------------------------------------------------------------------------------- evaluation

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_DECOR = r"[\s>*_#+-]*"
_FIELD = re.compile(
    rf"^{_DECOR}(goal[ _]status|progress|next[ _]step|next|remaining[ _]work|blocked[ _]reason)"
    r"\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.*?)\s*(?:\*\*|__)?\s*$",
    re.IGNORECASE,
)
_INLINE_NEXT = re.compile(r"\b(?:next step|remaining work)\s*:\s*(.+)", re.IGNORECASE)
_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[([ xX~>/-])\]\s+(.+?)\s*$")
_MARK_BLOCKED = re.compile(r"\bGOAL\s+BLOCKED\b\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)
_MARK_COMPLETED = re.compile(r"\bGOAL\s+COMPLETED?\b\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)

_COMPLETION_RULES = [
    re.compile(r"\bsuccessfully (implemented|completed|finished|resolved|verified)\b", re.I),
    re.compile(r"\ball (tests|checks) (pass|passed|are passing)\b", re.I),
    re.compile(r"\bverified (working|it works|the fix works|the implementation works)\b", re.I),
    re.compile(r"\bgoal achieved\b", re.I),
    re.compile(r"\bcompleted successfully\b", re.I),
]
_BLOCKED_RULES = [
    re.compile(r"\b(cannot|can't|can not) continue without\b", re.I),
    re.compile(r"\b(blocked by|waiting for (user input|credentials|permission|access))\b", re.I),
    re.compile(r"\b(missing|need) (credentials|permission|access)\b", re.I),
]
_REMAINING_RULES = [
    re.compile(
        r"\b(still needs? to|remaining|remain(ing)? tasks?|next steps?|pending|follow-?up|left to do|"
        r"continue|continuing|not yet|todo)\b",
        re.I,
    ),
    re.compile(r"\b(will now|next i(?:'|’)ll|then i(?:'|’)ll)\b", re.I),
]
_NO_PROGRESS_RULES = [
    re.compile(
        r"\b(no progress|unable to make progress|haven't made progress|have not made progress)\b", re.I
    ),
    re.compile(r"\b(still stuck|same issue|same blocker|still failing|still blocked)\b", re.I),
]


def normalize(text: str | None) -> str:
    return " ".join((text or "").split())


def _clip(text: str, limit: int = MAX_PROGRESS_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _matches(rules: list[re.Pattern[str]], text: str) -> bool:
    return any(rule.search(text) for rule in rules)


def _prose_lines(text: str) -> list[str]:
    """The lines of `text` outside fenced code blocks."""
    lines, fenced = [], False
    for line in (text or "").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


@dataclass
class TodoItem:
    text: str
    done: bool
    active: bool = False  # [~] / [>] / [/] : in progress


def parse_checklist(text: str) -> list[TodoItem]:
    """The markdown checklist items of `text`; an item restated later wins (and moves to its place)."""
    items: list[TodoItem] = []
    for line in _prose_lines(text):
        match = _CHECKBOX.match(line)
        if match:
            mark, body = match.group(1), normalize(match.group(2))
            items.append(TodoItem(body, mark in "xX", mark in "~>/"))
    # a later answer restating the plan wins: keep the last occurrence of each item text
    latest: dict[str, TodoItem] = {}
    for item in items:
        latest.pop(item.text, None)
        latest[item.text] = item
    return list(latest.values())


def todo_signature(items: list[TodoItem]) -> str:
    return "||".join(f"{'x' if i.done else ('~' if i.active else ' ')}|{i.text}" for i in items)


def parse_status_block(text: str) -> dict[str, str]:
    """Fields of the status block (last occurrence of each): status, progress, next_step, blocked_reason."""
    fields: dict[str, str] = {}
    for line in _prose_lines(text):
        match = _FIELD.match(line)
        if not match:
            continue
        key = match.group(1).lower().replace(" ", "_")
        value = normalize(match.group(2).strip("`*_ "))
        if value.startswith("<") and value.endswith(">"):
            continue  # the template's placeholder, echoed back
        if key in ("next", "remaining_work"):
            key = "next_step"
        elif key == "goal_status":
            key = "status"
        if value:
            fields[key] = value
    return fields


def _normalize_status(value: str) -> str | None:
    word = value.lower().strip(" .`*<>|")
    word = re.split(r"[\s|/,]+", word)[0] if word else ""
    if word in ("completed", "complete", "done", "achieved", "finished", "success"):
        return COMPLETED
    if word in ("blocked", "stuck"):
        return BLOCKED
    if word in (
        "in_progress",
        "in-progress",
        "in",
        "progress",
        "ongoing",
        "continuing",
        "working",
        "running",
    ):
        return IN_PROGRESS
    return None


@dataclass
class Evaluation:
    status: str  # in_progress | completed | blocked
    progress: str
    next_step: str
    reason: str = ""
    explicit_progress: str = ""
    todos: list[TodoItem] = field(default_factory=list)
    unchecked_claim: list[str] = field(default_factory=list)  # completion refused: these are open
    no_progress_phrase: bool = False


def evaluate(
    response: str, turn_text: str = "", plan: list[TodoItem] | None = None, initial_todo_sig: str = ""
) -> Evaluation:
    """Judge one iteration's answer (deterministic). `plan` is the current checklist plan."""
    response = response or ""
    source = response if response.strip() else turn_text
    lines = _prose_lines(source)
    prose = "\n".join(lines)
    marker_text = _INLINE_CODE.sub("", prose)
    fields = parse_status_block(source)
    todos = list(plan or [])
    open_items = [t.text for t in todos if not t.done]
    norm = normalize(prose)

    progress = fields.get("progress", "")
    explicit_progress = progress
    next_step = fields.get("next_step", "")
    if not next_step and open_items:
        active = [t.text for t in todos if t.active and not t.done]
        next_step = (active or open_items)[0]
    if not next_step:
        inline = _INLINE_NEXT.findall(prose)
        next_step = normalize(inline[-1]) if inline else ""
    reason = fields.get("blocked_reason", "")

    status: str | None = _normalize_status(fields["status"]) if "status" in fields else None
    marker_reason = ""
    if status is None:
        blocked = _MARK_BLOCKED.search(marker_text)
        completed = _MARK_COMPLETED.search(marker_text)
        if blocked:
            status = BLOCKED
            marker_reason = next((normalize(x) for x in blocked.group(1).splitlines() if x.strip()), "")
        elif completed:
            status = COMPLETED
            rest = completed.group(1)
            marker_reason = normalize(rest.split("\n", 1)[0]) or normalize(rest)
    if status is None:
        has_completion = _matches(_COMPLETION_RULES, norm)
        has_remaining = _matches(_REMAINING_RULES, norm)
        sig = todo_signature(todos)
        plan_done = bool(todos) and not open_items
        if _matches(_BLOCKED_RULES, norm) and not has_completion:
            status = BLOCKED
        elif (plan_done and sig != initial_todo_sig and not has_remaining) or (
            has_completion and not has_remaining and (not todos or plan_done)
        ):
            status = COMPLETED
        else:
            status = IN_PROGRESS

    if not progress:
        if status == COMPLETED and marker_reason:
            progress = marker_reason
        else:
            progress = _clip(norm)
    if not progress and todos:
        done = sum(1 for t in todos if t.done)
        progress = f"{done}/{len(todos)} planned steps done"
    progress = _clip(progress)

    unchecked: list[str] = []
    if status == COMPLETED and open_items:
        status = IN_PROGRESS
        unchecked = open_items
    if status == BLOCKED:
        reason = reason or marker_reason or progress or "goal reported as blocked"
        next_step = ""
    elif status == COMPLETED:
        next_step = ""
        reason = ""
    else:
        reason = ""
    return Evaluation(
        status=status,
        progress=progress,
        next_step=_clip(next_step, 500),
        reason=_clip(reason, 1000),
        explicit_progress=explicit_progress,
        todos=todos,
        unchecked_claim=unchecked,
        no_progress_phrase=_matches(_NO_PROGRESS_RULES, norm),
    )


# ------------------------------------------------------------------------------------------ options


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Go-style duration string ("90", "90s", "5m", "1h30m", "500ms")."""
    if value is None or value == "":
        raise ValueError("empty duration")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total, pos = 0.0, 0
    for match in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * units[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r} (use seconds, or e.g. 90s, 5m, 1h)")
    return total


def format_duration(seconds: float) -> str:
    """Like Go's time.Duration.String for whole seconds: 1s, 1m30s, 1h0m0s."""
    if seconds < 1:
        return f"{int(round(seconds * 1000))}ms"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass
class GoalOptions:
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    max_duration: float = DEFAULT_MAX_DURATION
    stall_iterations: int = DEFAULT_STALL_ITERATIONS
    initial_prompt: str = ""

    @classmethod
    def resolve(
        cls,
        app: Any,
        max_iterations: int | None = None,
        max_duration: float | str | None = None,
        stall_iterations: int | None = None,
        initial_prompt: str = "",
    ) -> GoalOptions:
        """Explicit values, else config ``[goal]`` (max_iterations, max_duration, stall_iterations; their
        defaults are 20, 3600 s and 3)."""
        config = app.config.section("goal")
        try:
            if not max_iterations or max_iterations <= 0:
                max_iterations = int(config["max_iterations"])
            if max_duration in (None, "", 0):
                max_duration = config["max_duration"]
            seconds = parse_duration(max_duration)
            if not stall_iterations or stall_iterations <= 0:
                stall_iterations = int(config["stall_iterations"])
        except (TypeError, ValueError) as exc:
            raise UsageError(f"goal options: {exc}") from exc
        if max_iterations <= 0:
            raise UsageError("--max-iterations (goal.max_iterations) must be at least 1")
        if seconds <= 0:
            raise UsageError("--max-duration (goal.max_duration) must be positive")
        return cls(max_iterations, seconds, max(1, stall_iterations), initial_prompt)


def goal_title(objective: str) -> str:
    objective = normalize(objective)
    return "Goal: " + (objective[:100] + "..." if len(objective) > 100 else objective)


# ------------------------------------------------------------------------------------------- runner


class _Cancel:
    """Wraps the caller's cancel event (asyncio.Event or threading.Event, or None)."""

    def __init__(self, event: Any) -> None:
        self.event = event

    def is_set(self) -> bool:
        return bool(self.event is not None and self.event.is_set())

    async def wait(self) -> None:
        if self.event is None:
            await asyncio.Event().wait()
        elif isinstance(self.event, asyncio.Event):
            await self.event.wait()
        else:
            while not self.event.is_set():
                await asyncio.sleep(0.05)


@dataclass
class _State:
    goal_id: str
    session_id: str
    objective: str
    max_iterations: int
    max_duration: float
    max_duration_seconds: int
    iteration: int = 0
    status: str = RUNNING
    progress: str = ""
    next_step: str = ""
    blocked_reason: str = ""
    response: str = ""
    stall_count: int = 0
    plan: list[TodoItem] = field(default_factory=list)
    initial_todo_sig: str = ""
    last_todo_sig: str = ""
    last_signature: str | None = None
    completed_at: int | None = None

    def finish(self, status: str) -> None:
        if self.status != RUNNING:
            raise RuntimeError(f"goal {self.goal_id}: invalid transition {self.status} -> {status}")
        self.status = status
        self.completed_at = now_ms()


class GoalRunner:
    """One goal run of one App (use `run_goal` / `arun_goal`)."""

    def __init__(
        self,
        app: Any,
        options: GoalOptions,
        *,
        on_event: Callable[[Any], None] | None = None,
        on_progress: Callable[[GoalProgress], None] | None = None,
        cancel_event: Any = None,
    ) -> None:
        self.app = app
        self.options = options
        self.on_event = on_event
        self.on_progress = on_progress
        self.cancel = _Cancel(cancel_event)
        self.started = time.monotonic()
        self.resumed = False
        self._row: dict[str, Any] = {}

    # -- setup ---------------------------------------------------------------------------------

    def start(self, objective: str, resume_session: str | None) -> tuple[_State, str]:
        """Create (or reopen) the goal row; return the state and the first prompt."""
        app, opts = self.app, self.options
        objective = (objective or "").strip()
        duration_seconds = int(math.ceil(opts.max_duration))
        if resume_session:
            session = app.sessions.restore(resume_session)
            row = app.store.goals.latest_for_session(session_id=session["id"])
            if row is not None and row["status"] != COMPLETED:
                return self._reopen(session, row, duration_seconds, extra=objective)
            if not objective:
                what = "its latest goal is already completed" if row else "it has no goal"
                raise UsageError(
                    f"cannot resume session {session['id']}: {what}; give an objective to start a new one"
                )
        elif not objective:
            raise UsageError("the goal objective is empty")
        else:
            session = app.sessions.create(title=goal_title(objective))
        row = app.store.goals.create(
            session_id=session["id"],
            objective=objective,
            max_iterations=opts.max_iterations,
            max_duration_seconds=duration_seconds,
        )
        state = self._state(row)
        prompt = build_initial_prompt(
            objective,
            max_iterations=opts.max_iterations,
            max_duration=opts.max_duration,
            stall_iterations=opts.stall_iterations,
            extra=opts.initial_prompt,
        )
        return state, prompt

    def _reopen(self, session: dict, row: dict, duration_seconds: int, extra: str) -> tuple[_State, str]:
        self.resumed = True
        row = self.app.store.goals.update(
            id=row["id"],
            status=RUNNING,
            completed_at=None,
            blocked_reason=None,
            max_iterations=self.options.max_iterations,
            max_duration_seconds=duration_seconds,
        )
        state = self._state(row)
        state.progress = row.get("last_progress") or ""
        state.next_step = row.get("next_step") or ""
        state.response = row.get("response") or ""
        state.stall_count = 0  # a resumed goal gets a fresh stall budget
        state.plan = self._plan_from_history(session["id"])
        state.initial_todo_sig = state.last_todo_sig = todo_signature(state.plan)
        extra = "\n\n".join(x for x in (self.options.initial_prompt.strip(), extra.strip()) if x)
        prompt = build_continuation_prompt(
            state.objective,
            state.iteration + 1,
            state.max_iterations,
            state.progress,
            state.next_step,
            extra=extra,
        )
        return state, prompt

    def _state(self, row: dict) -> _State:
        return _State(
            goal_id=row["id"],
            session_id=row["session_id"],
            objective=row["objective"],
            max_iterations=int(row["max_iterations"]),
            max_duration=self.options.max_duration,
            max_duration_seconds=int(row["max_duration_seconds"]),
            iteration=int(row.get("iteration") or 0),
        )

    def _plan_from_history(self, session_id: str) -> list[TodoItem]:
        plan: list[TodoItem] = []
        for message in self.app.messages.list(session_id):
            if message["role"] == "assistant":
                items = parse_checklist(text_of(message))
                if items:
                    plan = items
        return plan

    # -- the loop --------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def run(self, state: _State, prompt: str) -> GoalResult:
        self._report("started", state)
        try:
            while state.status == RUNNING:
                if self._check_limits(state):
                    self._persist(state)
                    break
                before = state.iteration
                prompt = await self._iteration(state, prompt)
                self._persist(state)
                if state.iteration > before:
                    self._report("iteration", state)
        except asyncio.CancelledError:
            if state.status == RUNNING:
                self._cancelled(state)
            self._persist(state)
            raise
        try:
            self.app.sessions.end(state.session_id)
        except Exception:  # noqa: BLE001 - ending hooks are best effort
            pass
        result = GoalResult.from_row(self._row)
        self._report("finished", state)
        return result

    def _check_limits(self, state: _State) -> bool:
        if self.cancel.is_set():
            self._cancelled(state)
            return True
        if self.elapsed() >= state.max_duration:
            self._timeout(state)
            return True
        if state.iteration >= state.max_iterations:
            state.blocked_reason = f"GOAL STOPPED: reached max iterations ({state.max_iterations})"
            state.progress = state.progress or state.blocked_reason
            state.finish(FAILED)
            return True
        return False

    @staticmethod
    def _cancelled(state: _State) -> None:
        state.progress = state.progress or "GOAL CANCELLED"
        state.blocked_reason = "GOAL CANCELLED"
        state.finish(CANCELLED)

    def _timeout(self, state: _State) -> None:
        text = f"GOAL TIMEOUT: exceeded max duration ({format_duration(state.max_duration)})"
        state.blocked_reason = text
        state.progress = state.progress or text
        state.finish(TIMEOUT)

    async def _iteration(self, state: _State, prompt: str) -> str:
        """Run one turn and evaluate it; returns the next prompt."""
        self._report("iteration_start", state)
        turn_cancel = asyncio.Event()
        why: list[str] = []

        def stop(reason: str) -> None:
            if not turn_cancel.is_set():
                why.append(reason)
                turn_cancel.set()

        loop = asyncio.get_running_loop()
        remaining = max(0.0, state.max_duration - self.elapsed())
        timer = loop.call_later(remaining, stop, "deadline")

        async def watch_cancel() -> None:
            await self.cancel.wait()
            stop("cancel")

        watcher = asyncio.ensure_future(watch_cancel())
        try:
            result = await self.app.coder_agent.run(
                state.session_id, prompt, on_event=self.on_event, cancel_event=turn_cancel
            )
        finally:
            timer.cancel()
            watcher.cancel()

        if result.status == "cancelled":
            if why and why[0] == "deadline":
                self._timeout(state)
            else:
                self._cancelled(state)
        elif result.status in ("error", "permission_denied"):
            state.blocked_reason = _turn_failure(result)
            if result.response.strip():
                state.response = result.response.strip()
            state.finish(BLOCKED)
        if state.status != RUNNING:  # the turn did not complete: nothing to evaluate
            self._emit_error(state, state.blocked_reason)
            return prompt

        response = result.response.strip()
        texts = self._turn_texts(state.session_id)
        turn_text = "\n".join(texts).strip()
        if response or turn_text:
            state.response = response or turn_text
        for text in reversed(texts or [response]):
            items = parse_checklist(text)
            if items:
                state.plan = items
                break
        ev = evaluate(response, turn_text, state.plan, state.initial_todo_sig)
        todo_sig = todo_signature(ev.todos)
        signature = f"{normalize(ev.explicit_progress)}|{normalize(ev.next_step)}|{todo_sig}"
        mutated = any(c.get("name") in MUTATING_TOOLS and not c.get("is_error") for c in result.tool_calls)
        if ev.status in (COMPLETED, BLOCKED):
            made = True
        elif todo_sig and todo_sig != state.last_todo_sig:
            made = True
        elif ev.no_progress_phrase:
            made = False
        else:
            made = mutated or signature != state.last_signature
        state.iteration += 1
        state.last_signature = signature
        state.last_todo_sig = todo_sig
        state.stall_count = 0 if made else state.stall_count + 1
        state.progress = ev.progress or state.progress
        state.next_step = ev.next_step
        if ev.status == COMPLETED:
            state.blocked_reason = ""
            state.finish(COMPLETED)
        elif ev.status == BLOCKED:
            state.blocked_reason = ev.reason
            state.finish(BLOCKED)
        elif state.stall_count >= self.options.stall_iterations:
            state.blocked_reason = (
                f"GOAL STALLED: no measurable progress for {state.stall_count} consecutive iterations"
            )
            state.next_step = ""
            state.finish(STALLED)
        else:
            state.blocked_reason = ""
        return build_continuation_prompt(
            state.objective,
            state.iteration + 1,
            state.max_iterations,
            state.progress,
            state.next_step,
            unchecked=ev.unchecked_claim,
        )

    def _turn_texts(self, session_id: str) -> list[str]:
        """The assistant texts of the last turn (the messages after the last user message), in order."""
        texts: list[str] = []
        for message in reversed(self.app.messages.list(session_id)):
            if message["role"] == "user":
                break
            if message["role"] == "assistant":
                text = text_of(message)
                if text.strip():
                    texts.append(text)
        return list(reversed(texts))

    # -- persistence and reporting ----------------------------------------------------------------

    def _persist(self, state: _State) -> None:
        self._row = row = self.app.store.goals.update(
            id=state.goal_id,
            status=state.status,
            iteration=state.iteration,
            last_progress=state.progress or None,
            next_step=state.next_step or None,
            blocked_reason=state.blocked_reason or None,
            response=state.response or None,
            stall_count=state.stall_count,
            completed_at=state.completed_at if state.status != RUNNING else None,
        )
        self.app.events.publish("goal.updated", row)

    def _emit_error(self, state: _State, message: str) -> None:
        if self.on_event is None:
            return
        from .agent.loop import AgentEvent

        try:
            self.on_event(AgentEvent("error", state.session_id, {"error": message}))
        except Exception:  # noqa: BLE001 - a UI callback must not break the goal
            pass

    def _report(self, kind: str, state: _State) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(
                GoalProgress(
                    kind=kind,
                    goal_id=state.goal_id,
                    session_id=state.session_id,
                    objective=state.objective,
                    status=state.status,
                    iteration=state.iteration,
                    max_iterations=state.max_iterations,
                    elapsed=self.elapsed(),
                    progress=state.progress,
                    next_step=state.next_step,
                    blocked_reason=state.blocked_reason,
                    resumed=self.resumed,
                )
            )
        except Exception:  # noqa: BLE001 - a UI callback must not break the goal
            pass


def _turn_failure(result: Any) -> str:
    """The blocked reason for a turn that ended in an error or a refused tool call."""
    if result.status == "error":
        return f"agent error: {result.error or 'unknown error'}"
    denied = "; ".join(
        f"{d.get('tool')} {d.get('action')} {d.get('description', '')}".strip() for d in result.denials
    )
    return (
        f"permission denied: {denied or 'a tool call was refused'} "
        "(re-run with --yolo or allow the tool in [permissions])"
    )


async def arun_goal(
    app: Any,
    objective: str,
    *,
    max_iterations: int | None = None,
    max_duration: float | str | None = None,
    stall_iterations: int | None = None,
    initial_prompt: str = "",
    resume_session: str | None = None,
    on_event: Callable[[Any], None] | None = None,
    cancel_event: asyncio.Event | threading.Event | None = None,
    on_progress: Callable[[GoalProgress], None] | None = None,
    options: GoalOptions | None = None,
) -> GoalResult:
    """The goal loop (async). None limits come from config ``[goal]`` (default 20 / 3600 s / 3).

    ``options``: limits already resolved with `GoalOptions.resolve`; the limit keywords and
    ``initial_prompt`` are then not used.
    """
    if options is None:
        options = GoalOptions.resolve(app, max_iterations, max_duration, stall_iterations, initial_prompt)
    runner = GoalRunner(app, options, on_event=on_event, on_progress=on_progress, cancel_event=cancel_event)
    state, prompt = runner.start(objective, resume_session)
    return await runner.run(state, prompt)


def run_goal(
    app: Any,
    objective: str,
    *,
    max_iterations: int | None = DEFAULT_MAX_ITERATIONS,
    max_duration: float | str | None = DEFAULT_MAX_DURATION,
    **options: Any,
) -> GoalResult:
    """Run a goal to a terminal status (blocking); other keywords as for `arun_goal`.

    Unlike `arun_goal`, the limits default to 20 iterations / 3600 s: pass None to use config ``[goal]``.
    """
    return asyncio.run(
        arun_goal(app, objective, max_iterations=max_iterations, max_duration=max_duration, **options)
    )
