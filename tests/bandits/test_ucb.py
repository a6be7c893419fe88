"""UCB1: untried arms first, then the index; exact tie propensities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits import UCB, UCBParams

ONE = np.zeros(1, dtype=np.int64)


def test_untried_arms_first_with_uniform_tie_break() -> None:
    policy = UCB(4).set_stats(np.array([[5.0, 0, 3, 0]]), np.array([[5.0, 0, 0, 0]]))
    probs = policy.arm_probabilities(ONE)
    np.testing.assert_array_equal(probs, [[0, 0.5, 0, 0.5]])
    batch = policy.decide(np.zeros(4000, dtype=np.int64), np.random.default_rng(0))
    assert set(batch.arm.tolist()) == {1, 3}
    np.testing.assert_array_equal(batch.propensity, 0.5)
    assert abs((batch.arm == 1).mean() - 0.5) < 5 * math.sqrt(0.25 / 4000)
    assert batch.explored.all()  # untried arms are not the best-known arm


def test_untried_arm_outside_the_mask_is_skipped() -> None:
    policy = UCB(4).set_stats(np.array([[5.0, 0, 3, 0]]), np.array([[5.0, 0, 0, 0]]))
    allowed = np.array([[True, False, True, True]])
    batch = policy.decide(ONE, np.random.default_rng(0), allowed)
    assert batch.arm[0] == 3 and batch.propensity[0] == 1.0


def test_index_is_ucb1_and_known_max_is_picked() -> None:
    pulls = np.array([[10.0, 20, 30]])
    rewards = np.array([[2.0, 10, 6]])
    policy = UCB(3).set_stats(pulls, rewards)
    expected = rewards / pulls + np.sqrt(2 * math.log(60) / pulls)
    np.testing.assert_allclose(policy.index_, expected)
    greedy = UCB(3, params=UCBParams(c=0.0)).set_stats(pulls, rewards)
    batch = greedy.decide(np.zeros(10, dtype=np.int64), np.random.default_rng(0))
    assert (batch.arm == 1).all() and (batch.propensity == 1).all() and not batch.explored.any()


def test_exact_ties_are_broken_uniformly() -> None:
    policy = UCB(3).set_stats(np.array([[10.0, 10, 40]]), np.array([[3.0, 3, 1]]))
    np.testing.assert_array_equal(policy.arm_probabilities(ONE), [[0.5, 0.5, 0]])


def test_segments_are_separate_unless_pooled() -> None:
    pulls = np.array([[10.0, 10], [10.0, 10]])
    rewards = np.array([[8.0, 1], [1.0, 2]])
    seg = np.array([0, 1])
    per_segment = UCB(2, 2, UCBParams(c=0.0)).set_stats(pulls, rewards)
    np.testing.assert_array_equal(per_segment.arm_probabilities(seg), [[1, 0], [0, 1]])
    pooled = UCB(2, 2, UCBParams(c=0.0, pooled=True)).set_stats(pulls, rewards)
    np.testing.assert_array_equal(pooled.arm_probabilities(seg), [[1, 0], [1, 0]])


def test_discount() -> None:
    policy = UCB(2, params=UCBParams(gamma=0.5))
    policy.partial_fit(np.array([0, 0]), np.array([0, 1]), np.array([1.0, 1.0]))
    policy.partial_fit(np.array([0]), np.array([0]), np.array([0.0]))
    np.testing.assert_allclose(policy.pulls_, [[1.5, 0.5]])
    np.testing.assert_allclose(policy.rewards_, [[0.5, 0.5]])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("c", -1.0, "c must be a finite number >= 0, got -1.0"),
        ("gamma", 2, r"gamma must be in \(0, 1\], got 2"),
        ("pooled", 1, "pooled must be true or false, got 1"),
    ],
)
def test_bad_hyperparameters_name_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UCBParams(**{field: value})  # type: ignore[arg-type]
