"""The inverse-propensity option (TrainConfig.inverse_propensity_weighting) changes the fit.

A seeded log whose features cannot tell two kinds of decision apart: every row is the same
customer profile and arm, so the model can only learn one conversion rate. The logging
policy chose it with propensity 0.9 for 1,000 decisions that converted 10% of the time, and
with propensity 0.1 for 1,000 that converted 50% of the time (exact counts, shuffled).

- unweighted, the model learns the plain rate: (100 + 500) / 2,000 = 0.30;
- weighted by 1/p (1.111 and 10; the scaling to mean 1 cancels out), it learns
  (1,000 x 1.111 x 0.1 + 1,000 x 10 x 0.5) / (1,000 x 1.111 + 1,000 x 10)
  = (111.1 + 5,000) / 11,111.1 = 0.46.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.features import ARM_COLUMNS, CATEGORICAL_CUSTOMER_COLUMNS, NUMERIC_CUSTOMER_COLUMNS
from ml.synthetic import make_training_examples
from ml.train import TrainConfig, train_model

N_PER_KIND = 1_000
UNWEIGHTED = 0.30
WEIGHTED = (N_PER_KIND / 0.9 * 0.1 + N_PER_KIND * 10 * 0.5) / (N_PER_KIND / 0.9 + N_PER_KIND * 10)


def _confounded_log(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = make_training_examples(2 * N_PER_KIND, seed=seed, control_share=0.0)
    first = frame.iloc[0]
    for column in (*NUMERIC_CUSTOMER_COLUMNS, *CATEGORICAL_CUSTOMER_COLUMNS, *ARM_COLUMNS):
        frame[column] = first[column]  # one profile and one arm: nothing to split on
    often = np.arange(2 * N_PER_KIND) < N_PER_KIND
    converted = np.where(often, np.arange(2 * N_PER_KIND) % 10 == 0, np.arange(2 * N_PER_KIND) % 2 == 0)
    frame["propensity"] = np.where(often, 0.9, 0.1)
    frame["converted"] = converted.astype(np.int64)
    order = rng.permutation(len(frame))
    frame = frame.iloc[order].reset_index(drop=True)
    # 20 days, the 4 newest validate: both kinds are spread evenly over all of them.
    frame["decision_date"] = (
        pd.Timestamp("2026-02-01") + pd.to_timedelta(np.arange(len(frame)) % 20, "D")
    ).date
    return frame


def _fitted_rate(frame: pd.DataFrame, weighted: bool) -> float:
    config = TrainConfig(
        validation_days=4, inverse_propensity_weighting=weighted, n_estimators=200, learning_rate=0.3, seed=1
    )
    result = train_model(frame, config)
    return float(result.model.predict_proba(result.spec.transform(frame.head(1)))[0, 1])


def test_the_log_is_what_the_docstring_says() -> None:
    frame = _confounded_log(seed=2)
    by_kind = frame.groupby("propensity")["converted"].agg(["size", "mean"])
    assert by_kind.to_dict("index") == {0.1: {"size": 1000, "mean": 0.5}, 0.9: {"size": 1000, "mean": 0.1}}
    assert WEIGHTED == pytest.approx(0.46, abs=1e-9)


@pytest.mark.parametrize("seed", [2, 3])
def test_weighting_moves_the_fit_to_the_reweighted_rate(seed: int) -> None:
    frame = _confounded_log(seed)
    plain, weighted = _fitted_rate(frame, weighted=False), _fitted_rate(frame, weighted=True)
    # Training sees 16 of the 20 days: the rates there differ from the whole log by a few points.
    assert plain == pytest.approx(UNWEIGHTED, abs=0.03)
    assert weighted == pytest.approx(WEIGHTED, abs=0.03)
    assert weighted - plain > 0.12


def test_the_option_reaches_training_from_the_retraining_params() -> None:
    """The retraining DAG's params are flat keys: the option must land in the TrainConfig."""
    from pipelines.retrain import RetrainConfig

    weighted = RetrainConfig.from_mapping({"inverse_propensity_weighting": True})
    assert weighted.train.inverse_propensity_weighting
    assert not RetrainConfig.from_mapping({}).train.inverse_propensity_weighting
