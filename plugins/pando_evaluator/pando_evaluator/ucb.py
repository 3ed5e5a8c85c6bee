"""UCB1 over prompt variants: ``avg + c * sqrt(ln N / n)``, an arm never tried scores +inf.

Pure functions, no I/O. ``N`` is the number of scored sessions that used any variant of the
section, ``n`` those that used this one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def ucb1(avg_reward: float, times_used: int, total_uses: int, c: float = 1.41) -> float:
    if times_used <= 0:
        return math.inf
    if total_uses <= 1:
        return avg_reward  # ln 1 = 0: no exploration bonus yet
    return avg_reward + c * math.sqrt(math.log(total_uses) / times_used)


@dataclass(frozen=True)
class Arm:
    id: str
    times_used: int = 0
    total_reward: float = 0.0

    @property
    def avg_reward(self) -> float:
        return self.total_reward / self.times_used if self.times_used else 0.0


def rank(arms: Sequence[Arm], c: float = 1.41) -> list[tuple[Arm, float]]:
    """Arms with their UCB1 scores, best first; ties keep the given order (the default first)."""
    total = sum(arm.times_used for arm in arms)
    scored = [(arm, ucb1(arm.avg_reward, arm.times_used, total, c)) for arm in arms]
    order = sorted(range(len(scored)), key=lambda i: (-scored[i][1], i))
    return [scored[i] for i in order]


def choose(arms: Sequence[Arm], c: float = 1.41) -> Arm | None:
    ranked = rank(arms, c)
    return ranked[0][0] if ranked else None
