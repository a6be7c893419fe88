"""SNIPS is self-normalized: checked on logs small enough to compute by hand.

IPS averages ``w * r`` over the n decisions; SNIPS divides ``sum(w * r)`` by ``sum(w)``. The two
agree only when the weights average exactly 1, which is why the coverage tests of
tests/bandits/test_off_policy.py (weights averaging about 1) cannot tell them apart.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.off_policy import ips_estimate, snips_estimate

# Four logged decisions: weights w = target / logging = [2, 2, 2, 0], mean 1.5.
REWARDS = np.array([1.0, 0.0, 1.0, 0.0])
LOGGING = np.array([0.5, 0.5, 0.25, 0.25])
TARGET = np.array([1.0, 1.0, 0.5, 0.0])


def test_snips_by_hand() -> None:
    """sum(w r) = 2 + 0 + 2 + 0 = 4 and sum(w) = 6, so SNIPS = 4 / 6 = 2/3 (IPS = 4 / 4 = 1).

    Delta-method terms w (r - 2/3) / mean(w) = [2/3, -4/3, 2/3, 0] / 1.5 = [4/9, -8/9, 4/9, 0]:
    mean 0, sum of squares 96/81, sample variance 96/81 / 3 = 32/81, so the standard error is
    sqrt(32/81) / sqrt(4) = sqrt(32) / 18 = 0.3142697.
    Effective sample size (sum w)^2 / sum w^2 = 36 / 12 = 3.
    """
    est = snips_estimate(REWARDS, LOGGING, TARGET)
    assert est.estimator == "snips"
    assert est.value == pytest.approx(2 / 3)
    assert est.std_error == pytest.approx(math.sqrt(32) / 18)
    half_width = 1.959964 * 0.3142697
    assert (est.ci_low, est.ci_high) == pytest.approx((2 / 3 - half_width, 2 / 3 + half_width))
    assert est.effective_sample_size == pytest.approx(3.0)
    assert ips_estimate(REWARDS, LOGGING, TARGET).value == pytest.approx(1.0)


def test_snips_stays_within_the_rewards_and_ignores_the_weight_scale() -> None:
    """A constant reward of 1 is worth exactly 1 to any target policy under SNIPS, however skewed
    the weights; IPS gives mean(w). Halving every logging propensity doubles each weight: IPS
    doubles, SNIPS does not move."""
    rng = np.random.default_rng(4)
    logging = rng.uniform(0.05, 1.0, 500)
    target = rng.uniform(0.0, 1.0, 500)
    ones = snips_estimate(np.ones(500), logging, target)
    assert ones.value == pytest.approx(1.0) and ones.std_error == pytest.approx(0.0, abs=1e-12)
    rewards = (rng.random(500) < 0.3).astype(float)
    base = snips_estimate(rewards, logging, target)
    halved = snips_estimate(rewards, logging / 2, target)
    assert halved.value == pytest.approx(base.value) and halved.std_error == pytest.approx(base.std_error)
    ips = ips_estimate(rewards, logging, target).value
    assert ips_estimate(rewards, logging / 2, target).value == pytest.approx(2 * ips)
    assert 0.0 <= base.value <= 1.0


def test_snips_has_lower_spread_than_ips_when_weights_are_skewed() -> None:
    """The target always picks an arm the logger picked 5% of the time (weight 20) and the
    reward rate is 0.9 everywhere. IPS = 20 * (rewards on those rows) / n moves with how many such
    rows the log happens to hold (100 +- 10 of 2,000: about 0.09); SNIPS is their mean reward
    (about +- 0.03). Across 30 seeded logs SNIPS spreads less than half as much."""
    ips_values, snips_values = [], []
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        rare = rng.random(2_000) < 0.05
        logging = np.where(rare, 0.05, 0.95)
        target = np.where(rare, 1.0, 0.0)
        rewards = (rng.random(2_000) < 0.9).astype(float)
        ips_values.append(ips_estimate(rewards, logging, target).value)
        snips_values.append(snips_estimate(rewards, logging, target).value)
    assert np.std(snips_values) < 0.5 * np.std(ips_values)
    assert abs(np.mean(snips_values) - 0.9) < 0.02


def test_snips_with_clipping_normalizes_by_the_clipped_weights() -> None:
    """clip=1.5 caps the weights [2, 2, 2, 0] at [1.5, 1.5, 1.5, 0]: SNIPS = 3 / 4.5 = 2/3 still
    (it is scale free), IPS = 3 / 4 = 0.75; three weights were clipped."""
    est = snips_estimate(REWARDS, LOGGING, TARGET, clip=1.5)
    assert est.value == pytest.approx(2 / 3) and est.n_clipped == 3
    assert ips_estimate(REWARDS, LOGGING, TARGET, clip=1.5).value == pytest.approx(0.75)


def test_snips_refuses_a_target_that_never_picks_a_logged_arm() -> None:
    with pytest.raises(ValueError, match="SNIPS is undefined"):
        snips_estimate(REWARDS, LOGGING, np.zeros(4))
