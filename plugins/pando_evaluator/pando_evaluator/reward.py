"""The reward of a finished session: user corrections and token efficiency, weighted.

Pure functions, no I/O. ``R = alpha * S_success + beta * S_tokens`` where
``S_success = max(0, 1 - 0.3 * corrections)`` and ``S_tokens`` compares the session's tokens to
the mean of the last scored sessions (0.5 when there is no baseline yet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CORRECTION_PENALTY = 0.3
NO_BASELINE_EFFICIENCY = 0.5


class PatternError(ValueError):
    pass


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise PatternError(f"[evaluator] correction_patterns: {pattern!r} is not a valid regex ({exc})") from exc
    return compiled


def count_corrections(user_texts: Iterable[str], patterns: Sequence[re.Pattern[str]]) -> int:
    """How many user messages correct the assistant (one per message, however many patterns match)."""
    return sum(1 for text in user_texts if any(p.search(text) for p in patterns))


def success_score(corrections: int) -> float:
    return max(0.0, 1.0 - CORRECTION_PENALTY * corrections)


def token_baseline(previous_tokens: Sequence[int]) -> float | None:
    """The mean of earlier sessions' token counts; None when there are none (or all are zero)."""
    if not previous_tokens:
        return None
    mean = sum(previous_tokens) / len(previous_tokens)
    return mean if mean > 0 else None


def efficiency_score(tokens: int, baseline: float | None) -> float:
    if baseline is None or baseline <= 0:
        return NO_BASELINE_EFFICIENCY
    return min(1.0, max(0.0, 1.0 - (tokens - baseline) / baseline))


@dataclass(frozen=True)
class Reward:
    reward: float
    success: float
    efficiency: float
    corrections: int
    tokens: int
    baseline: float | None


def session_reward(
    user_texts: Iterable[str],
    tokens: int,
    previous_tokens: Sequence[int],
    patterns: Sequence[re.Pattern[str]],
    alpha: float = 0.8,
    beta: float = 0.2,
) -> Reward:
    corrections = count_corrections(user_texts, patterns)
    baseline = token_baseline(previous_tokens)
    success = success_score(corrections)
    efficiency = efficiency_score(tokens, baseline)
    return Reward(alpha * success + beta * efficiency, success, efficiency, corrections, tokens, baseline)
