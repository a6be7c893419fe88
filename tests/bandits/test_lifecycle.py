"""Lifecycle phases decided by data volume and posterior concentration."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import UCB, Lifecycle, LifecycleParams, ThompsonSampling, UCBParams

K = 4
PARAMS = LifecycleParams(
    init_uniform=0.5, learning_min_pulls=10, optimization_min_pulls=500, optimization_max_std=0.02
)


def _stats():
    pulls = np.array([[2.0, 3, 1, 0], [50.0, 60, 40, 30], [2000.0, 2500, 1500, 1000]])
    rewards = np.round(pulls * np.array([0.05, 0.1, 0.08, 0.02]))
    return pulls, rewards


def _policy(base=None) -> Lifecycle:
    base = base if base is not None else ThompsonSampling(K, 3)
    return Lifecycle(base, PARAMS).set_stats(*_stats())


def test_phase_per_segment_from_volume_and_concentration() -> None:
    policy = _policy()
    assert policy.segment_phases() == ["initialization", "learning", "optimization"]
    batch = policy.decide(np.array([0, 1, 2, 2]), np.random.default_rng(0))
    assert batch.phase.tolist() == ["initialization", "learning", "optimization", "optimization"]
    # Plenty of data but a loose posterior keeps a segment learning.
    loose = Lifecycle(
        ThompsonSampling(K, 3), LifecycleParams(optimization_min_pulls=500, optimization_max_std=1e-4)
    )
    loose.set_stats(*_stats())
    assert loose.segment_phases()[2] == "learning"


def test_initialization_mixes_uniform_and_base_without_the_model() -> None:
    base = UCB(K, 3, UCBParams(c=0.0))
    policy = _policy(base)
    seg0 = np.zeros(1, dtype=np.int64)
    model = np.array([[0.0, 0.0, 0.0, 0.9]])
    base_probs = base.arm_probabilities(seg0)  # the model is not consulted in initialization
    expected = 0.5 * 0.25 + 0.5 * base_probs
    np.testing.assert_allclose(policy.arm_probabilities(seg0, model_proba=model), expected)
    batch = policy.decide(
        np.zeros(4000, dtype=np.int64), np.random.default_rng(0), model_proba=np.tile(model, (4000, 1))
    )
    assert abs((batch.strategy == "uniform").mean() - 0.5) < 0.05
    np.testing.assert_allclose(batch.model_score, 0.9 * (batch.arm == 3))


def test_optimization_exploits_the_model_with_minimal_exploration() -> None:
    policy = _policy()
    seg2 = np.full(1, 2, dtype=np.int64)
    model = np.array([[0.1, 0.3, 0.2, 0.9]])  # arm 3 has the lowest mean: outside the top 3
    probs = policy.arm_probabilities(seg2, model_proba=model, rng=np.random.default_rng(0))
    np.testing.assert_allclose(probs, [[0.005, 0.985, 0.005, 0.005]])


def test_phases_advance_with_data() -> None:
    policy = Lifecycle(ThompsonSampling(K, 1), PARAMS)
    assert policy.segment_phases() == ["initialization"]
    policy.partial_fit(np.zeros(60, dtype=np.int64), np.tile(np.arange(K), 15), np.zeros(60))
    assert policy.segment_phases() == ["learning"]
    np.testing.assert_allclose(
        policy.children[2].pulls_, policy.base.pulls_
    )  # the optimizer reads the base's stats


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("init_uniform", 1.1, r"init_uniform must be in \[0, 1\], got 1.1"),
        ("optimization_max_std", 0.0, r"optimization_max_std must be in \(0, 0.5\], got 0.0"),
        (
            "optimization_min_pulls",
            5.0,
            r"optimization_min_pulls must be >= learning_min_pulls \(20.0\), got 5.0",
        ),
    ],
)
def test_bad_hyperparameters_name_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LifecycleParams(**{field: value})  # type: ignore[arg-type]
