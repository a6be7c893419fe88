"""Contextual epsilon-greedy: exact propensities, top-k with the model."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import EpsilonGreedy, EpsilonGreedyParams

PULLS = np.array([[100.0, 100, 100, 100]])
REWARDS = np.array([[49.0, 39, 29, 9]])  # posterior means ~0.49, 0.39, 0.29, 0.10 (Beta(1, 1) prior)


def _policy(**params: object) -> EpsilonGreedy:
    return EpsilonGreedy(4, params=EpsilonGreedyParams(**params)).set_stats(PULLS, REWARDS)  # type: ignore[arg-type]


def test_epsilon_zero_is_greedy() -> None:
    batch = _policy(epsilon=0.0).decide(np.zeros(50, dtype=np.int64), np.random.default_rng(0))
    assert (batch.arm == 0).all()
    np.testing.assert_array_equal(batch.propensity, 1.0)
    assert not batch.explored.any()
    np.testing.assert_allclose(batch.bandit_score, 50 / 102)  # (49 + 1) / (100 + 2)


def test_propensity_is_exact_and_respects_the_mask() -> None:
    policy = _policy(epsilon=0.2)
    np.testing.assert_allclose(
        policy.arm_probabilities(np.zeros(1, dtype=np.int64)), [[0.85, 0.05, 0.05, 0.05]]
    )
    allowed = np.array([[False, True, False, True]])
    np.testing.assert_allclose(
        policy.arm_probabilities(np.zeros(1, dtype=np.int64), allowed), [[0, 0.9, 0, 0.1]]
    )


def test_explored_flag_matches_epsilon() -> None:
    n = 20_000
    batch = _policy(epsilon=0.3).decide(np.zeros(n, dtype=np.int64), np.random.default_rng(1))
    assert abs(batch.explored.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n)
    # Exploration lands on the greedy arm too (0.3 / 4 of the time).
    assert abs((batch.explored & (batch.arm == 0)).mean() - 0.075) < 5 * np.sqrt(0.075 * 0.925 / n)
    assert (batch.arm[~batch.explored] == 0).all()


def test_model_chooses_among_the_top_k() -> None:
    policy = _policy(epsilon=0.0, top_k=3)
    model = np.array([[0.1, 0.2, 0.3, 0.9]])  # likes arm 3 most, but arm 3 is not in the top 3
    batch = policy.decide(np.zeros(1, dtype=np.int64), np.random.default_rng(0), model_proba=model)
    assert batch.arm[0] == 2 and batch.propensity[0] == 1.0
    assert batch.selected_by[0] == "blend" and batch.model_score[0] == pytest.approx(0.3)
    top1 = _policy(epsilon=0.0, top_k=1).decide(
        np.zeros(1, dtype=np.int64), np.random.default_rng(0), model_proba=model
    )
    assert top1.arm[0] == 0


def test_ties_at_the_kth_place_are_all_candidates() -> None:
    policy = EpsilonGreedy(4, params=EpsilonGreedyParams(epsilon=0.0, top_k=2))
    policy.set_stats(PULLS, np.array([[49.0, 29, 29, 9]]))  # arms 1 and 2 tie for second place
    model = np.array([[0.1, 0.2, 0.5, 0.0]])
    probs = policy.arm_probabilities(np.zeros(1, dtype=np.int64), model_proba=model)
    np.testing.assert_array_equal(probs, [[0, 0, 1, 0]])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epsilon", 1.5, r"epsilon must be in \[0, 1\], got 1.5"),
        ("epsilon", -0.1, r"epsilon must be in \[0, 1\], got -0.1"),
        ("top_k", 0, "top_k must be an integer >= 1, got 0"),
        ("top_k", 2.5, "top_k must be an integer >= 1, got 2.5"),
        ("prior_beta", 0, "prior_beta must be a finite number > 0, got 0"),
    ],
)
def test_bad_hyperparameters_name_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EpsilonGreedyParams(**{field: value})  # type: ignore[arg-type]
