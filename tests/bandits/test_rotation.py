"""Strategy rotation and randomized interleaving."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import (
    UCB,
    EpsilonGreedy,
    EpsilonGreedyParams,
    Interleaved,
    InterleavedParams,
    Rotation,
    RotationParams,
    ThompsonSampling,
    UCBParams,
    UniformRandom,
)

K = 3
PULLS = np.array([[30.0, 30, 30]])
REWARDS = np.array([[3.0, 9, 6]])


def _children():
    return [
        ThompsonSampling(K).set_stats(PULLS, REWARDS),
        UCB(K).set_stats(PULLS, REWARDS),
        EpsilonGreedy(K).set_stats(PULLS, REWARDS),
    ]


def test_rotation_hands_over_every_period_decisions() -> None:
    policy = Rotation(_children(), RotationParams(period=3))
    first = policy.decide(np.zeros(7, dtype=np.int64), np.random.default_rng(0))
    assert first.strategy.tolist() == ["thompson"] * 3 + ["ucb"] * 3 + ["epsilon_greedy"]
    assert policy.n_decisions_ == 7
    second = policy.decide(np.zeros(6, dtype=np.int64), np.random.default_rng(1))
    assert second.strategy.tolist() == ["epsilon_greedy"] * 2 + ["thompson"] * 3 + ["ucb"]
    assert isinstance(policy.current_policy(), UCB)


def test_a_block_starts_at_its_own_turn_whatever_came_before() -> None:
    """Block k (a shard of a partitioned list) starts at turn k, not where the last block ended."""
    policy = Rotation(_children(), RotationParams(period=2))
    policy.decide(np.zeros(5, dtype=np.int64), np.random.default_rng(0))  # an earlier block
    policy.start_block(4)  # turn 4 of 3 strategies: the second, ucb
    block = policy.decide(np.zeros(3, dtype=np.int64), np.random.default_rng(1))
    assert block.strategy.tolist() == ["ucb", "ucb", "epsilon_greedy"]
    policy.start_block(0)
    assert isinstance(policy.current_policy(), ThompsonSampling)


def test_rotation_propensity_is_the_deciding_policy_s() -> None:
    policy = Rotation(
        [UCB(K).set_stats(PULLS, REWARDS), EpsilonGreedy(K).set_stats(PULLS, REWARDS)],
        RotationParams(period=2),
    )
    probs = policy.arm_probabilities(np.zeros(4, dtype=np.int64))
    ucb = UCB(K).set_stats(PULLS, REWARDS).arm_probabilities(np.zeros(1, dtype=np.int64))
    eps = EpsilonGreedy(K).set_stats(PULLS, REWARDS).arm_probabilities(np.zeros(1, dtype=np.int64))
    np.testing.assert_allclose(probs, np.vstack([ucb, ucb, eps, eps]))
    assert policy.n_decisions_ == 0  # asking for probabilities is not deciding


def test_every_child_learns() -> None:
    policy = Rotation(_children())
    policy.partial_fit(np.array([0]), np.array([2]), np.array([1.0]))
    for child in policy.children:
        assert child.pulls_[0, 2] == 31 and child.rewards_[0, 2] == 7
    np.testing.assert_allclose(policy.pulls_, [[30, 30, 31]])


def test_interleaved_propensity_is_the_mixture() -> None:
    ucb = UCB(K, params=UCBParams(c=0.0)).set_stats(PULLS, REWARDS)
    eps = EpsilonGreedy(K, params=EpsilonGreedyParams(epsilon=0.3)).set_stats(PULLS, REWARDS)
    uni = UniformRandom(K)
    policy = Interleaved([ucb, eps, uni], InterleavedParams(weights=(0.5, 0.3, 0.2)))
    one = np.zeros(1, dtype=np.int64)
    expected = (
        0.5 * ucb.arm_probabilities(one) + 0.3 * eps.arm_probabilities(one) + 0.2 * uni.arm_probabilities(one)
    )
    np.testing.assert_allclose(policy.arm_probabilities(one), expected)
    n = 20_000
    batch = policy.decide(np.zeros(n, dtype=np.int64), np.random.default_rng(0))
    np.testing.assert_allclose(batch.propensity, expected[0, batch.arm])
    for name, w in [("ucb", 0.5), ("epsilon_greedy", 0.3), ("uniform", 0.2)]:
        assert abs((batch.strategy == name).mean() - w) < 5 * np.sqrt(w * (1 - w) / n)
    assert (batch.arm[batch.strategy == "ucb"] == 1).all()


def test_interleaved_weights_are_normalised_and_checked() -> None:
    assert InterleavedParams(weights=(1, 1, 2)).weights == (0.25, 0.25, 0.5)
    with pytest.raises(ValueError, match=r"weights\[1\] must be a finite number >= 0, got -1"):
        InterleavedParams(weights=(1, -1))
    with pytest.raises(ValueError, match="weights must not all be 0"):
        InterleavedParams(weights=(0, 0))
    with pytest.raises(ValueError, match=r"weights must have one entry per strategy \(3\), got 2"):
        Interleaved(_children(), InterleavedParams(weights=(1, 1)))
    with pytest.raises(ValueError, match="period must be an integer >= 1, got 0"):
        RotationParams(period=0)


def test_children_must_agree_on_arms_and_segments() -> None:
    with pytest.raises(ValueError, match="must share n_arms and n_segments"):
        Rotation([UCB(3), UCB(4)])
