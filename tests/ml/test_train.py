"""Time split, inverse-propensity weights, determinism and a real signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.train import TrainConfig, example_weights, split_by_time, train_model, training_rows


def test_time_split_validates_on_the_newest_days(examples):
    split = split_by_time(examples, TrainConfig(validation_days=7))
    train_days = pd.to_datetime(split.train["decision_date"])
    valid_days = pd.to_datetime(split.valid["decision_date"])
    assert train_days.max() < valid_days.min()
    assert valid_days.dt.normalize().nunique() == 7
    assert len(split.train) + len(split.valid) == len(examples)
    assert split.describe()["valid_date_to"] == "2026-01-28"


def test_time_split_by_fraction(examples):
    split = split_by_time(examples, TrainConfig(validation_days=None, validation_fraction=0.25))
    share = len(split.valid) / len(examples)
    assert 0.2 < share < 0.32  # whole days: the share is approximate
    last_train = pd.to_datetime(split.train["decision_date"]).max()
    assert last_train < pd.to_datetime(split.valid["decision_date"]).min()


def test_time_split_needs_two_dates(examples):
    one_day = examples[examples["decision_date"] == examples["decision_date"].min()]
    with pytest.raises(ValueError, match="at least 2 distinct decision dates"):
        split_by_time(one_day, TrainConfig())


def test_control_rows_are_left_out_by_default(examples):
    assert (training_rows(examples, TrainConfig())["treatment_group"] == "treatment").all()
    assert len(training_rows(examples, TrainConfig(include_control=True))) == len(examples)


def test_inverse_propensity_weights_are_capped_and_mean_one():
    weights = example_weights(np.array([1.0, 0.5, 0.01, 0.0, np.nan]), max_weight=20.0)
    assert weights.mean() == pytest.approx(1.0)
    raw = np.array([1.0, 2.0, 20.0, 20.0, 20.0])
    np.testing.assert_allclose(weights, raw / raw.mean())


def test_config_names_the_bad_value():
    with pytest.raises(ValueError, match="validation_days"):
        TrainConfig(validation_days=0)
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=0.0)


def test_training_learns_the_signal_and_is_deterministic(examples):
    config = TrainConfig(n_estimators=150, seed=3)
    first = train_model(examples, config)
    second = train_model(examples, config)
    x_valid = first.spec.transform(first.split.valid)
    p1 = first.model.predict_proba(x_valid)[:, 1]
    np.testing.assert_array_equal(p1, second.model.predict_proba(x_valid)[:, 1])
    assert first.best_iteration == second.best_iteration < 150  # early stopping worked

    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(first.split.valid["converted"], p1) > 0.6


def test_inverse_propensity_weighting_trains(examples):
    result = train_model(examples, TrainConfig(n_estimators=40, inverse_propensity_weighting=True))
    p = result.model.predict_proba(result.spec.transform(result.split.valid.head(100)))[:, 1]
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
