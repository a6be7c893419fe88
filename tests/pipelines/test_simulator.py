"""The simulator: population, ground truth, closed loop, baselines, interaction events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.domain import CUSTOMER_COLUMNS, SEGMENTS
from pipelines.errors import UserError
from pipelines.simulator import (
    EVENT_COLUMNS,
    generate_customers,
    interactions_for_send_list,
    load_scenario,
    run_simulation,
    simulate_run,
)
from pipelines.simulator.arms import arm_grid, encode_arms
from pipelines.simulator.report import days_to_settle, days_to_stay_above
from pipelines.simulator.runners import StaticABRunner
from pipelines.simulator.scenario import DEFAULT_SCENARIO, ResponseSettings
from pipelines.simulator.truth import GroundTruth, response_features
from pipelines.simulator.world import World

SCENARIOS = DEFAULT_SCENARIO.parent


@pytest.fixture(scope="module")
def default():
    return load_scenario(DEFAULT_SCENARIO)


@pytest.fixture(scope="module")
def small(default):
    """The default world, smaller: fast enough for unit tests."""
    return default.model_copy(
        update={"customers": 20_000, "loop": default.loop.model_copy(update={"sends_per_day": 2000})}
    )


# -- population --------------------------------------------------------------------------


def test_generate_customers_is_seeded_and_has_the_domain_columns():
    a, b = generate_customers(1000, seed=5), generate_customers(1000, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["customer_id", *CUSTOMER_COLUMNS]
    assert a["customer_id"].iloc[0] == "C0000001" and a["customer_id"].iloc[-1] == "C0001000"
    assert a["customer_id"].is_unique
    assert not a.equals(generate_customers(1000, seed=6))


def test_generate_customers_is_plausible():
    c = generate_customers(50_000, seed=1)
    assert c["age"].between(18, 90).all() and 40 < c["age"].mean() < 52
    assert 40_000 < c["income"].median() < 70_000
    assert 0.05 < (c["income"] >= 100_000).mean() < 0.25
    assert (c["tenure_years"] <= c["age"] - 18).all()
    assert c["digital_engagement"].between(0, 1).all()
    young, old = c["age"] < 30, c["age"] >= 60
    assert c.loc[young, "digital_engagement"].mean() > c.loc[old, "digital_engagement"].mean() + 0.2
    assert (c["products_held"] >= 1).all()


# -- ground truth -------------------------------------------------------------------------


def _customer(age, income, loyalty_points=500, engagement=0.5):
    return pd.DataFrame(
        {
            "age": [age],
            "income": [income],
            "loyalty_points": [loyalty_points],
            "digital_engagement": [engagement],
        }
    )


def _truth(arms, heterogeneity=1.0):
    settings = ResponseSettings(heterogeneity=heterogeneity, daily_noise_sd=0.0)
    return GroundTruth(settings, encode_arms(arms))


def _observable(truth, customer):
    return truth.observable_logits(response_features(customer))[0]


def test_young_prefer_app_push_in_the_evening_and_the_old_branch_in_the_morning():
    arms = [
        {"channel": "app_push", "time_of_day": "evening", "cta": "consultative"},
        {"channel": "branch", "time_of_day": "morning", "cta": "consultative"},
    ]
    truth = _truth(arms)
    young = _observable(truth, _customer(24, 35_000, engagement=0.9))
    old = _observable(truth, _customer(70, 35_000, engagement=0.2))
    assert young[0] > young[1] + 0.3
    assert old[1] > old[0] + 0.3


def test_wealthy_prefer_exclusive_offers_to_discounts():
    arms = [
        {"offer_type": "investment_product", "discount": "fee_waiver"},
        {"offer_type": "credit_card", "discount": "cashback"},
    ]
    truth = _truth(arms)
    rich = _observable(truth, _customer(45, 250_000))
    modest = _observable(truth, _customer(45, 25_000))
    assert rich[0] > rich[1] and modest[1] > modest[0]


def test_loyal_customers_prefer_retention_offers():
    arms = [{"discount": "loyalty_points"}, {"discount": "cashback"}]
    truth = _truth(arms)
    loyal = _observable(truth, _customer(45, 50_000, loyalty_points=20_000))
    new = _observable(truth, _customer(45, 50_000, loyalty_points=0))
    assert loyal[0] - loyal[1] > new[0] - new[1] + 0.3


def test_missing_parameters_contribute_nothing():
    truth = _truth([{"channel": "sms"}, {"channel": "sms", "cta": "direct"}])
    customer = _customer(40, 50_000)
    logits = _observable(truth, customer)
    full = _truth([{"channel": "sms", "cta": "direct"}])
    assert logits[1] == pytest.approx(_observable(full, customer)[0])
    assert logits[0] != pytest.approx(logits[1])  # the cta did contribute where it was set


def test_base_rates_are_realistic_for_bank_marketing(small):
    world = World(small, seed=0)
    rates = world.population_arm_rates(days=1)
    assert 0.01 < rates.mean() < 0.05
    assert rates.min() > 0.005 and rates.max() < 0.08


def test_no_heterogeneity_scenario_gives_every_segment_the_same_arm_rates():
    scenario = load_scenario(SCENARIOS / "no_heterogeneity.yaml").model_copy(update={"customers": 30_000})
    rates = World(scenario, seed=0).segment_arm_rates(days=1)
    assert rates.shape == (len(SEGMENTS), 48)
    # Equal up to the sampling noise of the hidden effects within each segment.
    assert np.abs(rates / rates.mean(axis=0) - 1).max() < 0.12
    heterogeneous = World(
        load_scenario(DEFAULT_SCENARIO).model_copy(update={"customers": 30_000}), seed=0
    ).segment_arm_rates(days=1)
    assert len(set(heterogeneous.argmax(axis=1))) > 1


def test_drift_changes_the_response_from_its_day():
    scenario = load_scenario(SCENARIOS / "drift.yaml").model_copy(update={"customers": 2000})
    world = World(scenario, seed=0)
    rows = np.arange(100)
    before, just_before, after = (world.truth.observable_logits(world.features[rows], d) for d in (0, 14, 15))
    np.testing.assert_allclose(before, just_before)
    assert np.abs(after - before).max() > 0.1
    app_push = world.arms.channel == 2  # CHANNELS index of app_push
    assert (after[:, app_push] < before[:, app_push]).all()  # the scenario wears app push out


# -- closed loop --------------------------------------------------------------------------


def test_oracle_has_zero_regret_and_bounds_every_policy(small):
    run = simulate_run(small, ["thompson"], seed=1, days=4)
    oracle = run.expected[run.row("oracle")]
    assert (run.expected <= oracle + 1e-9).all()
    report = run_simulation(small, ["thompson"], [1], days=4)
    assert report.summary("oracle").regret.mean == 0.0
    assert report.summary("oracle").share_of_oracle.mean == 1.0


def test_seeded_runs_are_reproducible(small):
    a = simulate_run(small, ["thompson", "epsilon_greedy"], seed=3, days=3)
    b = simulate_run(small, ["thompson", "epsilon_greedy"], seed=3, days=3)
    np.testing.assert_array_equal(a.expected, b.expected)
    np.testing.assert_array_equal(a.realised, b.realised)
    c = simulate_run(small, ["thompson", "epsilon_greedy"], seed=4, days=3)
    assert not np.array_equal(a.expected, c.expected)


def test_adding_a_policy_changes_no_other_policys_draws(small):
    a = simulate_run(small, ["thompson"], seed=3, days=3)
    b = simulate_run(small, ["ucb", "thompson"], seed=3, days=3)
    np.testing.assert_array_equal(a.expected[a.row("thompson")], b.expected[b.row("thompson")])


def test_a_learning_policy_beats_uniform_on_the_default_scenario(small):
    scenario = small.model_copy(update={"loop": small.loop.model_copy(update={"feedback_lag_days": 1})})
    report = run_simulation(scenario, ["thompson"], [0, 1], days=10, sends_per_day=3000)
    thompson, uniform = report.summary("thompson"), report.summary("uniform")
    assert thompson.final_share_of_oracle.mean > uniform.final_share_of_oracle.mean + 0.05
    assert thompson.lift_vs_uniform.mean > 0.05


def test_static_ab_waits_for_its_feedback_then_commits():
    runner = StaticABRunner(n_arms=3, test_days=2, lag_days=1)
    assert runner.commit_day == 3
    runner.learn(0, np.zeros(4, int), np.array([0, 1, 2, 2]), np.array([0.0, 0.0, 1.0, 1.0]))
    runner.learn(2, np.zeros(4, int), np.array([0, 0, 0, 0]), np.ones(4))  # after the test: ignored
    assert runner.conversions.tolist() == [0.0, 0.0, 2.0]


def test_convergence_measures():
    assert days_to_settle(np.r_[np.linspace(0.5, 0.8, 10), np.full(20, 0.8)], 0.03) == pytest.approx(
        10, abs=2
    )
    assert days_to_settle(np.full(10, 0.7), 0.03) == 0
    assert days_to_stay_above(np.array([1, 3, 1, 3, 3]), np.full(5, 2)) == 3
    assert days_to_stay_above(np.array([1, 1]), np.full(2, 2)) == 2


# -- scenario files -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "no_heterogeneity", "drift"])
def test_shipped_scenarios_load(name):
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    assert scenario.n_arms >= 48


def test_default_scenario_has_48_arms_and_heterogeneity(default):
    assert default.n_arms == 48 and default.response.heterogeneity > 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\narms: {channel: [email, fax]}\n", "arms: channel: unknown value 'fax'"),
        ("name: x\narms: {channel: [email]}\nresponse: {base_rate: 2}\n", "response.base_rate"),
        ("name: x\narms: {channel: [email]}\nloop: {days: 0}\n", "loop.days"),
        ("name: x\narms: {channel: [email]}\nbogus: 1\n", "bogus"),
        ("name: x\narms: {channel: [email\n", "malformed YAML"),
        ("- just a list\n", "expected a mapping"),
    ],
)
def test_bad_scenario_gives_one_line_naming_file_and_field(tmp_path: Path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as exc:
        load_scenario(path)
    assert str(path) in str(exc.value) and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_policy_is_a_user_error(small):
    with pytest.raises(UserError, match="unknown policy 'nope'"):
        simulate_run(small, ["nope"], seed=0, days=1)


def test_bad_policy_params_name_the_policy(small):
    scenario = small.model_copy(
        update={"policies": small.policies.model_copy(update={"params": {"thompson": {"draws": -1}}})}
    )
    with pytest.raises(UserError, match="policies.params.thompson"):
        simulate_run(scenario, ["thompson"], seed=0, days=1)


# -- interaction events -------------------------------------------------------------------


@pytest.fixture(scope="module")
def send_list():
    customers = generate_customers(20_000, seed=11)
    arms = arm_grid(
        {"offer_type": ["credit_card", "savings_account"], "channel": ["email", "sms", "branch"]}
    ).rename(columns={"arm_index": "arm_id"})
    arms["arm_id"] += 500
    rng = np.random.default_rng(0)
    sends = pd.DataFrame(
        {
            "decision_id": [f"d-{i}" for i in range(len(customers))],
            "customer_id": customers["customer_id"],
            "campaign_id": 7,
            "arm_id": rng.choice(arms["arm_id"], len(customers)),
            "treatment_group": np.where(rng.random(len(customers)) < 0.1, "control", "treatment"),
        }
    )
    return sends, customers, arms


def test_interactions_are_deterministic_whatever_the_row_order(send_list):
    sends, customers, arms = send_list
    a = interactions_for_send_list(sends, customers, arms, "2026-11-02", seed=1, lag_days=2)
    b = interactions_for_send_list(sends.sample(frac=1, random_state=3), customers, arms, "2026-11-02", 1, 2)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(EVENT_COLUMNS)
    assert a["event_id"].is_unique
    c = interactions_for_send_list(sends, customers, arms, "2026-11-02", seed=2, lag_days=2)
    assert not a["event_id"].equals(c["event_id"])


def test_interaction_conversions_follow_the_truth_and_the_lag(send_list):
    sends, customers, arms = send_list
    events = interactions_for_send_list(sends, customers, arms, "2026-11-02", seed=4, lag_days=3)
    treated = sends[sends["treatment_group"] == "treatment"]
    # The truth for the same pairs, computed independently of the event code.
    merged = treated.merge(customers, on="customer_id").merge(arms, on="arm_id")
    world = GroundTruth(ResponseSettings(), encode_arms(merged[["offer_type", "channel"]]))
    from pipelines.simulator.population import latent_effects

    level, channel = latent_effects(merged["customer_id"], 0, 0.6, 0.35)
    day = pd.Timestamp("2026-11-02").toordinal()
    p = world.pair_probabilities(response_features(merged), level, channel, np.arange(len(merged)), day)
    conversions = events[
        (events["event_type"] == "conversion") & events["decision_id"].isin(treated["decision_id"])
    ]
    assert 0.01 < p.mean() < 0.06
    assert abs(len(conversions) - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    start = pd.Timestamp("2026-11-02", tz="UTC")
    assert events["occurred_at"].min() >= start
    assert events["occurred_at"].max() < start + pd.Timedelta(days=4)
    assert set(events["event_type"]) == {"impression", "open", "click", "view", "dwell", "conversion"}


def test_control_customers_respond_to_the_arm_they_were_sent(send_list):
    sends, customers, arms = send_list
    events = interactions_for_send_list(sends, customers, arms, "2026-11-02", seed=4, lag_days=3)
    control_ids = set(sends.loc[sends["treatment_group"] == "control", "decision_id"])
    control_events = events[events["decision_id"].isin(control_ids)]
    # The holdout is sent the static default arm: it gets the same funnel as anyone else.
    impressions = control_events[control_events["event_type"] == "impression"]
    assert set(impressions["decision_id"]) == control_ids
    assert {"open", "conversion"} <= set(control_events["event_type"])


def test_interactions_name_missing_inputs(send_list):
    sends, customers, arms = send_list
    with pytest.raises(ValueError, match="customers_df has no row for customer_id"):
        interactions_for_send_list(sends, customers.iloc[:10], arms, "2026-11-02", 1, 2)
    with pytest.raises(ValueError, match="campaign_arms_df has no row for arm_id"):
        interactions_for_send_list(sends, customers, arms.iloc[:1], "2026-11-02", 1, 2)
    with pytest.raises(ValueError, match="missing column 'arm_id'"):
        interactions_for_send_list(sends.drop(columns="arm_id"), customers, arms, "2026-11-02", 1, 2)


def test_interactions_accept_arms_as_params_dicts(send_list):
    sends, customers, arms = send_list
    as_dicts = pd.DataFrame(
        {"arm_id": arms["arm_id"], "params": arms[["offer_type", "channel"]].to_dict("records")}
    )
    a = interactions_for_send_list(sends, customers, arms, "2026-11-02", 1, 2)
    b = interactions_for_send_list(sends, customers, as_dicts, "2026-11-02", 1, 2)
    pd.testing.assert_frame_equal(a, b)
