"""pipelines.performance on worlds small enough to compute every figure by hand.

Campaign `perf` (the world of most tests): arms A = credit_card by email (the default, cost 0.5 a
send) and B = by sms (cost 2.0), conversion value 100, attribution window 7 days. The service's
clock is NOW = 2026-06-30 10:00 UTC, so decisions of 06-22 and before have matured.

    day 06-01  treatment t0..t99: A for t0..t59, B for t60..t99; t0..t24 explored;
               t0..t11 convert on 06-03 (t0..t5 without value -> 100 each, t6..t11 worth 250);
               t12 converts on 06-09 (d + 8: outside its window), t13 only opens
               funnel: t0..t19 open, t0..t14 click, t0..t9 view and dwell 30 s each; t12 also
               clicks on 06-09 (outside); c0 opens, clicks, views, dwells 60 s; p0 opens (pending)
               control c0..c49 on A (c40..c49 decided in real time); c0..c2 convert (no value)
    day 06-25  treatment p0..p9 on A, p0 converts on 06-26 worth 40 (pending: window ends 07-02)
               control q0..q4 on A (pending)
    day 05-01  treatment o0..o4 on A, all convert: before the 30-day window

    treatment: 110 sends, 100 matured, 12 conversions (rate 0.12), revenue 6 x 100 + 6 x 250 + 40
               = 2140, cost 70 x 0.5 + 40 x 2.0 = 115, explored 25
    control:   55 sends, 50 matured, 3 conversions (rate 0.06), revenue 300, cost 27.5
    engagement of matured sends: treatment 20 opened (0.2), 15 clicked (0.15; 0.75 of opens),
               10 viewed (0.1), 300 s dwell (3 per send, 30 per view); control 1/1/1 of 50, 60 s
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from scipy import integrate, stats

from pipelines.errors import NotFound, UserError
from pipelines.performance import (
    PROB_BEST_DRAWS,
    Window,
    campaign_performance,
    learning_statistics,
    lift,
    parameter_performance,
    prob_best,
    resolve_window,
)
from pipelines.realtime.snapshot import Snapshot
from tests.pipelines.perf_world import DAY, LATE, NOW, PERF, seed_perf_world
from tests.pipelines.seed_rows import add_campaign, insert_decisions, insert_events

Z = 1.959963984540054


def wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson's score interval, written out: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = x / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


def figures(
    sends: int,
    matured: int,
    conversions: int,
    explored: int,
    revenue: float,
    cost: float,
    funnel: tuple[int, int, int, float] = (0, 0, 0, 0.0),
) -> dict:
    """A group's figures as campaign_performance gives them (pending and the rates follow);
    ``funnel``: matured decisions opened, clicked, viewed, and their dwell seconds."""
    opens, clicks, views, dwell = funnel

    def share(part: float, whole: int) -> float | None:
        return part / whole if whole else None

    return {"sends": sends, "matured": matured, "pending": sends - matured, "conversions": conversions,
            "conversion_rate": share(conversions, matured), "explored": explored, "revenue": revenue,
            "cost": cost, "opens": opens, "clicks": clicks, "views": views, "dwell_seconds": dwell,
            "open_rate": share(opens, matured), "click_through_rate": share(clicks, matured),
            "click_to_open_rate": share(clicks, opens), "view_rate": share(views, matured),
            "dwell_seconds_per_send": share(dwell, matured),
            "dwell_seconds_per_view": share(dwell, views)}  # fmt: skip


def newcombe(x1: int, n1: int, x0: int, n0: int) -> tuple[float, float]:
    """Newcombe's interval of p1 - p0, written out: d -/+ sqrt of the squared Wilson arms."""
    p1, p0 = x1 / n1, x0 / n0
    (l1, u1), (l0, u0) = wilson(x1, n1), wilson(x0, n0)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def assert_lift_of_12_100_against_3_50(out: dict) -> None:
    """12/100 against 3/50: lift 0.06; Wilson 12/100 = (0.06999, 0.19812), 3/50 = (0.02061, 0.16217);
    Newcombe: 0.06 - sqrt((0.12 - 0.06999)² + (0.16217 - 0.06)²) = -0.05375,
              0.06 + sqrt((0.19812 - 0.12)² + (0.06 - 0.02061)²) = 0.14749."""
    assert wilson(12, 100) + wilson(3, 50) == pytest.approx(
        (0.069994, 0.198121, 0.020615, 0.162171), abs=1e-6
    )
    assert out["absolute"] == pytest.approx(0.06) and out["relative"] == pytest.approx(1.0)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(newcombe(12, 100, 3, 50))
    assert (out["ci_low"], out["ci_high"]) == pytest.approx((-0.053752, 0.147488), abs=1e-6)
    assert out["method"] == "newcombe_wilson" and out["reason"] is None


# -- lift ------------------------------------------------------------------------------------
def test_lift_is_the_rate_difference_with_newcombes_interval() -> None:
    assert_lift_of_12_100_against_3_50(lift(12, 100, 3, 50))


def test_no_conversions_still_give_an_interval_and_an_empty_group_gives_a_reason() -> None:
    """0/20 against 0/20: the normal approximation's interval is [0, 0]; Newcombe's is ± the
    Wilson upper bound z² / (n + z²) = 0.16113."""
    none = lift(0, 20, 0, 20)
    assert none["absolute"] == 0 and none["relative"] is None
    assert none["ci_high"] == pytest.approx(Z * Z / (20 + Z * Z)) and none["ci_low"] == -none["ci_high"]
    empty = lift(3, 10, 0, 0)
    assert empty["absolute"] is None and empty["ci_low"] is None
    assert empty["reason"] == "no matured control decision in the window"
    assert lift(0, 0, 0, 0)["reason"] == "no matured treatment or control decision in the window"


# -- window ----------------------------------------------------------------------------------
def test_the_window_defaults_to_the_last_30_days_and_names_a_bad_parameter() -> None:
    today = date(2026, 6, 30)
    assert resolve_window(today, None, None, None) == Window(date(2026, 6, 1), today)
    assert resolve_window(today, None, date(2026, 6, 10), 3) == Window(date(2026, 6, 8), date(2026, 6, 10))
    assert resolve_window(today, date(2026, 6, 29), None, None).days == 2
    bad = {
        "days: give since or days, not both": (date(2026, 6, 1), None, 3),
        "since: 2026-06-11 is after until (2026-06-10)": (date(2026, 6, 11), date(2026, 6, 10), None),
        "days: must be between 1 and 3660, got 0": (None, None, 0),
        "until: 0001-01-05 leaves no room for 30 days before it": (None, date(1, 1, 5), None),
        "since: the window may span at most 3660 days, got 3661": (date(2016, 6, 22), None, None),
    }
    for message, (since, until, days) in bad.items():
        with pytest.raises(UserError) as err:
            resolve_window(today, since, until, days)
        assert str(err.value) == message


# -- probability of being best ---------------------------------------------------------------
def test_prob_best_matches_the_exact_integral_and_is_deterministic() -> None:
    """P(Beta(13, 89) > Beta(4, 48)) = integral of f_A(x) F_B(x) dx, by quadrature."""
    alpha, beta = np.array([13.0, 4.0]), np.array([89.0, 48.0])
    exact, _ = integrate.quad(lambda x: stats.beta.pdf(x, 13, 89) * stats.beta.cdf(x, 4, 48), 0, 1)
    best = prob_best(alpha, beta)
    assert best[0] == pytest.approx(exact, abs=3 * 0.5 / math.sqrt(PROB_BEST_DRAWS))
    assert best.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(best, prob_best(alpha, beta))  # same posteriors, same answer
    same = prob_best(np.array([2.0, 2.0, 2.0]), np.array([5.0, 5.0, 5.0]))
    np.testing.assert_allclose(same, 1 / 3, atol=0.015)
    assert prob_best(np.array([1.0]), np.array([1.0])).tolist() == [1.0]


# -- campaign performance on the database ----------------------------------------------------
@pytest.fixture(scope="module")
def perf(engine: sa.Engine):
    return seed_perf_world(engine)


def test_performance_of_the_default_window_matches_the_hand_count(engine: sa.Engine, perf) -> None:
    window = resolve_window(NOW.date(), None, None, None)
    out = campaign_performance(engine, perf, window, now=NOW)
    assert out["window"] == {"since": DAY, "until": NOW.date(), "days": 30}
    assert out["matured_through"] == date(2026, 6, 22)
    assert out["treatment"] == figures(
        110, 100, conversions=12, explored=25, revenue=2140, cost=115, funnel=(20, 15, 10, 300.0)
    )
    assert out["control"] == figures(
        55, 50, conversions=3, explored=0, revenue=300, cost=27.5, funnel=(1, 1, 1, 60.0)
    )
    assert out["treatment"]["click_to_open_rate"] == 0.75 and out["treatment"]["dwell_seconds_per_view"] == 30
    assert out["control"]["dwell_seconds_per_send"] == pytest.approx(1.2)
    assert_lift_of_12_100_against_3_50(out["lift"])
    assert out["exploration_share"] == pytest.approx(25 / 110)
    assert (out["revenue"], out["cost"]) == (2440.0, 142.5)
    assert out["roi"] == pytest.approx((2440 - 142.5) / 142.5)
    assert out["pending"] == 15
    assert set(out["regret"]) == {"estimate", "reason"}  # its figures: the mart test below


def test_a_window_of_one_day_and_maturity_by_the_clock(engine: sa.Engine, perf) -> None:
    """Only 06-25's 15 decisions; on 07-03 their window (ends 07-02) is over: p0's conversion counts."""
    window = Window(LATE, LATE)
    early = campaign_performance(engine, perf, window, now=NOW)["treatment"]
    assert (early["conversions"], early["opens"], early["open_rate"]) == (0, 0, None)  # p0 opened: pending
    later = campaign_performance(engine, perf, window, now=datetime(2026, 7, 3, tzinfo=UTC))
    assert later["treatment"] == figures(
        10, 10, conversions=1, explored=0, revenue=40, cost=5, funnel=(1, 0, 0, 0.0)
    )
    assert later["control"]["matured"] == 5 and later["lift"]["absolute"] == pytest.approx(0.1)
    on_the_last_day = campaign_performance(engine, perf, window, now=datetime(2026, 7, 2, 23, tzinfo=UTC))
    assert on_the_last_day["pending"] == 15
    nothing = campaign_performance(engine, perf, Window(date(2026, 1, 1), date(2026, 1, 31)), now=NOW)
    assert nothing["treatment"]["sends"] == 0 and nothing["exploration_share"] is None
    assert nothing["roi"] is None and nothing["lift"]["reason"].startswith("no matured treatment")


# -- posteriors per arm and parameter value --------------------------------------------------
PRIORED = {
    "name": "priored",
    "start_date": "2026-04-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
    "policy": {"name": "thompson", "params": {"prior_alpha": 1.0, "prior_beta": 9.0}},
}


def test_posteriors_per_arm_and_value_use_the_policys_prior(engine: sa.Engine, perf) -> None:
    """Arms (credit_card, email) 40 matured / 8 rewards, (credit_card, sms) 20 / 2, (loan, email)
    10 / 0, (loan, sms) none; prior Beta(1, 9). Means 9/50, 3/30, 1/20, 1/10; channel=email sums
    50 / 8 -> 9/60, sms 20 / 2 -> 3/30; offer credit_card 60 / 10 -> 11/70, loan 10 / 0 -> 1/20."""
    campaign = add_campaign(engine, PRIORED)
    pulls, rewards = np.zeros((9, 4)), np.zeros((9, 4))
    pulls[0], rewards[0] = [30, 20, 10, 0], [6, 2, 0, 0]
    pulls[4, 0], rewards[4, 0] = 10, 2  # another segment of the first arm: summed
    insert_decisions(
        engine,
        [{"decision_id": f"pr{i}", "campaign_id": campaign.campaign_id, "customer_id": f"pr{i}",
          "arm_id": campaign.arm_ids[i % 2], "decision_date": DAY} for i in range(7)],
    )  # fmt: skip
    out = parameter_performance(engine, campaign, pulls, rewards, {"source": "marts"})
    assert out["prior"] == {"alpha": 1.0, "beta": 9.0} and out["statistics"] == {"source": "marts"}
    arms = out["arms"]
    assert [a["parameters"] for a in arms] == campaign.arm_params
    assert [a["arm_key"] for a in arms][:2] == [
        "offer_type=credit_card|channel=email",
        "offer_type=credit_card|channel=sms",
    ]
    assert [a["sends"] for a in arms] == [4, 3, 0, 0]
    assert [(a["matured"], a["rewards"]) for a in arms] == [(40, 8), (20, 2), (10, 0), (0, 0)]
    assert [a["posterior_mean"] for a in arms] == pytest.approx([9 / 50, 3 / 30, 1 / 20, 1 / 10])
    first = arms[0]
    assert (first["posterior_alpha"], first["posterior_beta"]) == (9.0, 41.0)
    assert stats.beta.cdf(first["ci_low"], 9, 41) == pytest.approx(0.025)
    assert stats.beta.cdf(first["ci_high"], 9, 41) == pytest.approx(0.975)
    assert sum(a["prob_best"] for a in arms) == pytest.approx(1.0)
    assert max(arms, key=lambda a: a["prob_best"])["arm_id"] == campaign.arm_ids[0]
    values = {(v["parameter"], v["value"]): v for v in out["parameters"]}
    assert list(values) == [
        ("offer_type", "credit_card"),
        ("offer_type", "loan"),
        ("channel", "email"),
        ("channel", "sms"),
    ]
    expected = {("channel", "email"): 9 / 60, ("channel", "sms"): 3 / 30,
                ("offer_type", "credit_card"): 11 / 70, ("offer_type", "loan"): 1 / 20}  # fmt: skip
    for key, mean in expected.items():
        assert values[key]["posterior_mean"] == pytest.approx(mean), key
        assert values[key]["arms"] == 2
    assert values[("channel", "email")]["sends"] == 4 and values[("channel", "sms")]["sends"] == 3
    email, sms = values[("channel", "email")], values[("channel", "sms")]
    assert email["prob_best"] + sms["prob_best"] == pytest.approx(1.0)
    exact, _ = integrate.quad(lambda x: stats.beta.pdf(x, 9, 51) * stats.beta.cdf(x, 3, 27), 0, 1)
    assert email["prob_best"] == pytest.approx(exact, abs=0.011)
    assert parameter_performance(engine, campaign, pulls, rewards, {}) == out | {"statistics": {}}


def test_statistics_come_from_the_snapshot_else_the_marts(engine: sa.Engine, perf) -> None:
    snapshot = Snapshot.load(engine, now=NOW)  # perf is active on NOW's day
    campaign, pulls, rewards, source = learning_statistics(engine, perf.campaign_id, snapshot, NOW)
    assert campaign.campaign_id == perf.campaign_id and source["source"] == "service_snapshot"
    assert source["refreshed_at"] == NOW and source["realtime_matured_through"] == date(2026, 6, 22)
    np.testing.assert_array_equal(pulls, snapshot.stats(perf.campaign_id)[0])
    # c40..c49 are real time and matured (06-01): the snapshot folded them, none converted
    assert pulls.sum() - _mart_pulls(engine, perf) == 10 and rewards.sum() - _mart_rewards(engine, perf) == 0
    campaign, *_, source = learning_statistics(engine, perf.campaign_id, None, None)
    assert source["source"] == "marts" and source["realtime_matured_through"] is None
    with pytest.raises(NotFound, match="unknown campaign id 9999"):
        learning_statistics(engine, 9999, snapshot, NOW)


def _mart_pulls(engine: sa.Engine, campaign) -> float:
    return learning_statistics(engine, campaign.campaign_id, None, None)[1].sum()


def _mart_rewards(engine: sa.Engine, campaign) -> float:
    return learning_statistics(engine, campaign.campaign_id, None, None)[2].sum()


def test_a_30_minute_window_attributes_and_matures_by_timestamp(engine: sa.Engine, perf) -> None:
    """Decided at 06:00 with a 30m window: m0 converts at 06:20 (counts), m1 at 06:40 (outside),
    m2 never; pending until 06:30, then 3 matured with 1 conversion."""
    campaign = add_campaign(engine, PERF | {"name": "perf-30m", "attribution_window_days": None,
                                            "attribution_window": "30m"})  # fmt: skip
    arm = campaign.arm_ids[0]
    insert_decisions(engine, [{"decision_id": f"m{i}", "campaign_id": campaign.campaign_id,
                               "customer_id": f"cu-m{i}", "arm_id": arm, "decision_date": DAY}
                              for i in range(3)])  # fmt: skip
    at = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    insert_events(engine, [("m0", "conversion", 0, at + timedelta(hours=6, minutes=20)),
                           ("m1", "conversion", 0, at + timedelta(hours=6, minutes=40))])  # fmt: skip
    window = Window(DAY, DAY)
    early = campaign_performance(engine, campaign, window, now=at + timedelta(hours=6, minutes=29))
    assert (early["treatment"]["matured"], early["pending"]) == (0, 3)
    late = campaign_performance(engine, campaign, window, now=at + timedelta(hours=6, minutes=30))
    assert late["treatment"] == figures(3, 3, conversions=1, explored=0, revenue=100, cost=1.5)
