"""Metrics, charts and the off-policy estimate of the model's greedy policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.evaluate import (
    calibration_table,
    classification_metrics,
    evaluate,
    greedy_policy_value,
    lift_table,
)
from ml.scoring import ResponseModel
from ml.synthetic import make_training_examples, true_logit
from ml.train import TrainConfig, train_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained(examples):
    # a week of validation, whatever the default: the top decile's lift needs more than a day of rows
    result = train_model(examples, TrainConfig(n_estimators=150, seed=1, validation_days=7))
    return result, ResponseModel(result.model, result.spec)


def test_evaluate_reports_numbers_and_writes_pngs(trained, arms, tmp_path):
    result, model = trained
    evaluation = evaluate(model, result.split.valid, arms=arms, out_dir=tmp_path)
    m = evaluation.metrics
    for key in ("auc", "log_loss", "brier", "ece", "top_decile_lift", "ope_dr_value", "ope_snips_value"):
        assert math.isfinite(m[key]), key
    assert 0.6 < m["auc"] < 1.0 and m["top_decile_lift"] > 1.5
    assert set(evaluation.charts) == {"calibration", "lift_gain", "feature_importance"}
    for path in evaluation.charts.values():
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000
    # The truth's strongest customer effect is digital engagement: it should rank near the top.
    assert "digital_engagement" in evaluation.importance["feature"].head(5).tolist()


def test_tables_add_up():
    rng = np.random.default_rng(0)
    p = rng.random(1000) * 0.3
    y = (rng.random(1000) < p).astype(int)
    lift = lift_table(y, p)
    assert lift["count"].sum() == 1000 and lift["positives"].sum() == y.sum()
    assert lift["cumulative_gain"].iloc[-1] == pytest.approx(1.0)
    calibration = calibration_table(y, p)
    assert calibration["count"].sum() == 1000
    assert np.isnan(classification_metrics(np.zeros(5, int), np.full(5, 0.1))["auc"])


def test_off_policy_estimate_covers_the_true_value(arms):
    """The greedy policy's value under the synthetic truth lies inside the DR and SNIPS intervals.

    Logged by a uniform policy (an exploration phase), so ~8,000 validation decisions give an
    interval a few points wide; the 12,000 epsilon-greedy examples give one too wide to test.
    """
    logs = make_training_examples(30_000, seed=8, epsilon=1.0)
    result = train_model(logs, TrainConfig(n_estimators=150, seed=1))
    model = ResponseModel(result.model, result.spec)
    valid = result.split.valid
    estimate = greedy_policy_value(model, valid, arms, reward_column="converted")

    true_values = []
    for campaign_id, rows in valid.groupby("campaign_id"):
        options = arms[arms["campaign_id"] == campaign_id].reset_index(drop=True)
        best = np.argmax(model.score_matrix(rows, options), axis=1)
        chosen = options.iloc[best].reset_index(drop=True)
        customers = rows.drop(columns=list(options.columns.drop("campaign_id"))).reset_index(drop=True)
        pairs = customers.join(chosen.drop(columns="campaign_id"))
        true_values.append(1.0 / (1.0 + np.exp(-true_logit(pairs))))
    truth = float(np.concatenate(true_values).mean())

    assert estimate["ope_dr_ci_low"] <= truth <= estimate["ope_dr_ci_high"]
    assert estimate["ope_snips_ci_low"] <= truth <= estimate["ope_snips_ci_high"]
    # The model's policy beats the logging policy in truth and by the estimate.
    assert truth > estimate["ope_logged_value"]
    assert estimate["ope_dr_value"] > estimate["ope_logged_value"]
    assert 0 < estimate["ope_match_rate"] < 1


def test_off_policy_metrics_are_nan_without_arms(trained):
    result, model = trained
    metrics = evaluate(model, result.split.valid).metrics
    assert math.isnan(metrics["ope_dr_value"]) and metrics["ope_n"] == 0
