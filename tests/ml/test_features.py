"""One feature path: training rows and the scoring cross product give identical matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.features import ARM_COLUMNS, FeatureSpec, cross_blocks
from ml.scoring import ResponseModel, score_matrix
from ml.train import TrainConfig, train_model


def _customers(examples: pd.DataFrame, n: int) -> pd.DataFrame:
    return examples.drop_duplicates("customer_id").head(n).reset_index(drop=True)


def _cross_join(customers: pd.DataFrame, arms: pd.DataFrame) -> pd.DataFrame:
    """The pandas way scoring must NOT take at scale, used here as the reference."""
    customer_part = customers.drop(columns=[c for c in ARM_COLUMNS if c in customers.columns])
    return customer_part.merge(arms, how="cross")


def test_training_and_scoring_features_are_identical(examples, arms):
    spec = FeatureSpec().fit(examples)
    customers = _customers(examples, 37)
    rows = _cross_join(customers, arms)  # customer-major, like cross()
    np.testing.assert_array_equal(spec.transform(rows), spec.cross(customers, arms))


def test_iter_cross_chunks_add_up_to_cross(examples, arms):
    spec = FeatureSpec().fit(examples)
    customers = _customers(examples, 23)
    whole = spec.cross(customers, arms)
    chunks = list(spec.iter_cross(customers, arms, chunk_rows=50))  # 2 customers x 24 arms per chunk
    assert all(len(m) <= 50 for _, m in chunks)
    np.testing.assert_array_equal(np.vstack([m for _, m in chunks]), whole)
    assert chunks[-1][0].stop == len(customers)


def test_layout_dtype_and_names(examples):
    spec = FeatureSpec().fit(examples)
    x = spec.transform(examples.head(10))
    assert x.dtype == np.float32
    assert x.shape == (10, spec.n_features) == (10, len(spec.feature_names))
    assert spec.feature_names[: len(spec.numeric)] == list(spec.numeric)
    assert "gender=F" in spec.feature_names and "channel=app_push" in spec.feature_names
    # Campaign 1 arms vary offer_type and channel; day_of_week is never used: no columns for it.
    assert not any(name.startswith("day_of_week=") for name in spec.feature_names)


def test_unseen_and_null_categories_encode_as_zeros(examples):
    spec = FeatureSpec().fit(examples)
    row = examples.head(1).copy()
    row["channel"] = "carrier_pigeon"
    row["offer_type"] = None
    x = spec.transform(row)[0]
    names = spec.feature_names
    for prefix in ("channel=", "offer_type="):
        assert all(x[i] == 0.0 for i, name in enumerate(names) if name.startswith(prefix))


def test_missing_arm_columns_count_as_null(examples, arms):
    spec = FeatureSpec().fit(examples)
    np.testing.assert_array_equal(
        spec.arm_block(arms[["arm_id", "offer_type", "channel"]]),
        spec.arm_block(arms.assign(discount=None, time_of_day=None)[["arm_id", "offer_type", "channel",
                                                                      "discount", "time_of_day"]]),
    )


def test_spec_round_trips_through_json(examples):
    spec = FeatureSpec().fit(examples)
    again = FeatureSpec.from_json(spec.to_json())
    assert again.feature_names == spec.feature_names
    np.testing.assert_array_equal(again.transform(examples.head(50)), spec.transform(examples.head(50)))


def test_unfitted_spec_refuses_to_transform(examples):
    with pytest.raises(ValueError, match="not fitted"):
        FeatureSpec().transform(examples.head(2))


def test_cross_blocks_is_repeat_and_tile():
    customers = np.arange(6, dtype=np.float32).reshape(3, 2)
    arms = np.eye(2, dtype=np.float32)
    expected = np.hstack([np.repeat(customers, 2, axis=0), np.tile(arms, (3, 1))])
    np.testing.assert_array_equal(cross_blocks(customers, arms), expected)


def test_score_matrix_matches_row_predictions_for_any_chunk_size(examples, arms):
    result = train_model(examples, TrainConfig(n_estimators=30, early_stopping_rounds=5))
    customers = _customers(examples, 41)
    reference = result.model.predict_proba(result.spec.transform(_cross_join(customers, arms)))[:, 1]
    for chunk_rows in (7, 100, 10_000):
        scores = score_matrix(result.model, result.spec, customers, arms, chunk_rows=chunk_rows)
        assert scores.shape == (41, len(arms)) and scores.dtype == np.float32
        np.testing.assert_allclose(scores.ravel(), reference, rtol=1e-6)
    wrapped = ResponseModel(result.model, result.spec)
    np.testing.assert_array_equal(wrapped.score_matrix(customers, arms), score_matrix(
        result.model, result.spec, customers, arms))
    as_dicts = arms.drop(columns=["arm_id", "campaign_id"]).to_dict("records")
    np.testing.assert_array_equal(
        wrapped.score_matrix(customers, as_dicts), wrapped.score_matrix(customers, arms)
    )


def test_a_few_rows_build_the_same_customer_block_as_the_pandas_path(examples):
    """Real-time requests take the small-frame path: numbers coerced like to_numeric(coerce),
    categories matched as text, nulls and unseen values all-zero -- the same block as pandas."""
    spec = FeatureSpec().fit(examples)
    rows = _customers(examples, 6).astype(object)
    numeric, category = spec.numeric[0], spec.customer_categorical[0]
    rows.loc[0, numeric] = None
    rows.loc[1, numeric] = "not a number"
    rows.loc[2, numeric] = "12.5"
    rows.loc[3, category] = None
    rows.loc[4, category] = "never seen"
    rows.loc[5, category] = float("nan")
    small = spec.customer_block(rows)
    many = spec.customer_block(pd.concat([rows] * 2, ignore_index=True))  # > SMALL_FRAME_ROWS
    np.testing.assert_array_equal(small, many[: len(rows)])
    assert np.isnan(small[0, 0]) and np.isnan(small[1, 0]) and small[2, 0] == 12.5


def test_the_cached_arm_block_follows_the_arm_list(examples, arms):
    result = train_model(examples, TrainConfig(n_estimators=10, early_stopping_rounds=5))
    model, customers = ResponseModel(result.model, result.spec), _customers(examples, 3)
    as_dicts = arms.drop(columns=["arm_id", "campaign_id"]).to_dict("records")
    first = model.score_matrix(customers, as_dicts)
    changed = [dict(a) for a in as_dicts[::-1]]  # another campaign's (here: reversed) arms
    np.testing.assert_array_equal(model.score_matrix(customers, changed), first[:, ::-1])
    np.testing.assert_array_equal(model.score_matrix(customers, as_dicts), first)
