"""Runners that learn a model: the greedy gradient-boosting baseline and the product's policies with
their own retrained champion; and the worlds the decision-quality benchmark adds."""

from __future__ import annotations

import numpy as np
import pytest

from ml.train import TrainConfig
from pipelines.retrain.config import RetrainConfig
from pipelines.simulator import load_scenario
from pipelines.simulator.learners import GreedyGBRunner, ProductModelRunner, SendLog, training_examples
from pipelines.simulator.runners import best_allowed, make_runner
from pipelines.simulator.scenario import DEFAULT_SCENARIO
from pipelines.simulator.truth import FEATURES
from pipelines.simulator.world import World

SCENARIOS = DEFAULT_SCENARIO.parent
FAST_RETRAIN = RetrainConfig(train=TrainConfig(n_estimators=60, n_jobs=1))


def small(name: str, customers: int = 20_000, **response):
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    changed = scenario.response.model_copy(update=response)
    return scenario.model_copy(update={"customers": customers, "response": changed})


def test_greedy_baseline_explores_five_percent_with_exact_propensities_and_finds_the_planted_arm():
    world = World(small("default"), seed=3)
    runner = GreedyGBRunner(world, epsilon=0.05, seed=3)
    rng = np.random.default_rng(0)
    planted = world.arms.keys.index("offer_type=savings_account|channel=email|time_of_day=evening")
    for day in range(3):  # planted rewards: the one arm converts at 30 %, every other at 2 %
        batch = world.day_batch(day, 4000)
        arms = runner.choose(batch, rng)
        if day == 0:  # nothing learned yet: uniform over the allowed arms
            assert runner.last_explored.all()
            np.testing.assert_allclose(runner.last_propensity, 1.0 / batch.allowed.sum(axis=1))
        rewards = (rng.random(arms.size) < np.where(arms == planted, 0.30, 0.02)).astype(float)
        runner.learn(day, batch.segments, arms, rewards)
    batch = world.day_batch(3, 20_000)
    arms = runner.choose(batch, rng)
    greedy = best_allowed(runner.scores(batch.customers), batch.allowed)
    can = batch.allowed[:, planted]
    assert (greedy[can] == planted).mean() > 0.99
    share = runner.last_explored.mean()
    assert abs(share - 0.05) < 3 * np.sqrt(0.05 * 0.95 / arms.size)
    assert (arms[~runner.last_explored] == greedy[~runner.last_explored]).all()
    n_allowed = batch.allowed.sum(axis=1)
    exact = 0.05 / n_allowed + 0.95 * (arms == greedy)
    np.testing.assert_allclose(runner.last_propensity, exact)
    # The greedy arm is sent 95 % + 5 % / n of the time: the observed share agrees.
    assert abs((arms == greedy).mean() - exact[arms == greedy].mean()) < 0.01


def test_send_log_refuses_outcomes_for_arms_it_did_not_send():
    log = SendLog()
    log.record(0, np.array([4, 7]), np.array([1, 2]), np.array([0.5, 0.5]))
    with pytest.raises(RuntimeError, match="differ"):
        log.mature(0, np.array([2, 1]), np.array([0.0, 1.0]))


def test_training_examples_are_the_matured_sends_with_their_customer_and_arm():
    world = World(small("few_arms", 2000), seed=1)
    log = SendLog()
    log.record(0, np.array([5, 9]), np.array([0, 3]), np.array([0.25, 0.25]))
    log.record(1, np.array([5]), np.array([2]), np.array([0.9]))
    log.mature(0, np.array([0, 3]), np.array([1.0, 0.0]))  # day 1 has not matured
    from pipelines.simulator.learners import arm_table

    frame = training_examples(world, log, arm_table(world))
    assert list(frame["offer_type"]) == ["credit_card", "investment_product"]
    assert list(frame["converted"]) == [1, 0] and list(frame["propensity"]) == [0.25, 0.25]
    assert list(frame["age"]) == list(world.customers["age"].iloc[[5, 9]])
    assert frame["channel"].isna().all() and (frame["decision_date"] == "2026-01-05").all()


def test_model_policies_get_their_own_retrained_model_with_trained_kind():
    world = World(small("few_arms", 2000), seed=0)
    runner = make_runner("thompson_blend", world, days=10)
    assert isinstance(runner, ProductModelRunner)
    assert not isinstance(make_runner("thompson", world, days=10), ProductModelRunner)
    assert isinstance(make_runner("gb_greedy", world, days=10), GreedyGBRunner)


def run_days(runner, world: World, days: int, sends: int, lag: int = 2) -> None:
    """The closed loop of pipelines.simulator.loop for one runner."""
    rng, pending = np.random.default_rng(0), []
    for day in range(days):
        batch = world.day_batch(day, sends)
        arms = runner.choose(batch, rng)
        rewards = (batch.uniforms < batch.probabilities[np.arange(len(batch)), arms]).astype(float)
        pending.append((day, batch.segments, arms, rewards))
        while pending and pending[0][0] <= day - lag:
            runner.learn(*pending.pop(0))


def test_the_product_policy_scores_with_its_champion_from_the_day_after_the_first_promotion():
    # 3,000 sends a day, lag 2: days 0-1 (2 dates = min_days) have matured by the morning of day 4,
    # whose retraining serves from day 5 (it runs beside day 4's decide). validation_days=1: every
    # older date trains and the newest validates, so each day's challenger learns from one more day
    # (3,000, 6,000, 9,000, 12,000 rows). Strong heterogeneity and a 20 % base rate let the first
    # challenger clear the AUC floor; each fresher challenger not significantly worse replaces it.
    world = World(small("few_arms", base_rate=0.2, heterogeneity=3.0), seed=0)
    runner = make_runner("thompson_blend", world, days=8, retrain=FAST_RETRAIN)
    run_days(runner, world, days=8, sends=3000)
    done = [h for h in runner.retrainer.history if h.status == "done"]
    assert [h.train_rows for h in done] == [3000, 6000, 9000, 12000]
    assert [h.valid_rows for h in done] == [3000] * 4
    assert [h.promoted for h in done] == [True, True, True, True]
    assert "the fresher model replaces the champion" in done[1].reason
    diagnostics = runner.diagnostics()
    assert diagnostics["first_model_day"] == 5 and diagnostics["promotions"] == 4
    assert diagnostics["champion_auc"] == done[-1].challenger_auc > 0.52


def test_continuous_scenario_puts_no_heterogeneity_in_age_or_income():
    world = World(small("continuous_heterogeneity", 2000), seed=0)
    features = world.features[:5].copy()
    moved = features.copy()
    moved[:, FEATURES.index("youth")] += 1.0
    moved[:, FEATURES.index("wealth")] -= 1.0
    np.testing.assert_allclose(world.truth.observable_logits(moved), world.truth.observable_logits(features))
    visits = features.copy()
    visits[:, FEATURES.index("visits")] += 1.0
    assert not np.allclose(world.truth.observable_logits(visits), world.truth.observable_logits(features))


def test_default_scenario_gives_web_visits_no_weight():
    world = World(small("default", 2000), seed=0)
    assert not world.truth.before.interaction[FEATURES.index("visits")].any()


def test_few_arms_scenario_has_one_winner_for_nearly_everyone():
    world = World(small("few_arms"), seed=0)
    rows = world.eligible[:5000]
    best = world.truth.observable_logits(world.features[rows]).argmax(axis=1)
    rates = np.sort(world.population_arm_rates(30))[::-1]
    assert world.n_arms == 4 and np.bincount(best).max() / rows.size > 0.9
    assert 0.01 < rates[-1] and rates[0] < 0.30 and rates[0] / rates[1] - 1 < 0.1  # a small relative gap
