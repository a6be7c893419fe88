"""Drift detectors: Page-Hinkley, per-arm conversion-rate test, PSI."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from bandits.drift import (
    PSI_SHIFTED,
    PSI_STABLE,
    PageHinkley,
    conversion_rate_drift,
    population_stability_index,
    psi_from_counts,
    two_proportion_z,
)


def _daily_rates(seed: int, days: int = 60, shift_day: int = 30, before=0.030, after=0.020):
    """Daily conversion rates of 5,000 sends/day with a drop at ``shift_day``."""
    rng = np.random.default_rng(seed)
    rate = np.where(np.arange(days) < shift_day, before, after)
    return rng.binomial(5000, rate) / 5000


@pytest.mark.parametrize("seed", range(10))
def test_page_hinkley_fires_after_a_shift_and_not_before(seed):
    rates = _daily_rates(seed)
    detector = PageHinkley(delta=0.001, threshold=0.02, direction="decrease")
    alarms = np.flatnonzero(detector.update(rates))
    assert alarms.size >= 1
    assert 30 <= alarms[0] <= 40, f"first alarm on day {alarms[0]}"


def test_page_hinkley_is_quiet_on_a_stable_stream():
    for seed in range(10):
        rates = _daily_rates(seed, shift_day=60)
        assert not PageHinkley(delta=0.001, threshold=0.02).update(rates).any()


def test_page_hinkley_streaming_equals_one_batch():
    rates = _daily_rates(3)
    batch = PageHinkley(delta=0.001, threshold=0.02).update(rates)
    stream = PageHinkley(delta=0.001, threshold=0.02)
    chunks = np.concatenate([stream.update(rates[i : i + 7]) for i in range(0, rates.size, 7)])
    np.testing.assert_array_equal(batch, chunks)
    assert stream.alarms_ == list(np.flatnonzero(batch))


def test_page_hinkley_detects_increases_only_when_asked():
    rates = _daily_rates(1, before=0.02, after=0.03)
    assert not PageHinkley(delta=0.001, threshold=0.02, direction="decrease").update(rates).any()
    assert PageHinkley(delta=0.001, threshold=0.02, direction="increase").update(rates).any()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"delta": -1}, "delta"), ({"threshold": 0}, "threshold"), ({"direction": "up"}, "direction")],
)
def test_page_hinkley_rejects_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PageHinkley(**kwargs)


def test_conversion_rate_drift_flags_only_the_arm_that_moved():
    rng = np.random.default_rng(0)
    days, arms = 28, 6
    sends = np.full((days, arms), 2000)
    rate = np.full((days, arms), 0.04)
    rate[-7:, 2] = 0.02  # arm 2 halves in the last week
    result = conversion_rate_drift(rng.binomial(sends, rate), sends, window=7)
    assert result.drifted.tolist() == [False, False, True, False, False, False]
    assert result.z[2] < 0
    assert result.recent_rate[2] == pytest.approx(0.02, abs=0.005)


def test_conversion_rate_drift_skips_arms_without_enough_sends():
    sends = np.zeros((10, 2))
    sends[:, 0] = 1000
    conv = np.zeros((10, 2))
    result = conversion_rate_drift(conv, sends, window=3)
    assert np.isnan(result.p_value[1]) and not result.drifted[1]
    assert result.p_value[0] == pytest.approx(1.0)


def test_two_proportion_z_matches_a_hand_computation():
    z, p = two_proportion_z(np.array([50]), np.array([1000]), np.array([80]), np.array([1000]))
    pooled = 130 / 2000
    expected = (0.08 - 0.05) / np.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert z[0] == pytest.approx(expected)
    assert p[0] == pytest.approx(2 * (1 - NormalDist().cdf(expected)))


def test_conversion_rate_drift_validates_shapes():
    with pytest.raises(ValueError, match="shape"):
        conversion_rate_drift(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="window"):
        conversion_rate_drift(np.zeros((5, 2)), np.ones((5, 2)), window=5)


def test_psi_is_zero_on_identical_distributions():
    x = np.random.default_rng(0).lognormal(10, 0.5, 10_000)
    assert population_stability_index(x, x) == pytest.approx(0.0, abs=1e-12)
    assert psi_from_counts(np.array([3, 5, 2]), np.array([6, 10, 4])) == pytest.approx(0.0, abs=1e-12)


def test_psi_grades_small_and_large_shifts():
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 20_000)
    assert population_stability_index(ref, rng.normal(0, 1, 20_000)) < PSI_STABLE
    assert population_stability_index(ref, rng.normal(1.0, 1, 20_000)) > PSI_SHIFTED


def test_psi_handles_discrete_features_and_out_of_range_values():
    ref = np.random.default_rng(2).integers(0, 3, 5000)
    assert population_stability_index(ref, ref) == pytest.approx(0.0, abs=1e-12)
    assert population_stability_index(ref, ref + 10) > PSI_SHIFTED


def test_psi_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        population_stability_index(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="same shape"):
        psi_from_counts(np.ones(3), np.ones(4))
