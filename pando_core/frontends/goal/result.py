"""What a goal run reports: the final result (the JSON of ``pando goal -f json``) and progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .statuses import EXIT_CODES


@dataclass
class GoalResult:
    """The outcome of a goal run: what ``pando goal`` prints and its exit code."""

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
