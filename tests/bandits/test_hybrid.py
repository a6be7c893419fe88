"""Blends and the confidence-based hybrid."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import (
    UCB,
    ConfidenceHybrid,
    ConfidenceHybridParams,
    ThompsonBlend,
    ThompsonBlendParams,
    ThompsonSampling,
    UCBBlend,
    UCBBlendParams,
    quality_from_auc,
)
from bandits.hybrid import model_confidence

K = 4
PULLS = np.array([[40.0, 60, 50, 0], [100.0, 100, 100, 100]])
REWARDS = np.array([[4.0, 9, 5, 0], [10.0, 12, 8, 9]])
FIELDS = ("arm", "propensity", "explored", "bandit_score", "model_score", "blend_score", "confidence")


def _same(a: object, b: object) -> None:
    for field in (*FIELDS, "selected_by", "strategy", "phase"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def _inputs(n: int = 500):
    rng = np.random.default_rng(0)
    allowed = rng.random((n, K)) > 0.3
    allowed[:, 1] = True
    return rng.integers(2, size=n), allowed, rng.uniform(0.0, 0.2, size=(n, K))


def test_blends_without_model_are_the_bandit_alone() -> None:
    segments, allowed, _ = _inputs()
    for blend, alone in [
        (ThompsonBlend(K, 2), ThompsonSampling(K, 2)),
        (UCBBlend(K, 2), UCB(K, 2)),
        (ConfidenceHybrid(K, 2), ThompsonSampling(K, 2)),
    ]:
        blend.set_stats(PULLS, REWARDS)
        alone.set_stats(PULLS, REWARDS)
        _same(
            blend.decide(segments, np.random.default_rng(3), allowed),
            alone.decide(segments, np.random.default_rng(3), allowed),
        )


def test_thompson_blend_weights() -> None:
    segments, allowed, model = _inputs()
    pure_model = ThompsonBlend(K, 2, ThompsonBlendParams(weight=0.0)).set_stats(PULLS, REWARDS)
    batch = pure_model.decide(segments, np.random.default_rng(0), allowed, model)
    np.testing.assert_array_equal(batch.arm, np.where(allowed, model, -1).argmax(axis=1))
    np.testing.assert_array_equal(batch.propensity, 1.0)
    assert (batch.selected_by == "blend").all()
    np.testing.assert_allclose(batch.blend_score, batch.model_score, rtol=1e-6)
    # weight 1: the model is ignored for the choice (but its score is logged).
    only_bandit = ThompsonBlend(K, 2, ThompsonBlendParams(weight=1.0)).set_stats(PULLS, REWARDS)
    plain = ThompsonSampling(K, 2).set_stats(PULLS, REWARDS)
    a = only_bandit.decide(segments, np.random.default_rng(1), allowed, model)
    b = plain.decide(segments, np.random.default_rng(1), allowed, model)
    _same(a, b)


def test_thompson_blend_scores_add_up() -> None:
    segments, allowed, model = _inputs()
    policy = ThompsonBlend(K, 2).set_stats(PULLS, REWARDS)
    batch = policy.decide(segments, np.random.default_rng(2), allowed, model)
    np.testing.assert_allclose(
        batch.blend_score, 0.7 * batch.bandit_score + 0.3 * batch.model_score, rtol=1e-5
    )


def test_ucb_blend_lets_the_model_rank_untried_arms() -> None:
    # Segment 0: arm 3 untried. UCB alone must try it; the blend caps its index at 1 and
    # weighs the model, which strongly prefers arm 1.
    segment = np.zeros(1, dtype=np.int64)
    model = np.array([[0.0, 0.9, 0.0, 0.0]])
    assert UCB(K, 2).set_stats(PULLS, REWARDS).decide(segment, np.random.default_rng(0)).arm[0] == 3
    blend = UCBBlend(K, 2, UCBBlendParams(weight=0.6)).set_stats(PULLS, REWARDS)
    index = np.minimum(blend.index_[0], 1.0)
    value = 0.6 * index + 0.4 * model[0]
    batch = blend.decide(segment, np.random.default_rng(0), model_proba=model)
    assert batch.arm[0] == int(value.argmax()) and batch.propensity[0] == 1.0
    assert batch.blend_score[0] == pytest.approx(value.max())
    assert batch.bandit_score[0] <= 1.0


def test_ucb_blend_in_a_batch_lets_the_model_rank_the_arms_the_batch_explores() -> None:
    # Segment 1: four close arms. UCB alone spreads the batch by hallucinated pulls; the
    # blend's bandit value is the index after those pulls, about equal on the explored
    # arms, so each customer's model decides among them.
    n = 3000
    segments = np.ones(n, dtype=np.int64)
    rng = np.random.default_rng(0)
    model = rng.uniform(0.05, 0.15, size=(n, K))
    blend = UCBBlend(K, 2).set_stats(PULLS, REWARDS)
    alone = UCB(K, 2).set_stats(PULLS, REWARDS)
    explored = alone.arm_probabilities(segments)[0] > 0
    assert explored.sum() >= 2
    probs = blend.arm_probabilities(segments, model_proba=model)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    batch = blend.decide(segments, np.random.default_rng(1), model_proba=model)
    np.testing.assert_array_equal(batch.propensity, probs[np.arange(n), batch.arm])
    assert (batch.propensity == 1.0).mean() > 0.99  # deterministic but for ties
    assert np.unique(batch.arm).size >= 2  # the batch is not sent to a single arm
    assert explored[batch.arm].mean() > 0.9
    np.testing.assert_allclose(batch.blend_score, 0.6 * batch.bandit_score + 0.4 * batch.model_score)
    assert (batch.bandit_score <= 1.0).all() and (batch.selected_by == "blend").all()
    # weight 1: the model is ignored, the batch is allocated as by UCB alone.
    only_bandit = UCBBlend(K, 2, UCBBlendParams(weight=1.0)).set_stats(PULLS, REWARDS)
    np.testing.assert_allclose(
        only_bandit.arm_probabilities(segments, model_proba=model), alone.arm_probabilities(segments)
    )


def test_model_confidence_is_quality_times_relative_margin() -> None:
    proba = np.array([[0.2, 0.1, 0.05], [0.3, 0.3, 0.1], [0.4, 0.9, 0.1]])
    allowed = np.array([[True, True, True], [True, True, False], [True, False, False]])
    arm, conf = model_confidence(proba, allowed, quality=0.8)
    np.testing.assert_array_equal(arm, [0, 0, 0])
    np.testing.assert_allclose(conf, [0.8 * 0.5, 0.0, 0.8])


def test_confidence_hybrid_picks_the_more_confident_side() -> None:
    n = 4000
    segments = np.ones(n, dtype=np.int64)  # segment 1: the bandit is unsure (close arms)
    model = np.tile([0.02, 0.02, 0.30, 0.02], (n, 1))  # the model is sure about arm 2
    confident_model = ConfidenceHybrid(K, 2, ConfidenceHybridParams(model_quality=0.9))
    confident_model.set_stats(PULLS, REWARDS)
    batch = confident_model.decide(segments, np.random.default_rng(0), model_proba=model)
    assert (batch.selected_by == "model").mean() > 0.9
    assert (batch.arm[batch.selected_by == "model"] == 2).all()
    np.testing.assert_allclose(batch.model_confidence, 0.9 * (0.30 - 0.02) / 0.30)
    sel_model = batch.selected_by == "model"
    np.testing.assert_allclose(batch.confidence[sel_model], batch.model_confidence[sel_model])
    np.testing.assert_allclose(batch.confidence[~sel_model], batch.bandit_confidence[~sel_model])
    assert (batch.bandit_confidence[~sel_model] >= batch.model_confidence[~sel_model]).all()
    # A useless model (quality 0) never wins.
    useless = ConfidenceHybrid(K, 2, ConfidenceHybridParams(model_quality=0.0)).set_stats(PULLS, REWARDS)
    assert (
        useless.decide(segments, np.random.default_rng(0), model_proba=model).selected_by == "bandit"
    ).all()


def test_confidence_hybrid_propensity_is_exact_given_the_bandit_vector() -> None:
    segments = np.ones(3, dtype=np.int64)
    model = np.tile([0.02, 0.02, 0.30, 0.02], (3, 1))
    policy = ConfidenceHybrid(K, 2, ConfidenceHybridParams(model_quality=0.3)).set_stats(PULLS, REWARDS)
    pi = (
        ThompsonSampling(K, 2)
        .set_stats(PULLS, REWARDS)
        .arm_probabilities(segments, rng=np.random.default_rng(5))
    )
    probs = policy.arm_probabilities(segments, model_proba=model, rng=np.random.default_rng(5))
    c_model = 0.3 * (0.28 / 0.30)
    expected = np.where(pi >= c_model, pi, 0.0)
    expected[:, 2] += np.where(pi < c_model, pi, 0.0).sum(axis=1)
    np.testing.assert_allclose(probs, expected)


def test_quality_from_auc() -> None:
    assert quality_from_auc(0.5) == 0.0
    assert quality_from_auc(0.75) == pytest.approx(0.5)
    assert quality_from_auc(0.3) == 0.0 and quality_from_auc(1.0) == 1.0


@pytest.mark.parametrize(
    ("cls", "field", "value", "message"),
    [
        (ThompsonBlendParams, "weight", 1.2, r"weight must be in \[0, 1\], got 1.2"),
        (UCBBlendParams, "weight", -0.5, r"weight must be in \[0, 1\], got -0.5"),
        (ConfidenceHybridParams, "model_quality", 2.0, r"model_quality must be in \[0, 1\], got 2.0"),
        (ThompsonBlendParams, "draws", -3, "draws must be an integer >= 1, got -3"),
    ],
)
def test_bad_hyperparameters_name_the_value(cls: type, field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**{field: value})
