"""Inverse-gap weighting over the model's scores: hand-derived propensities, Thompson without a model."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import IGWParams, InverseGapWeighting, ThompsonSampling, igw_probabilities, make_policy

PULLS = np.array([[100.0, 100, 100, 100], [10, 10, 10, 10]])
REWARDS = np.array([[40.0, 30, 20, 10], [1, 2, 3, 4]])


def _policy(igw_gamma: float) -> InverseGapWeighting:
    return InverseGapWeighting(4, 2, IGWParams(igw_gamma=igw_gamma)).set_stats(PULLS, REWARDS)


def test_propensities_by_hand() -> None:
    # Row 0, arms 0-2 allowed (K = 3), best 0.10: gaps 0.5 (arm 1), 0.2 (arm 2).
    #   P(1) = 1 / (3 + 10 * 0.5) = 1/8, P(2) = 1 / (3 + 10 * 0.2) = 1/5, P(0) = 1 - 1/8 - 1/5.
    # Row 1, all 4 allowed, best 0.2: gaps 0.5, 1, 1 -> 1/9, 1/14, 1/14, and the rest to arm 0.
    model = np.array([[0.10, 0.05, 0.08, 0.10], [0.2, 0.1, 0.0, 0.0]])
    allowed = np.array([[True, True, True, False], [True, True, True, True]])
    expected = np.array([[1 - 1 / 8 - 1 / 5, 1 / 8, 1 / 5, 0], [1 - 1 / 9 - 2 / 14, 1 / 9, 1 / 14, 1 / 14]])
    np.testing.assert_allclose(igw_probabilities(model, allowed, 10.0), expected, rtol=1e-12)
    policy = _policy(10.0)
    segments = np.array([0, 1])
    probs = policy.arm_probabilities(segments, allowed, model, np.random.default_rng(0))
    np.testing.assert_allclose(probs, expected)
    batch = policy.decide(segments, np.random.default_rng(3), allowed=allowed, model_proba=model)
    np.testing.assert_allclose(batch.propensity, expected[[0, 1], batch.arm])
    assert list(batch.strategy) == ["igw", "igw"] and list(batch.selected_by) == ["model", "model"]
    np.testing.assert_array_equal(batch.explored, batch.arm != 0)
    np.testing.assert_allclose(batch.model_score, model[[0, 1], batch.arm])


def test_ties_share_the_best_arms_mass_and_gamma_zero_is_uniform() -> None:
    # Arms 0 and 1 tie at 0.2; arm 2 has gap 0.5: P(2) = 1 / (3 + 4 * 0.5) = 1/5, the rest halved.
    model = np.array([[0.2, 0.2, 0.1]])
    allowed = np.ones((1, 3), dtype=bool)
    np.testing.assert_allclose(igw_probabilities(model, allowed, 4.0), [[0.4, 0.4, 0.2]])
    np.testing.assert_allclose(igw_probabilities(model, allowed, 0.0), [[1 / 3, 1 / 3, 1 / 3]])
    # Every score 0: no arm is better, uniform.
    np.testing.assert_allclose(igw_probabilities(np.zeros((1, 3)), allowed, 50.0), [[1 / 3, 1 / 3, 1 / 3]])


def test_sampled_frequencies_follow_the_propensities() -> None:
    n = 40_000
    model = np.tile([0.10, 0.05, 0.08, 0.02], (n, 1))
    batch = _policy(20.0).decide(np.zeros(n, dtype=np.int64), np.random.default_rng(7), model_proba=model)
    # K = 4, gaps 0.5, 0.2, 0.8: 1/14, 1/8, 1/20 and the rest to arm 0.
    expected = np.array([1 - 1 / 14 - 1 / 8 - 1 / 20, 1 / 14, 1 / 8, 1 / 20])
    freq = np.bincount(batch.arm, minlength=4) / n
    assert np.abs(freq - expected).max() < 5 * np.sqrt(0.25 / n)


def test_without_a_model_it_is_segment_thompson_sampling() -> None:
    segments = np.array([0, 0, 1, 1, 1])
    igw = _policy(1000.0).decide(segments, np.random.default_rng(11))
    ts = ThompsonSampling(4, 2).set_stats(PULLS, REWARDS).decide(segments, np.random.default_rng(11))
    np.testing.assert_array_equal(igw.arm, ts.arm)
    np.testing.assert_array_equal(igw.propensity, ts.propensity)
    assert set(igw.strategy) == {"thompson"}


def test_registry_builds_it_and_names_a_bad_gamma() -> None:
    policy = make_policy("igw", n_arms=4, n_segments=2, igw_gamma=50.0, prior="flat")
    assert isinstance(policy, InverseGapWeighting) and policy.params.igw_gamma == 50.0
    with pytest.raises(ValueError, match="igw_gamma must be a finite number >= 0, got -1"):
        make_policy("igw", n_arms=4, igw_gamma=-1)
