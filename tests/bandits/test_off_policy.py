"""Off-policy estimators recover a known policy value from simulated logs."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.off_policy import doubly_robust_estimate, ips_estimate, snips_estimate

N_ARMS = 5
N_CONTEXTS = 20


def _world(seed: int = 0):
    """Reward probabilities per (context, arm) and two stochastic policies."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.02, 0.3, size=(N_CONTEXTS, N_ARMS))
    logging = rng.dirichlet(np.full(N_ARMS, 5.0), size=N_CONTEXTS)  # broad, never zero
    target = np.full((N_CONTEXTS, N_ARMS), 0.05)
    target[np.arange(N_CONTEXTS), truth.argmax(axis=1)] += 1.0 - 0.05 * N_ARMS  # mostly greedy
    true_value = float((target * truth).sum(axis=1).mean())
    return truth, logging, target, true_value


def _logs(truth, logging, target, n, seed, model_noise=0.01):
    rng = np.random.default_rng(seed)
    ctx = rng.integers(0, N_CONTEXTS, size=n)
    cum = logging[ctx].cumsum(axis=1)
    arm = (rng.random(n)[:, None] > cum).sum(axis=1).clip(max=N_ARMS - 1)
    reward = (rng.random(n) < truth[ctx, arm]).astype(float)
    model = np.clip(truth + rng.normal(0.0, model_noise, truth.shape), 0.0, 1.0)
    return {
        "rewards": reward,
        "logging_propensity": logging[ctx, arm],
        "target_probability": target[ctx, arm],
        "model_reward_logged": model[ctx, arm],
        "model_value_target": (target[ctx] * model[ctx]).sum(axis=1),
    }


def _ips_args(logs):
    return logs["rewards"], logs["logging_propensity"], logs["target_probability"]


@pytest.mark.parametrize("estimator", ["ips", "snips", "dr"])
def test_estimators_cover_the_true_value_over_seeds(estimator):
    truth, logging, target, true_value = _world()
    covered = 0
    for seed in range(40):
        logs = _logs(truth, logging, target, n=4000, seed=seed)
        if estimator == "ips":
            est = ips_estimate(*_ips_args(logs))
        elif estimator == "snips":
            est = snips_estimate(*_ips_args(logs))
        else:
            est = doubly_robust_estimate(
                *_ips_args(logs), logs["model_reward_logged"], logs["model_value_target"]
            )
        covered += est.covers(true_value)
        assert est.ci_low < est.value < est.ci_high
    # 95% intervals: expect ~38 of 40; 33 leaves room for chance, not for bias.
    assert covered >= 33, f"{estimator} covered the true value in only {covered}/40 runs"


def test_doubly_robust_has_lower_variance_than_ips_with_a_good_model():
    truth, logging, target, true_value = _world()
    ips_values, dr_values, ips_se, dr_se = [], [], [], []
    for seed in range(30):
        logs = _logs(truth, logging, target, n=3000, seed=100 + seed)
        ips = ips_estimate(*_ips_args(logs))
        dr = doubly_robust_estimate(*_ips_args(logs), logs["model_reward_logged"], logs["model_value_target"])
        ips_values.append(ips.value)
        dr_values.append(dr.value)
        ips_se.append(ips.std_error)
        dr_se.append(dr.std_error)
    # Bernoulli noise in the rewards is irreducible; the model removes the rest.
    assert np.var(dr_values) < np.var(ips_values)
    assert np.all(np.array(dr_se) < np.array(ips_se))
    assert np.mean(dr_se) < 0.95 * np.mean(ips_se)
    assert abs(np.mean(dr_values) - true_value) < 3 * np.std(dr_values) / np.sqrt(30) + 1e-3


def test_on_policy_logs_give_the_plain_mean():
    rewards = np.array([0.0, 1.0, 1.0, 0.0])
    p = np.full(4, 0.25)
    est = ips_estimate(rewards, p, p)
    assert est.value == pytest.approx(0.5)
    assert est.effective_sample_size == pytest.approx(4.0)
    assert snips_estimate(rewards, p, p).value == pytest.approx(0.5)


def test_clipping_caps_the_weights_and_counts_them():
    rewards = np.ones(4)
    est = ips_estimate(rewards, np.array([0.01, 0.5, 0.5, 0.5]), np.ones(4), clip=10.0)
    assert est.n_clipped == 1
    assert est.value == pytest.approx((10 + 2 + 2 + 2) / 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"logging_propensity": np.array([0.0, 0.5])}, "logging_propensity"),
        ({"target_probability": np.array([1.5, 0.5])}, "target_probability"),
        ({"rewards": np.array([1.0, np.nan])}, "rewards"),
        ({"target_probability": np.array([0.5, 0.5, 0.5])}, "target_probability has 3 values"),
        ({"rewards": np.array([1.0])}, "at least 2"),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    args = {
        "rewards": np.array([1.0, 0.0]),
        "logging_propensity": np.array([0.5, 0.5]),
        "target_probability": np.array([0.5, 0.5]),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ips_estimate(**args)


def test_doubly_robust_checks_model_arrays():
    with pytest.raises(ValueError, match="model_value_target"):
        doubly_robust_estimate(np.ones(3), np.full(3, 0.5), np.full(3, 0.5), np.ones(3), np.ones(2))
