"""UCB1: the spec's case N=10, n=2, c=1.41, and the choice among a section's variants."""

from __future__ import annotations

import math

import pytest
from pando_evaluator.ucb import Arm, choose, rank, ucb1


def test_formula_with_n10_n2_c141():
    expected = 0.6 + 1.41 * math.sqrt(math.log(10) / 2)
    assert ucb1(0.6, 2, 10, 1.41) == pytest.approx(expected)
    assert ucb1(0.6, 2, 10, 1.41) == pytest.approx(2.11294, abs=1e-4)


def test_never_used_is_infinite():
    assert ucb1(0.0, 0, 10) == math.inf


def test_no_total_yet_is_the_average():
    assert ucb1(0.7, 1, 1) == 0.7


def test_an_untried_arm_is_chosen_first_then_the_best():
    arms = [Arm("default", 5, 4.0), Arm("v1", 0, 0.0)]
    assert choose(arms).id == "v1"
    arms = [Arm("default", 5, 2.0), Arm("v1", 5, 4.5)]
    assert choose(arms).id == "v1"
    ranked = rank(arms, 1.41)
    assert [arm.id for arm, _ in ranked] == ["v1", "default"]
    assert ranked[0][1] == pytest.approx(0.9 + 1.41 * math.sqrt(math.log(10) / 5))


def test_ties_keep_the_given_order():
    assert choose([Arm("default"), Arm("v1")]).id == "default"
    assert choose([]) is None
