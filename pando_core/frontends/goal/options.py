"""The limits of a goal run: iterations, duration, stall budget (options, else config ``[goal]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...config import core_defaults
from ...durations import format_duration, parse_duration
from ...errors import UsageError

__all__ = ["GoalOptions", "format_duration", "parse_duration"]

# the defaults are those of the config section [goal]
_GOAL_DEFAULTS = core_defaults("goal")
DEFAULT_MAX_ITERATIONS: int = _GOAL_DEFAULTS["max_iterations"]
DEFAULT_MAX_DURATION: float = _GOAL_DEFAULTS["max_duration"]
DEFAULT_STALL_ITERATIONS: int = _GOAL_DEFAULTS["stall_iterations"]


@dataclass
class GoalOptions:
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    max_duration: float = DEFAULT_MAX_DURATION
    stall_iterations: int = DEFAULT_STALL_ITERATIONS
    initial_prompt: str = ""
    plan: bool = False  # plan mode first: read-only tools until the model presents a plan (then accepted)
    attachments: list[dict[str, Any]] = field(default_factory=list)  # --image parts, sent with the first prompt
    model_ref: str = ""  # a custom command's frontmatter model (every iteration), "" for the default
    grants: list[tuple[str, str]] = field(default_factory=list)  # a custom command's allowed-tools, for the whole goal

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
