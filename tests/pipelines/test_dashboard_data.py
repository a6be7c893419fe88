"""The sample-ratio-mismatch check of pipelines.dashboard_data, counted by hand."""

from __future__ import annotations

import pytest

from pipelines.dashboard_data import sample_ratio


def test_a_holdout_three_times_too_large_is_a_mismatch() -> None:
    # 50 of 155 sends in control against 10% (15.5 expected): 34.5² / 15.5 + 34.5² / 139.5 = 85.35
    out = sample_ratio(control=50, treatment=105, holdout_share=0.1)
    assert out["chi2"] == pytest.approx(34.5**2 / 15.5 + 34.5**2 / 139.5)
    assert out["p_value"] < 1e-15 and out["mismatch"] is True
    assert out["observed_share"] == pytest.approx(50 / 155)


def test_the_configured_share_is_no_mismatch() -> None:
    out = sample_ratio(control=100, treatment=900, holdout_share=0.1)
    assert (out["chi2"], out["p_value"], out["mismatch"]) == (0.0, 1.0, False)


def test_without_sends_or_without_a_holdout_there_is_no_test() -> None:
    assert sample_ratio(0, 0, 0.1)["reason"] == "no decision in the window"
    no_holdout = sample_ratio(3, 97, 0.0)
    assert no_holdout["p_value"] is None and no_holdout["mismatch"] is True
    assert sample_ratio(0, 97, 0.0)["mismatch"] is False
