"""Concept drift of one arm: Page-Hinkley by hand, the segment-adjusted z, change points in days."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bandits.drift import ChangePoint, arm_change_points, change_points, segment_adjusted_z


def test_page_hinkley_alarm_and_start_match_the_hand_computation() -> None:
    """x = 0 0 0 0 3 3 3, delta 0.5, threshold 2, from the 3rd value on, increases only.

    running means 0 0 0 0 0.6 1 9/7; x - mean - 0.5 = -0.5 x4, 1.9, 1.5; cumulative -0.5 -1 -1.5 -2
    -0.1 1.4; statistic (cumulative minus its running minimum) 0 0 0 0 1.9 3.4: the alarm is at
    position 5 (3.4 > 2; 1.9 is not), and the minimum -2 sits at position 3, so the change began at 4.
    """
    found = change_points(np.array([0, 0, 0, 0, 3, 3, 3.0]), delta=0.5, threshold=2.0, min_samples=3,
                          direction="increase")  # fmt: skip
    assert found == [ChangePoint(alarm=5, start=4, direction="increase")]
    # Threshold 3.5: 3.4 does not fire at 5; at 6, 3 - 9/7 - 0.5 = 1.2143 more gives 4.614 > 3.5.
    later = change_points(np.array([0, 0, 0, 0, 3, 3, 3.0]), 0.5, 3.5, 3, direction="increase")
    assert later == [ChangePoint(alarm=6, start=4, direction="increase")]


def test_the_segment_adjusted_z_of_a_small_series_by_hand() -> None:
    """Two segments. Day 0: 100 sends 10 conversions in s0, 50 sends 1 in s1. Day 1: 100 sends 4
    conversions in s0 only. Pooled R = 11.5 / 151, r(s0) = (10 + R) / 101; expected 100 r,
    variance 100 r (1 - r)."""
    conv = np.array([[10, 1], [4, 0.0]])
    sends = np.array([[100, 50], [100, 0.0]])
    pooled = 11.5 / 151
    r = (10 + pooled) / 101
    expected_z = (4 - 100 * r) / math.sqrt(100 * r * (1 - r))
    assert segment_adjusted_z(conv, sends) == pytest.approx([expected_z])
    assert expected_z == pytest.approx(-1.9942, abs=1e-4)  # r = 0.09976, sd 2.9968
    # A day the arm went to the other segment only: judged by that segment's own rate.
    moved = segment_adjusted_z(np.array([[10, 1], [0, 2.0]]), np.array([[100, 50], [0, 100.0]]))
    r1 = (1 + pooled) / 51
    assert moved == pytest.approx([(2 - 100 * r1) / math.sqrt(100 * r1 * (1 - r1))])
    # A segment never sent before is expected at the pooled rate, not at 0.5.
    new = segment_adjusted_z(np.array([[10, 0], [0, 3.0]]), np.array([[100, 0], [0, 30.0]]))
    r2 = 10.5 / 101
    assert new == pytest.approx([(3 - 30 * r2) / math.sqrt(30 * r2 * (1 - r2))])


def _hand_cusum(x: list[float], delta: float, threshold: float, min_samples: int) -> int | None:
    """The textbook loop of Page-Hinkley with the mean known to be 0, both directions, first alarm."""
    up = down = min_up = min_down = 0.0
    mean = 0.0
    for t, value in enumerate(x, start=1):
        up += value - mean - delta
        down += mean - value - delta
        min_up, min_down = min(min_up, up), min(min_down, down)
        if t >= min_samples and max(up - min_up, down - min_down) > threshold:
            return t - 1
    return None


def test_a_step_change_alarms_on_the_day_the_hand_loop_says_and_dates_its_start() -> None:
    """One segment, 400 sends a day: 20 conversions a day for days 0-9, then 8 a day."""
    sends = np.full((20, 1), 400.0)
    conv = np.where(np.arange(20)[:, None] < 10, 20.0, 8.0)
    found = arm_change_points(conv, sends, delta=0.5, threshold=8.0, min_samples=5)
    z = []  # z of day t against days < t, by hand
    for t in range(1, 20):
        pooled = (conv[:t].sum() + 0.5) / (sends[:t].sum() + 1)
        r = (conv[:t].sum() + pooled) / (sends[:t].sum() + 1)
        z.append((conv[t, 0] - 400 * r) / math.sqrt(400 * r * (1 - r)))
    alarm = _hand_cusum(z, 0.5, 8.0, 5)
    assert alarm is not None
    assert found == [ChangePoint(alarm=alarm + 1, start=10, direction="decrease")]
    # z = -2.753, -2.570, -2.412, -2.273 on days 10-13; less delta 0.5 each: 6.235 by day 12, 8.008 on 13.
    assert found[0].alarm == 13


@pytest.mark.parametrize("seed", range(5))
def test_same_seed_stationary_is_quiet_and_stepped_alarms_after_the_step(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sends = np.full((30, 3), 500.0)
    base = np.array([0.02, 0.03, 0.04])
    draws = rng.random((30, 3, 500))
    stationary = (draws < base[None, :, None]).sum(axis=2).astype(float)
    stepped_rate = np.where(np.arange(30)[:, None] < 15, base, base * 0.6)
    stepped = (draws < stepped_rate[:, :, None]).sum(axis=2).astype(float)
    assert arm_change_points(stationary, sends, 0.5, 8.0, 5) == []
    found = arm_change_points(stepped, sends, 0.5, 8.0, 5)
    assert found and 15 <= found[0].alarm <= 20 and 13 <= found[0].start <= 16
    assert found[0].direction == "decrease"


def test_a_longer_series_keeps_the_alarms_of_its_prefix() -> None:
    """What lets the monitor recompute every day instead of persisting detector state."""
    rng = np.random.default_rng(7)
    rate = np.where(np.arange(40) < 12, 0.05, np.where(np.arange(40) < 26, 0.025, 0.05))
    conv = rng.binomial(600, rate)[:, None].astype(float)
    sends = np.full((40, 1), 600.0)
    full = arm_change_points(conv, sends, 0.5, 8.0, 5)
    assert len(full) == 2 and [c.direction for c in full] == ["decrease", "increase"]
    for end in range(8, 41):
        prefix = arm_change_points(conv[:end], sends[:end], 0.5, 8.0, 5)
        assert prefix == [c for c in full if c.alarm < end]
