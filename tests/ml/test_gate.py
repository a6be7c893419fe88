"""ml.gate: DeLong intervals checked by hand and against theory; the rule on cases known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from ml.gate import (
    GateConfig,
    ValidationScores,
    auc_difference,
    auc_interval,
    decide,
    delong_covariance,
    log_loss_gain,
)


def test_delong_by_hand():
    # Positives 0.9, 0.4; negatives 0.5, 0.1: 3 of 4 pairs ordered -> AUC 0.75.
    # Per positive, share of negatives below: 1, 0.5 (variance 0.125); per negative, share of
    # positives above: 0.5, 1 (variance 0.125). DeLong: 0.125 / 2 + 0.125 / 2 = 0.125.
    y = np.array([1, 1, 0, 0])
    aucs, cov = delong_covariance(y, np.array([0.9, 0.4, 0.5, 0.1]))
    assert aucs[0] == pytest.approx(0.75) and cov[0, 0] == pytest.approx(0.125)
    # A tie between a positive and a negative counts one half (midranks).
    aucs, _ = delong_covariance(y, np.array([0.9, 0.5, 0.5, 0.1]))
    assert aucs[0] == pytest.approx(0.875)


def test_delong_matches_sklearn_and_the_null_variance():
    rng = np.random.default_rng(0)
    y = rng.random(4000) < 0.2
    noise = rng.random(4000)  # unrelated to the labels
    interval = auc_interval(y, noise)
    assert interval.value == pytest.approx(roc_auc_score(y, noise))
    m, n = int(y.sum()), int((~y).sum())
    # Under no signal, Var(AUC) = (m + n + 1) / (12 m n) (Mann-Whitney); DeLong estimates it.
    assert interval.std_error**2 == pytest.approx((m + n + 1) / (12 * m * n), rel=0.1)
    assert interval.low < 0.5 < interval.high


def test_paired_differences_of_the_same_model_are_exactly_zero():
    rng = np.random.default_rng(1)
    y = rng.random(500) < 0.3
    p = rng.uniform(0.05, 0.9, 500)
    diff = auc_difference(y, p, p)
    gain = log_loss_gain(y, p, p)
    assert (diff.value, diff.std_error, gain.value, gain.std_error) == (0, 0, 0, 0)
    q = np.clip(p + 0.05, 0, 1)
    assert log_loss_gain(y, q, p).value == pytest.approx(log_loss(y, p) - log_loss(y, q))


def _world(n: int, seed: int):
    """Labels drawn from known probabilities: the true model, and views of it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    truth = 1 / (1 + np.exp(-(-2.0 + 1.2 * x)))
    y = (rng.random(n) < truth).astype(int)
    return rng, x, truth, y


def test_a_random_model_is_refused_without_a_champion():
    rng, _, _, y = _world(3000, 2)
    decision = decide(y, ValidationScores(rng.random(3000)), None, GateConfig())
    assert not decision.passed
    assert decision.reason.startswith("no champion yet; AUC 0.")
    assert "lower bound not above the floor 0.520" in decision.reason


def test_the_floor_margin_counts_with_the_interval():
    _, x, truth, y = _world(3000, 3)
    weak = x + np.random.default_rng(9).normal(scale=5, size=x.size)  # a faint signal under noise
    assert decide(y, ValidationScores(truth), None, GateConfig()).passed
    auc = auc_interval(y, weak)
    assert 0.53 < auc.value and auc.low < 0.52  # the point estimate alone would pass
    assert not decide(y, ValidationScores(weak), None, GateConfig()).passed


def test_a_clearly_better_challenger_passes_and_noise_does_not():
    rng, x, truth, y = _world(3000, 4)
    blurred = 1 / (1 + np.exp(-(-2.0 + 1.2 * x + rng.normal(scale=1.5, size=x.size))))
    better = decide(y, ValidationScores(truth), ValidationScores(blurred), GateConfig(), champion_version="1")
    assert better.passed and better.log_loss_gain.low > 0 and better.auc_gain.low > 0
    assert "significantly better" in better.reason

    jitter = np.clip(truth * np.exp(rng.normal(scale=0.01, size=x.size)), 1e-6, 1 - 1e-6)
    strict = GateConfig(refresh_when_not_worse=False)
    noise = decide(y, ValidationScores(jitter), ValidationScores(truth), strict, champion_version="1")
    assert not noise.passed
    assert noise.log_loss_gain.low < 0 < noise.log_loss_gain.high
    assert "not significantly above +0.00000" in noise.reason
    # The strict rule needs a significant gain, not a positive point estimate.
    assert abs(noise.log_loss_gain.value) < noise.log_loss_gain.high - noise.log_loss_gain.low


def test_a_fresher_challenger_level_with_the_champion_replaces_it_a_worse_one_does_not():
    rng, x, truth, y = _world(3000, 4)
    # Level within noise (the interval of the gain straddles 0): the default promotes the fresher model.
    jitter = np.clip(truth * np.exp(rng.normal(scale=0.01, size=x.size)), 1e-6, 1 - 1e-6)
    level = decide(y, ValidationScores(jitter), ValidationScores(truth), GateConfig(), champion_version="1")
    assert level.log_loss_gain.low < 0 < level.log_loss_gain.high
    assert level.passed and "not significantly worse: the fresher model replaces the champion" in level.reason
    # Significantly worse in log loss: refused, whatever the freshness.
    blurred = 1 / (1 + np.exp(-(-2.0 + 1.2 * x + rng.normal(scale=1.5, size=x.size))))
    worse = decide(y, ValidationScores(blurred), ValidationScores(truth), GateConfig(), champion_version="1")
    assert worse.log_loss_gain.high < 0
    assert not worse.passed and "significantly worse" in worse.reason
    # The champion's own predictions (a rerun on the same snapshot): kept, nothing to refresh.
    own = ValidationScores(truth.copy())
    same = decide(y, ValidationScores(truth), own, GateConfig(), champion_version="1")
    assert not same.passed and "the champion's own predictions" in same.reason
    # Still under the floor: a level challenger of a chance-level champion is refused.
    coin = rng.random(3000)
    level_coin = ValidationScores(coin + 1e-9)
    floor = decide(y, ValidationScores(coin), level_coin, GateConfig(), champion_version="1")
    assert not floor.passed and "lower bound not above the floor" in floor.reason


def test_a_significantly_worse_off_policy_value_is_refused():
    rng, x, truth, y = _world(3000, 5)
    blurred = 1 / (1 + np.exp(-(-2.0 + 1.2 * x + rng.normal(scale=1.5, size=x.size))))
    base = rng.random(3000)
    challenger = ValidationScores(truth, value_terms=base)
    champion = ValidationScores(blurred, value_terms=base + 0.05)
    decision = decide(y, challenger, champion, GateConfig(), champion_version="1")
    assert not decision.passed and "off-policy value difference -0.05000" in decision.reason
    tolerant = decide(y, challenger, champion, GateConfig(max_value_drop=0.06), champion_version="1")
    assert tolerant.passed


def test_config_names_the_bad_value():
    with pytest.raises(ValueError, match="min_auc_margin must be in"):
        GateConfig(min_auc_margin=0.6)
    with pytest.raises(ValueError, match="confidence must be in"):
        GateConfig(confidence=1.0)
