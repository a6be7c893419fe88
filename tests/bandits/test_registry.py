"""make_policy: what a campaign file names, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import bandits
from bandits import (
    POLICY_NAMES,
    ConfidenceHybrid,
    Interleaved,
    Lifecycle,
    Rotation,
    ThompsonBlend,
    ThompsonSampling,
    UCBBlend,
    UniformRandom,
    hyperparameters,
    make_policy,
)


def test_every_name_builds_a_policy_that_decides() -> None:
    expected = {
        "thompson",
        "ucb",
        "epsilon_greedy",
        "thompson_blend",
        "ucb_blend",
        "confidence_hybrid",
        "igw",
        "rotation",
        "interleaved",
        "lifecycle",
        "uniform",
    }
    assert set(POLICY_NAMES) == expected
    for name in POLICY_NAMES:
        policy = make_policy(name, 5, 2)
        assert policy.name == name and (policy.n_arms, policy.n_segments) == (5, 2)
        assert len(policy.decide(np.array([0, 1]), np.random.default_rng(0))) == 2


def test_hyperparameters_reach_the_policy() -> None:
    ts = make_policy("thompson", 4, 1, prior_alpha=1.0, prior_beta=30.0)  # campaigns/card_cashback.yaml
    assert isinstance(ts, ThompsonSampling) and ts.params.prior_beta == 30.0
    blend = make_policy("thompson_blend", 4, 1, weight=0.3)  # campaigns/cross_sell.yaml
    assert isinstance(blend, ThompsonBlend) and blend.params.weight == 0.3
    assert isinstance(make_policy("ucb_blend", 4, 1, weight=0.5, c=2.0), UCBBlend)
    assert isinstance(make_policy("confidence_hybrid", 4, 1, model_quality=0.8), ConfidenceHybrid)
    assert isinstance(make_policy("uniform", 4), UniformRandom)


def test_composites_take_per_strategy_hyperparameters() -> None:
    rot = make_policy("rotation", 4, 2, period=50, ucb={"c": 0.5}, strategies=["ucb", "thompson"])
    assert isinstance(rot, Rotation) and rot.params.period == 50
    assert [c.name for c in rot.children] == ["ucb", "thompson"] and rot.children[0].params.c == 0.5
    inter = make_policy("interleaved", 4, 2, weights=[2, 1, 1], epsilon_greedy={"epsilon": 0.2})
    assert isinstance(inter, Interleaved)
    np.testing.assert_allclose(inter.weights, [0.5, 0.25, 0.25])
    life = make_policy("lifecycle", 4, 2, base="ucb_blend", ucb_blend={"weight": 0.4}, init_uniform=0.3)
    assert isinstance(life, Lifecycle) and life.base.name == "ucb_blend" and life.params.init_uniform == 0.3


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown policy 'thompsen'; valid: thompson, ucb, .*lifecycle"):
        make_policy("thompsen", 3)


def test_unknown_hyperparameter_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown hyperparameter 'epsilonn' for policy 'epsilon_greedy'; valid: epsilon, top_k",
    ):
        make_policy("epsilon_greedy", 3, epsilonn=0.1)
    with pytest.raises(
        ValueError, match=r"unknown hyperparameter 'k' for policy 'ucb'; valid: c, pooled, gamma"
    ):
        make_policy("rotation", 3, ucb={"k": 1})
    with pytest.raises(ValueError, match="hyperparameters given for 'ucb', which is not among strategies"):
        make_policy("rotation", 3, strategies=["thompson"], ucb={"c": 1.0})
    with pytest.raises(ValueError, match="unknown strategy 'rotation'"):
        make_policy("interleaved", 3, strategies=["thompson", "rotation"])
    assert "period" in hyperparameters("rotation") and "weight" in hyperparameters("thompson_blend")


def test_bad_values_name_the_field_and_value() -> None:
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\], got 1.5"):
        make_policy("epsilon_greedy", 3, epsilon=1.5)
    with pytest.raises(ValueError, match=r"weight must be a number, got '0.7'"):
        make_policy("thompson_blend", 3, weight="0.7")
    with pytest.raises(ValueError, match="n_arms must be >= 1, got 0"):
        make_policy("ucb", 0)


def test_version_is_exported() -> None:
    assert isinstance(bandits.__version__, str)
