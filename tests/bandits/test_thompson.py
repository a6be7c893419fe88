"""Thompson sampling: choices, Monte Carlo propensities, priors, discounting."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import ThompsonParams, ThompsonSampling, empirical_bayes_strength, make_policy, prior_from_stats


def test_overwhelmingly_good_arm_is_picked() -> None:
    policy = ThompsonSampling(3).set_stats(np.array([[1000.0, 1000, 1000]]), np.array([[10.0, 900, 10]]))
    batch = policy.decide(np.zeros(500, dtype=np.int64), np.random.default_rng(0))
    assert (batch.arm == 1).all()
    np.testing.assert_allclose(batch.propensity, 1.0)
    assert not batch.explored.any()
    assert (batch.strategy == "thompson").all() and (batch.selected_by == "bandit").all()
    np.testing.assert_allclose(batch.confidence, 1.0)
    assert (np.abs(batch.bandit_score - 0.9) < 0.05).all()


def test_monte_carlo_propensity_within_documented_error() -> None:
    """P(best) from 1000 draws is within 4 standard errors of a 400k-draw reference."""
    pulls = np.array([[100.0, 120, 80, 90]])
    rewards = np.array([[10.0, 14, 9, 8]])
    policy = ThompsonSampling(4, params=ThompsonParams(draws=1000)).set_stats(pulls, rewards)
    probs = policy.arm_probabilities(np.zeros(1, dtype=np.int64), rng=np.random.default_rng(3))[0]
    theta = np.random.default_rng(9).beta(policy.alpha_[0], policy.beta_[0], size=(400_000, 4))
    reference = np.bincount(theta.argmax(axis=1), minlength=4) / 400_000
    stderr = np.sqrt(reference * (1 - reference) / 1000)
    assert (np.abs(probs - reference) <= 4 * stderr + 1e-3).all(), (probs, reference)


def test_customers_of_a_group_share_the_probability_vector() -> None:
    policy = ThompsonSampling(4, 2).set_stats(np.full((2, 4), 50.0), np.full((2, 4), 5.0))
    allowed = np.ones((6, 4), dtype=bool)
    allowed[3:, 0] = False
    probs = policy.arm_probabilities(np.array([0, 0, 0, 0, 0, 0]), allowed, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(probs[0], probs[1])
    np.testing.assert_array_equal(probs[3], probs[5])
    assert probs[3, 0] == 0 and probs[0, 0] > 0


def test_discount_multiplies_counts_before_each_update() -> None:
    policy = ThompsonSampling(2, params=ThompsonParams(gamma=0.5))
    policy.partial_fit(np.array([0, 0]), np.array([0, 1]), np.array([1.0, 0.0]))
    policy.partial_fit(np.array([0]), np.array([0]), np.array([1.0]))
    np.testing.assert_allclose(policy.pulls_, [[1.5, 0.5]])
    np.testing.assert_allclose(policy.rewards_, [[1.5, 0.0]])
    np.testing.assert_allclose(policy.alpha_, [[2.5, 1.0]])
    np.testing.assert_allclose(policy.beta_, [[1.0, 1.5]])


def test_discount_lets_the_policy_follow_a_change() -> None:
    """Arm 0 was best for long; now arm 1 is. With gamma < 1 the policy switches sooner."""

    def share_of_arm1(gamma: float) -> float:
        policy = ThompsonSampling(2, params=ThompsonParams(gamma=gamma, draws=2000))
        policy.set_stats(np.array([[20000.0, 20000]]), np.array([[4000.0, 2000]]))
        for _ in range(10):  # ten days of evidence that arm 1 now converts at 0.4 and arm 0 at 0.1
            policy.partial_fit(
                np.zeros(200, dtype=np.int64), np.repeat([0, 1], 100), np.repeat([0.1, 0.4], 100)
            )
        probs = policy.arm_probabilities(np.zeros(1, dtype=np.int64), rng=np.random.default_rng(0))
        return float(probs[0, 1])

    assert share_of_arm1(1.0) < 0.05
    assert share_of_arm1(0.7) > 0.95


def test_pooled_prior_helps_a_cold_segment() -> None:
    pulls = np.zeros((2, 5))
    rewards = np.zeros((2, 5))
    pulls[0] = 500.0
    rewards[0] = [10, 10, 100, 10, 10]  # segment 0 has learnt that arm 2 is best; segment 1 is new
    cold = np.ones(1, dtype=np.int64)
    pooled = ThompsonSampling(5, 2).set_stats(pulls, rewards)
    flat = ThompsonSampling(5, 2, ThompsonParams(prior="flat")).set_stats(pulls, rewards)
    p_pooled = pooled.arm_probabilities(cold, rng=np.random.default_rng(0))[0]
    p_flat = flat.arm_probabilities(cold, rng=np.random.default_rng(0))[0]
    assert p_pooled[2] > 0.95
    assert p_flat[2] < 0.35


def test_pooled_prior_with_infinite_strength_is_plain_thompson() -> None:
    rng = np.random.default_rng(0)
    pulls = rng.integers(0, 50, size=(4, 3)).astype(float)
    rewards = np.floor(pulls * 0.3)
    seg = ThompsonSampling(3, 4, ThompsonParams(prior_strength=float("inf"))).set_stats(pulls, rewards)
    plain = ThompsonSampling(3, 1).set_stats(pulls.sum(0, keepdims=True), rewards.sum(0, keepdims=True))
    np.testing.assert_allclose(seg.alpha_, np.repeat(plain.alpha_, 4, axis=0))
    np.testing.assert_allclose(seg.beta_, np.repeat(plain.beta_, 4, axis=0))


def test_pooled_prior_borrows_at_most_prior_strength() -> None:
    pulls = np.array([[0.0, 0.0], [400.0, 100.0]])
    rewards = np.array([[0.0, 0.0], [40.0, 50.0]])
    policy = ThompsonSampling(2, 2, ThompsonParams(prior_strength=100.0)).set_stats(pulls, rewards)
    # Segment 0 borrows segment 1's evidence scaled to 100 pseudo-observations.
    np.testing.assert_allclose(policy.alpha_[0], [1 + 10, 1 + 50])
    np.testing.assert_allclose(policy.beta_[0], [1 + 90, 1 + 50])
    # Segment 1 has no other evidence to borrow: its own posterior only.
    np.testing.assert_allclose(policy.alpha_[1], [41, 51])


def test_empirical_bayes_strength_tracks_heterogeneity() -> None:
    rng = np.random.default_rng(0)
    pulls = np.full((9, 20), 5000.0)
    same = rng.binomial(5000, 0.05, size=(9, 20)).astype(float)
    assert empirical_bayes_strength(pulls, same) > 1000
    rates = rng.beta(2.0, 18.0, size=(9, 20))  # concentration 20: segments differ a lot
    differ = rng.binomial(5000, rates).astype(float)
    assert 10 < empirical_bayes_strength(pulls, differ) < 40
    assert empirical_bayes_strength(np.zeros((3, 2)), np.zeros((3, 2))) == float("inf")


def test_prior_from_stats_caps_historical_evidence() -> None:
    alpha, beta = prior_from_stats(np.array([1000.0, 20.0]), np.array([100.0, 10.0]), strength=50)
    np.testing.assert_allclose(alpha, [1 + 5, 1 + 10])
    np.testing.assert_allclose(beta, [1 + 45, 1 + 10])
    policy = ThompsonSampling(2, 3, ThompsonParams(prior="flat")).set_prior(alpha, beta)
    np.testing.assert_allclose(policy.alpha_, np.tile(alpha, (3, 1)))
    with pytest.raises(ValueError, match="prior arrays must have shape"):
        policy.set_prior(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="strength must be a number >= 0, got -1"):
        prior_from_stats(np.ones(2), np.ones(2), strength=-1)


def test_blend_draws_per_customer_and_reuse_of_draws() -> None:
    policy = make_policy("thompson", 3, 1, reuse_draws=True).set_stats(
        np.full((1, 3), 30.0), np.full((1, 3), 6.0)
    )
    one = np.zeros(1, dtype=np.int64)
    p1 = policy.arm_probabilities(one, rng=np.random.default_rng(1))
    p2 = policy.arm_probabilities(one, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(p1, p2)  # the cached posterior samples were reused
    policy.partial_fit(one, np.array([0]), np.array([1.0]))
    p3 = policy.arm_probabilities(one, rng=np.random.default_rng(2))
    assert not np.array_equal(p1, p3)  # new evidence, new samples


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("gamma", 0.0, r"gamma must be in \(0, 1\], got 0.0"),
        ("gamma", 1.5, r"gamma must be in \(0, 1\], got 1.5"),
        ("draws", 0, "draws must be an integer >= 1, got 0"),
        ("prior", "jeffreys", "prior must be one of 'pooled', 'flat'; got 'jeffreys'"),
        ("prior_alpha", -1.0, "prior_alpha must be a finite number > 0, got -1.0"),
        ("prior_strength", -5.0, "prior_strength must be a number >= 0, got -5.0"),
        ("reuse_draws", "yes", "reuse_draws must be true or false, got 'yes'"),
    ],
)
def test_bad_hyperparameters_name_the_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThompsonParams(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("spread", [0.001, 0.05, 1.0])
def test_pruned_blend_argmax_is_exact(spread: float) -> None:
    """The candidate pruning of the blend gives the brute-force argmax, narrow or wide posteriors."""
    from bandits.thompson import _blend_argmax

    rng = np.random.default_rng(0)
    s, draws, k, r = 3, 50, 12, 200
    centre = rng.uniform(0, 0.2, size=(s, 1, k))
    w_theta = (centre + spread * rng.standard_normal((s, draws, k))).astype(np.float32)
    offset = rng.uniform(0, 0.1, size=(r, k)).astype(np.float32)
    offset[rng.random((r, k)) < 0.3] = -np.inf
    offset[:, 0] = 0.05  # every row keeps an allowed arm
    pool = rng.integers(s, size=r)
    upper = w_theta.max(axis=1)[pool] + offset
    lower = (w_theta.min(axis=1)[pool] + offset).max(axis=1)
    n_cand = int((upper >= lower[:, None]).sum(axis=1).max())
    w_theta_t = np.ascontiguousarray(w_theta.transpose(0, 2, 1))
    got = _blend_argmax(w_theta, w_theta_t, pool, offset, upper, n_cand)
    expected = (w_theta[pool] + offset[:, None, :]).argmax(axis=2)
    np.testing.assert_array_equal(got, expected)


def test_blend_probabilities_equal_brute_force_monte_carlo() -> None:
    """The per-customer blend path (sorted rows, pruned scan) counts exactly what a brute-force
    argmax over the same posterior samples counts."""
    from bandits import ThompsonBlend, ThompsonBlendParams

    rng = np.random.default_rng(4)
    k, s, n = 8, 3, 300
    pulls = rng.integers(0, 3000, size=(s, k)).astype(float)
    rewards = np.floor(pulls * rng.uniform(0.01, 0.1, size=(s, k)))
    policy = ThompsonBlend(k, s, ThompsonBlendParams(weight=0.6, reuse_draws=True)).set_stats(pulls, rewards)
    segments = rng.integers(s, size=n)
    allowed = rng.random((n, k)) > 0.25
    allowed[:, 0] = True
    model = rng.uniform(0, 0.1, size=(n, k))
    probs = policy.arm_probabilities(segments, allowed, model, rng=np.random.default_rng(0))
    w = np.float32(0.6)
    theta = np.stack([policy._pools[(int(g), 200)] for g in segments]).astype(np.float32)
    offset = (0.4 * model).astype(np.float32)
    offset[~allowed] = -np.inf
    best = (theta * w + offset[:, None, :]).argmax(axis=2)
    expected = np.stack([np.bincount(row, minlength=k) for row in best]) / 200
    np.testing.assert_array_equal(probs, expected)
