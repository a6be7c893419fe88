"""Scoring only the allowed (customer, arm) pairs: the same numbers there, NaN elsewhere,
and the same decisions and propensities for every policy as scoring everything."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import POLICY_NAMES, make_policy
from ml.scoring import ResponseModel, score_matrix
from ml.train import TrainConfig, train_model
from pipelines.decide import ModelHandle, model_scores


@pytest.fixture(scope="module")
def fitted(examples):
    return train_model(examples, TrainConfig(n_estimators=30, early_stopping_rounds=5))


def _customers(examples, n):
    return examples.drop_duplicates("customer_id").head(n).reset_index(drop=True)


def _mask(n, k, seed):
    allowed = np.random.default_rng(seed).random((n, k)) < 0.7
    allowed[np.arange(n), np.arange(n) % k] = True  # every customer keeps an arm
    allowed[3] = False  # and one keeps none: nothing to score
    return allowed


def test_allowed_pairs_get_the_same_scores_and_the_others_nan(examples, arms, fitted):
    customers = _customers(examples, 53)
    allowed = _mask(len(customers), len(arms), 0)
    full = score_matrix(fitted.model, fitted.spec, customers, arms)
    for chunk_rows in (1, 7, 24, 100, 10_000):
        part = score_matrix(
            fitted.model, fitted.spec, customers, arms, chunk_rows=chunk_rows, allowed=allowed
        )
        assert part.shape == full.shape and part.dtype == np.float32
        np.testing.assert_array_equal(part[allowed], full[allowed])
        assert np.isnan(part[~allowed]).all()
    every = np.ones_like(allowed)
    everything = score_matrix(fitted.model, fitted.spec, customers, arms, allowed=every)
    np.testing.assert_array_equal(everything, full)
    wrapped = ResponseModel(fitted.model, fitted.spec)
    np.testing.assert_array_equal(
        wrapped.score_matrix(customers, arms, allowed=allowed),
        score_matrix(fitted.model, fitted.spec, customers, arms, allowed=allowed),
    )
    with pytest.raises(ValueError, match="allowed must have shape"):
        score_matrix(fitted.model, fitted.spec, customers, arms, allowed=allowed[:, :-1])


def test_policies_decide_the_same_without_the_disallowed_scores(examples, arms, fitted):
    customers = _customers(examples, 400)
    k = len(arms)
    allowed = _mask(len(customers), k, 1)
    allowed[3, 0] = True
    arm_params = arms.drop(columns=["arm_id", "campaign_id"]).to_dict("records")
    wrapped = ResponseModel(fitted.model, fitted.spec)
    handle = ModelHandle("1", lambda c, a, allowed=None: wrapped.score_matrix(c, a, allowed=allowed))
    skipped = model_scores(handle, customers, arm_params, allowed)
    everything = wrapped.score_matrix(customers, arm_params)
    assert (skipped[~allowed] == 0).all()
    np.testing.assert_array_equal(skipped[allowed], everything[allowed])

    rng = np.random.default_rng(2)
    segments = rng.integers(9, size=len(customers))
    pulls = rng.integers(20, 2000, size=(9, k)).astype(float)
    rewards = rng.binomial(pulls.astype(int), 0.04).astype(float)
    for name in POLICY_NAMES:
        runs = []
        for proba in (everything, skipped):
            policy = make_policy(name, n_arms=k, n_segments=9).set_stats(pulls, rewards)
            runs.append(policy.decide(segments, np.random.default_rng(7), allowed=allowed, model_proba=proba))
        a, b = runs
        np.testing.assert_array_equal(a.arm, b.arm, err_msg=name)
        np.testing.assert_array_equal(a.propensity, b.propensity, err_msg=name)
        np.testing.assert_array_equal(a.model_score, b.model_score, err_msg=name)
        np.testing.assert_array_equal(a.blend_score, b.blend_score, err_msg=name)
