"""The goal loop: one agent turn per iteration, judged, persisted, until a terminal status."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...clock import now_ms
from ...errors import UsageError
from ...services.messages import text_of
from .evaluation import TodoItem, evaluate, normalize, parse_checklist, todo_signature
from .options import DEFAULT_MAX_DURATION, DEFAULT_MAX_ITERATIONS, GoalOptions, format_duration
from .prompts import build_continuation_prompt, build_initial_prompt
from .result import GoalProgress, GoalResult
from .statuses import BLOCKED, CANCELLED, COMPLETED, FAILED, RUNNING, STALLED, TIMEOUT

# tools whose successful call counts as progress even when the answer repeats itself
MUTATING_TOOLS = frozenset({"write", "edit", "patch", "multiedit"})


def goal_title(objective: str) -> str:
    objective = normalize(objective)
    return "Goal: " + (objective[:100] + "..." if len(objective) > 100 else objective)


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
        self._attachments = list(options.attachments)

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
        if opts.plan:
            from ...agent import plan_mode

            plan_mode.start(app, session["id"])
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
        return self._todo_list(session_id) or plan

    def _accept_plan(self, state: _State, plan: str) -> str:
        """Goal mode has nobody to ask: a presented plan is accepted, and counts as progress."""
        from ...agent import plan_mode

        plan_mode.accept(self.app, state.session_id)
        state.iteration += 1
        state.stall_count = 0
        state.progress = "plan presented and accepted"
        state.next_step = "carry out the plan"
        state.response = plan
        prompt = build_continuation_prompt(
            state.objective, state.iteration + 1, state.max_iterations, state.progress, state.next_step
        )
        return f"Your plan is accepted; every tool is available now. Carry it out:\n\n{plan}\n\n{prompt}"

    def _todo_list(self, session_id: str) -> list[TodoItem]:
        """The session's todo_write list as checklist items: when the model keeps one, it is the plan
        (a pending or in-progress item means the goal is not complete)."""
        from ...services import todos

        return [
            TodoItem(normalize(i["content"]), i["status"] == "completed", i["status"] == "in_progress")
            for i in todos.load(self.app, session_id)
        ]

    # -- the loop --------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def run(self, state: _State, prompt: str) -> GoalResult:
        from ...slash_commands.render import GRANT_OWNER

        self._report("started", state)
        if self.options.grants:  # a custom command's allowed-tools hold for every iteration
            self.app.permissions.grant_temporary(state.session_id, GRANT_OWNER, self.options.grants)
        try:
            return await self._run(state, prompt)
        finally:
            self.app.permissions.revoke_temporary(state.session_id, GRANT_OWNER)

    async def _run(self, state: _State, prompt: str) -> GoalResult:
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
            attachments, self._attachments = self._attachments, []  # --image: with the first prompt only
            result = await self.app.coder_agent.run(
                state.session_id, prompt, model_ref=self.options.model_ref or None, on_event=self.on_event,
                cancel_event=turn_cancel, attachments=attachments,
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

        if result.plan:  # --plan: the plan is accepted and carried out from the next iteration
            return self._accept_plan(state, result.plan)

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
        state.plan = self._todo_list(state.session_id) or state.plan
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
        from ...agent.turn_records import AgentEvent

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
