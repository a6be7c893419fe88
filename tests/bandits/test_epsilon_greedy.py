"""Contextual epsilon-greedy: exact propensities, top-k with the model, pooled means."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import EpsilonGreedy, EpsilonGreedyParams, ThompsonParams, ThompsonSampling

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
        ("pooled", "yes", "pooled must be true or false, got 'yes'"),
        ("prior_strength", -1.0, "prior_strength must be a number >= 0, got -1.0"),
    ],
)
def test_bad_hyperparameters_name_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EpsilonGreedyParams(**{field: value})  # type: ignore[arg-type]


# -- pooling across segments ----------------------------------------------------------
# Segments 0 and 1 agree that arm 1 is best; segment 2 has three lucky sends of arm 3.
POP_PULLS = np.array([[400.0, 400, 400, 400], [300, 300, 300, 300], [0, 0, 0, 3]])
POP_REWARDS = np.array([[40.0, 80, 40, 20], [30, 60, 30, 15], [0, 0, 0, 3]])


def _segmented(**params: object) -> EpsilonGreedy:
    policy = EpsilonGreedy(4, 3, EpsilonGreedyParams(epsilon=0.0, **params))  # type: ignore[arg-type]
    return policy.set_stats(POP_PULLS, POP_REWARDS)


def test_pooling_lets_a_small_segment_pick_the_populations_best_arm() -> None:
    seg2 = np.full(5, 2, dtype=np.int64)
    pooled = _segmented()  # pooled is the default
    assert pooled.params.pooled and pooled.prior_strength_ > 0
    batch = pooled.decide(seg2, np.random.default_rng(0))
    assert (batch.arm == 1).all() and not batch.explored.any()
    np.testing.assert_allclose(batch.propensity, 1.0)
    # A segment without any data exploits the population's best arm too.
    cold = EpsilonGreedy(4, 3, EpsilonGreedyParams(epsilon=0.0))
    cold.set_stats(POP_PULLS * [[1], [1], [0]], POP_REWARDS * [[1], [1], [0]])
    np.testing.assert_allclose(cold.arm_probabilities(np.array([2])), [[0, 1, 0, 0]])


def test_pooled_false_keeps_each_segments_own_means() -> None:
    policy = _segmented(pooled=False)
    assert np.isnan(policy.prior_strength_)
    np.testing.assert_allclose(policy.mean_, (POP_REWARDS + 1) / (POP_PULLS + 2))  # Beta(1, 1) prior
    # The old behaviour: the small segment exploits its three lucky sends.
    np.testing.assert_allclose(policy.arm_probabilities(np.array([2])), [[0, 0, 0, 1]])
    # ... and a segment without data is a four-way tie, broken uniformly.
    cold = EpsilonGreedy(4, 3, EpsilonGreedyParams(epsilon=0.0, pooled=False))
    cold.set_stats(POP_PULLS * [[1], [1], [0]], POP_REWARDS * [[1], [1], [0]])
    np.testing.assert_allclose(cold.arm_probabilities(np.array([2])), [[0.25] * 4])


def test_pooled_means_are_thompsons_pooled_posterior_means() -> None:
    for strength in (None, 0.0, 50.0, float("inf")):
        eps = _segmented(prior_strength=strength)
        ts = ThompsonSampling(4, 3, ThompsonParams(prior_strength=strength)).set_stats(POP_PULLS, POP_REWARDS)
        np.testing.assert_allclose(eps.mean_, ts.posterior_mean())
        assert eps.prior_strength_ == pytest.approx(ts.prior_strength_)
    # Strength 0 borrows nothing: the unpooled means.
    np.testing.assert_allclose(_segmented(prior_strength=0.0).mean_, _segmented(pooled=False).mean_)


def test_segments_that_differ_keep_their_own_best_arm() -> None:
    pulls = np.full((2, 4), 500.0)
    rewards = np.array([[250.0, 50, 50, 50], [50, 250, 50, 50]])  # opposite best arms
    policy = EpsilonGreedy(4, 2, EpsilonGreedyParams(epsilon=0.0)).set_stats(pulls, rewards)
    assert policy.prior_strength_ < 10  # empirical Bayes sees the heterogeneity
    np.testing.assert_allclose(policy.arm_probabilities(np.array([0, 1])), [[1, 0, 0, 0], [0, 1, 0, 0]])


def test_one_segment_is_not_affected_by_pooling() -> None:
    pooled = _policy(epsilon=0.2)
    np.testing.assert_allclose(pooled.mean_, _policy(epsilon=0.2, pooled=False).mean_)
    assert np.isnan(pooled.prior_strength_)


@pytest.mark.parametrize("pooled", [True, False])
@pytest.mark.parametrize("with_model", [False, True])
def test_pooled_propensities_are_exact_and_sum_to_one_over_allowed_arms(
    pooled: bool, with_model: bool
) -> None:
    rng = np.random.default_rng(3)
    n = 4000
    segments = rng.integers(3, size=n)
    allowed = rng.random((n, 4)) > 0.4
    allowed[np.arange(n), rng.integers(4, size=n)] = True
    model = rng.uniform(0, 0.3, size=(n, 4)) if with_model else None
    policy = EpsilonGreedy(4, 3, EpsilonGreedyParams(epsilon=0.2, top_k=2, pooled=pooled))
    policy.set_stats(POP_PULLS, POP_REWARDS)
    probs = policy.arm_probabilities(segments, allowed, model)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs[~allowed] == 0).all() and (probs[allowed] >= 0.2 / 4 - 1e-12).all()
    batch = policy.decide(segments, np.random.default_rng(5), allowed, model)
    np.testing.assert_allclose(batch.propensity, probs[np.arange(n), batch.arm], atol=1e-12)
    # The exact formula: (1 - eps) q + eps / |allowed|.
    q = policy.exploit_probabilities(segments, allowed, model)
    np.testing.assert_allclose(probs, 0.8 * q + 0.2 * allowed / allowed.sum(axis=1, keepdims=True))
