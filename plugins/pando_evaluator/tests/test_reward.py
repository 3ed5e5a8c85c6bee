"""The spec's numeric cases for the reward."""

from __future__ import annotations

import pytest
from pando_evaluator.config import DEFAULT_CORRECTION_PATTERNS
from pando_evaluator.reward import (
    PatternError,
    compile_patterns,
    count_corrections,
    efficiency_score,
    session_reward,
    success_score,
    token_baseline,
)

PATTERNS = compile_patterns(DEFAULT_CORRECTION_PATTERNS)


def test_no_corrections_and_no_baseline_is_0_9():
    reward = session_reward(["please add a test"], tokens=1234, previous_tokens=[], patterns=PATTERNS)
    assert reward.corrections == 0
    assert reward.success == 1.0
    assert reward.efficiency == 0.5
    assert reward.reward == pytest.approx(0.8 * 1 + 0.2 * 0.5) == pytest.approx(0.9)


def test_two_corrections_give_success_0_4():
    texts = ["write the parser", "That's wrong, the header is optional", "no, fix that: it still fails"]
    assert count_corrections(texts, PATTERNS) == 2
    assert success_score(2) == pytest.approx(0.4)
    assert success_score(4) == 0.0  # never negative


def test_one_correction_per_message_however_many_patterns_match():
    assert count_corrections(["wrong, incorrect, a mistake"], PATTERNS) == 1


def test_spanish_patterns_and_case():
    assert count_corrections(["No era eso", "ESTÁ MAL", "arréglalo"], PATTERNS) == 3


def test_twice_the_baseline_is_zero_efficiency_and_under_it_is_capped_at_one():
    assert efficiency_score(2000, 1000.0) == 0.0
    assert efficiency_score(500, 1000.0) == 1.0
    assert efficiency_score(1250, 1000.0) == pytest.approx(0.75)
    assert efficiency_score(5, None) == 0.5


def test_baseline_is_the_mean_and_none_without_history():
    assert token_baseline([100, 300]) == 200
    assert token_baseline([]) is None
    assert token_baseline([0, 0]) is None


def test_weights_are_configurable():
    reward = session_reward(["ok"], tokens=100, previous_tokens=[100], patterns=PATTERNS, alpha=0.5, beta=0.5)
    assert reward.reward == pytest.approx(0.5 * 1 + 0.5 * 1)


def test_a_bad_pattern_is_one_clear_error():
    with pytest.raises(PatternError, match=r"correction_patterns: '\(' is not a valid regex"):
        compile_patterns(["("])
