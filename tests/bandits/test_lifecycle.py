"""Lifecycle phases decided by data volume and posterior concentration (own or pooled)."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import UCB, Lifecycle, LifecycleParams, ThompsonSampling, UCBParams

K = 4
# Segments' own evidence only (pooled=False): the segments of _stats() have the same
# rates, so pooling would lift segment 0 out of initialization (tested further down).
PARAMS = LifecycleParams(
    init_uniform=0.5,
    learning_min_pulls=10,
    optimization_min_pulls=500,
    optimization_max_std=0.02,
    pooled=False,
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
        ThompsonSampling(K, 3),
        LifecycleParams(optimization_min_pulls=500, optimization_max_std=1e-4, pooled=False),
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
        ("pooled", 1, "pooled must be true or false, got 1"),
        ("prior_strength", -2.0, "prior_strength must be a number >= 0, got -2.0"),
    ],
)
def test_bad_hyperparameters_name_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LifecycleParams(**{field: value})  # type: ignore[arg-type]


# -- phases from pooled evidence (the default) -------------------------------------------
POOLED = LifecycleParams(
    init_uniform=0.5, learning_min_pulls=10, optimization_min_pulls=500, optimization_max_std=0.02
)
RATES = np.array([0.05, 0.1, 0.08, 0.02])


def test_small_segment_leaves_initialization_when_the_population_has_enough_data() -> None:
    # Segment 1 has 45 pulls per arm; segment 0 a handful; segment 2 none. Same rates everywhere.
    pulls = np.array([[2.0, 3, 1, 0], [50, 60, 40, 30], [0, 0, 0, 0]])
    rewards = np.round(pulls * RATES)
    pooled = Lifecycle(ThompsonSampling(K, 3), POOLED).set_stats(pulls, rewards)
    assert pooled.params.pooled
    assert pooled.segment_phases() == ["learning", "learning", "learning"]
    assert (pooled.effective_pulls_ >= 10).all()
    batch = pooled.decide(np.array([0, 1, 2]), np.random.default_rng(0))
    assert batch.phase.tolist() == ["learning"] * 3 and (batch.strategy == "thompson").all()
    # The old behaviour: each segment waits for its own pulls.
    own = Lifecycle(ThompsonSampling(K, 3), PARAMS).set_stats(pulls, rewards)
    assert own.segment_phases() == ["initialization", "learning", "initialization"]
    np.testing.assert_allclose(own.effective_pulls_, pulls.mean(axis=1))


def test_pooled_phases_still_pass_through_all_three() -> None:
    policy = Lifecycle(ThompsonSampling(K, 3), POOLED)
    assert policy.segment_phases() == ["initialization"] * 3  # no data anywhere: explore
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(12):  # the population's data, all in segments 0 and 1
        arms = np.tile(np.arange(K), 250)
        segments = rng.integers(2, size=arms.size)
        policy.partial_fit(segments, arms, (rng.random(arms.size) < RATES[arms]).astype(float))
        seen.append(policy.segment_phases()[2])  # segment 2 never gets data of its own
    assert seen[0] == "learning" and seen[-1] == "optimization"
    assert seen == sorted(seen, key=["initialization", "learning", "optimization"].index)
    batch = policy.decide(np.array([2, 0]), np.random.default_rng(1))
    assert batch.phase.tolist() == ["optimization"] * 2 and (batch.strategy == "epsilon_greedy").all()


def test_segments_that_differ_need_their_own_data() -> None:
    # Segments 1 and 2 disagree about the best arm: empirical Bayes borrows little.
    pulls = np.array([[1.0, 1, 1, 1], [500, 500, 500, 500], [500, 500, 500, 500]])
    rewards = np.array([[0.0, 0, 0, 0], [250, 25, 25, 25], [25, 250, 25, 25]])
    policy = Lifecycle(ThompsonSampling(K, 3), POOLED).set_stats(pulls, rewards)
    assert policy.segment_phases()[0] == "initialization"
    assert 1 < policy.effective_pulls_[0] < 10  # own pull plus a few borrowed pseudo-observations
    # With every observation borrowed, it would inherit the population's progress.
    full = Lifecycle(
        ThompsonSampling(K, 3),
        LifecycleParams(learning_min_pulls=10, optimization_min_pulls=500, prior_strength=float("inf")),
    ).set_stats(pulls, rewards)
    assert full.segment_phases()[0] != "initialization"


@pytest.mark.parametrize("with_model", [False, True])
def test_pooled_phases_log_exact_propensities_over_allowed_arms(with_model: bool) -> None:
    # One segment per phase under pooling: heterogeneous segments keep their own volumes.
    pulls = np.array([[2.0, 3, 1, 0], [60, 60, 60, 60], [3000, 3000, 3000, 3000]])
    rewards = np.round(pulls * np.array([[0.5, 0.1, 0.1, 0.1], [0.1, 0.5, 0.1, 0.1], [0.05, 0.1, 0.3, 0.02]]))
    policy = Lifecycle(ThompsonSampling(K, 3), POOLED).set_stats(pulls, rewards)
    assert policy.segment_phases() == ["initialization", "learning", "optimization"]
    rng = np.random.default_rng(2)
    n = 3000
    segments = rng.integers(3, size=n)
    allowed = rng.random((n, K)) > 0.4
    allowed[np.arange(n), rng.integers(K, size=n)] = True
    model = rng.uniform(0, 0.3, size=(n, K)) if with_model else None
    probs = policy.arm_probabilities(segments, allowed, model, rng=np.random.default_rng(9))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs[~allowed] == 0).all()
    batch = policy.decide(segments, np.random.default_rng(9), allowed, model)
    np.testing.assert_allclose(batch.propensity, probs[np.arange(n), batch.arm], atol=1e-12)
    assert batch.phase.tolist() == [policy.segment_phases()[s] for s in segments]
