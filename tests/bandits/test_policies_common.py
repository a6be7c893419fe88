"""Properties every policy of the registry must have: eligibility, honest propensities."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import POLICY_NAMES, DecisionBatch, make_policy

K, S = 6, 3


def _setup(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    segments = rng.integers(S, size=n)
    allowed = rng.random((n, K)) > 0.35
    allowed[np.arange(n), rng.integers(K, size=n)] = True  # every row keeps at least one arm
    model = rng.uniform(0.0, 0.3, size=(n, K))
    pulls = np.array([[50, 40, 30, 60, 10, 0], [200, 150, 100, 90, 80, 70], [5, 5, 5, 5, 5, 5]], float)
    rates = np.array([[0.1, 0.2, 0.15, 0.12, 0.3, 0.1], [0.05, 0.07, 0.06, 0.08, 0.05, 0.06], [0.2] * 6])
    return segments, allowed, model, pulls, np.round(pulls * rates)


def _policy(name: str):
    _, _, _, pulls, rewards = _setup(1)
    return make_policy(name, K, S).set_stats(pulls, rewards)


CASES = [(name, with_model) for name in POLICY_NAMES for with_model in (False, True)]


@pytest.mark.parametrize(("name", "with_model"), CASES)
def test_probabilities_sum_to_one_on_allowed_arms(name: str, with_model: bool) -> None:
    segments, allowed, model, _, _ = _setup(400)
    probs = _policy(name).arm_probabilities(
        segments, allowed, model if with_model else None, rng=np.random.default_rng(1)
    )
    assert probs.shape == (400, K)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert (probs[~allowed] == 0).all()
    assert (probs >= 0).all()


@pytest.mark.parametrize(("name", "with_model"), CASES)
def test_decide_logs_the_probability_it_sampled_with(name: str, with_model: bool) -> None:
    """Same seed -> same plan: the logged propensity is the planned probability of the arm,
    and arm counts agree with the planned probabilities (5 sigma per arm)."""
    n = 6000
    segments, allowed, model, _, _ = _setup(n, seed=2)
    mp = model if with_model else None
    probs = _policy(name).arm_probabilities(segments, allowed, mp, rng=np.random.default_rng(7))
    batch = _policy(name).decide(segments, np.random.default_rng(7), allowed, mp)
    assert isinstance(batch, DecisionBatch) and len(batch) == n
    assert allowed[np.arange(n), batch.arm].all(), "chose a disallowed arm"
    np.testing.assert_allclose(batch.propensity, probs[np.arange(n), batch.arm], rtol=0, atol=1e-12)
    assert (batch.propensity > 0).all() and (batch.propensity <= 1).all()
    counts = np.bincount(batch.arm, minlength=K)
    expected = probs.sum(axis=0)
    sd = np.sqrt((probs * (1 - probs)).sum(axis=0))
    assert (np.abs(counts - expected) <= 5 * sd + 1e-9).all(), (counts, expected)
    for field in ("explored", "bandit_score", "model_score", "blend_score", "confidence"):
        assert getattr(batch, field).shape == (n,)
    assert batch.policy == name
    assert batch.seed == 7
    if not with_model:
        assert np.isnan(batch.model_score).all()
    else:
        np.testing.assert_allclose(batch.model_score, model[np.arange(n), batch.arm], rtol=1e-6)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_chunking_does_not_change_the_contract(name: str) -> None:
    n = 50
    segments, allowed, model, _, _ = _setup(n, seed=3)
    small = _policy(name)
    small.chunk_size = 7
    probs = small.arm_probabilities(segments, allowed, model, rng=np.random.default_rng(5))
    batch = small.decide(segments, np.random.default_rng(5), allowed, model)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert allowed[np.arange(n), batch.arm].all()
    np.testing.assert_allclose(batch.propensity, probs[np.arange(n), batch.arm], atol=1e-12)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_same_seed_same_decisions(name: str) -> None:
    segments, allowed, model, _, _ = _setup(300, seed=4)
    a = _policy(name).decide(segments, np.random.default_rng(11), allowed, model)
    b = _policy(name).decide(segments, np.random.default_rng(11), allowed, model)
    np.testing.assert_array_equal(a.arm, b.arm)
    np.testing.assert_array_equal(a.propensity, b.propensity)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_single_allowed_arm_is_certain(name: str) -> None:
    n = 20
    allowed = np.zeros((n, K), dtype=bool)
    allowed[:, 4] = True
    batch = _policy(name).decide(np.zeros(n, dtype=np.int64), np.random.default_rng(0), allowed)
    assert (batch.arm == 4).all()
    np.testing.assert_allclose(batch.propensity, 1.0)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_empty_batch(name: str) -> None:
    batch = _policy(name).decide(np.zeros(0, dtype=np.int64), np.random.default_rng(0))
    assert len(batch) == 0 and batch.propensity.shape == (0,)


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_learns_from_partial_fit(name: str) -> None:
    policy = make_policy(name, K, S)
    policy.partial_fit(np.array([0, 0, 1]), np.array([2, 2, 5]), np.array([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(policy.pulls_[0], [0, 0, 2, 0, 0, 0])
    np.testing.assert_allclose(policy.rewards_[1], [0, 0, 0, 0, 0, 1])


def test_bad_inputs_are_refused_with_a_clear_message() -> None:
    policy = _policy("thompson")
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"segments must be in \[0, 3\), got 3"):
        policy.decide(np.array([0, 3]), rng)
    with pytest.raises(ValueError, match="allowed must have shape"):
        policy.decide(np.array([0, 1]), rng, allowed=np.ones((2, K + 1), dtype=bool))
    allowed = np.ones((2, K), dtype=bool)
    allowed[1] = False
    with pytest.raises(ValueError, match="allowed row 1 has no allowed arm"):
        policy.decide(np.array([0, 1]), rng, allowed=allowed)
    with pytest.raises(ValueError, match="model_proba must be finite probabilities"):
        policy.decide(np.array([0]), rng, model_proba=np.full((1, K), 1.5))
    with pytest.raises(ValueError, match="pass rng"):
        policy.arm_probabilities(np.array([0]))
