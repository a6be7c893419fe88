"""A 1-minute attribution window with a default reward, end to end on the real-time engine:
events marked by timestamp, the snapshot folding by decision time (each decision once, at the
instant its window closes), and the marts counting exactly the same, hand-over included.

World: 40 customers in the `customer_features` mart (dbt as of D), email consent, and campaign
`rt-minute` (thompson, conversion reward, ``attribution_window: 1m``, ``default_reward: 0.5``).
Decisions at NOW = D 10:00 (m0..m4), at NOW + 30 s (m5), at D 23:59:30 (late) and at
D+1 23:59:30 (next_day). Rewards by hand: m0 converts inside (1), m1 at the closing instant (1),
m2 one second after it (no attributed event: 0.5), m3 only opens (an event: 0), m4 nothing (0.5),
m5 converts (1), late converts (1), next_day nothing (0.5).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.campaign_store import Campaign
from pipelines.decide import segment_stats
from pipelines.domain import SEGMENTS
from pipelines.realtime.feedback import FeedbackEvent, record_events
from pipelines.realtime.optimize import RealtimeDecision, decide_one
from pipelines.realtime.snapshot import Snapshot
from pipelines.transform import run_dbt
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_consents,
    insert_customers,
    noon,
    random_customers,
    truncate_all,
)

pytestmark = pytest.mark.slow

D = date(2026, 7, 6)
NOW = datetime.combine(D, time(10), tzinfo=UTC)
LATE = datetime.combine(D, time(23, 59, 30), tzinfo=UTC)
NEXT_DAY = LATE + timedelta(days=1)
MINUTE = {
    "name": "rt-minute",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["credit_card", "loan", "savings_account", "investment_product"]},
    "holdout_share": 0.0,
    "attribution_window": "1m",
    "default_reward": 0.5,
    "frequency_caps": {"max_per_week": 100, "min_days_between": 0},
}
# decision -> (decided at, reward by hand)
PLAN = {
    "m0": (NOW, 1.0),
    "m1": (NOW, 1.0),
    "m2": (NOW, 0.5),
    "m3": (NOW, 0.0),
    "m4": (NOW, 0.5),
    "m5": (NOW + timedelta(seconds=30), 1.0),
    "late": (LATE, 1.0),
    "next_day": (NEXT_DAY, 0.5),
}


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> tuple[Campaign, dict[str, RealtimeDecision], dict[str, bool]]:
    truncate_all(engine)
    customers = random_customers(40, seed=7, prefix="m")
    insert_customers(engine, customers, date(2026, 6, 1))
    insert_consents(engine, [(c["customer_id"], "email", noon(date(2026, 5, 1)), True) for c in customers])
    campaign = add_campaign(engine, MINUTE)
    run_dbt(D)
    snapshot = Snapshot.load(engine, now=NOW)
    decisions = {
        name: decide_one(engine, snapshot, campaign.campaign_id, f"m{i:04d}", idempotency_key=name, now=at)
        for i, (name, (at, _)) in enumerate(PLAN.items())
    }
    events = [
        ("e-m0", "m0", "conversion", NOW + timedelta(seconds=30)),
        ("e-m1", "m1", "conversion", NOW + timedelta(seconds=60)),  # the closing instant: inside
        ("e-m2", "m2", "conversion", NOW + timedelta(seconds=61)),  # a second late: outside
        ("e-m3-before", "m3", "open", NOW - timedelta(seconds=1)),  # before the decision: outside
        ("e-m3", "m3", "open", NOW + timedelta(seconds=10)),
        ("e-m5", "m5", "conversion", NOW + timedelta(seconds=45)),
        ("e-late", "late", "conversion", LATE + timedelta(seconds=20)),
    ]
    outside = {}
    for event_id, name, kind, at in events:  # each sent when it happened
        event = FeedbackEvent(event_id, decisions[name].decision_id, kind, at)
        (result,) = record_events(engine, [event], now=at + timedelta(seconds=2))
        assert result.status == "stored", result
        outside[event_id] = result.outside_window
    return campaign, decisions, outside


def _expected(engine: sa.Engine, campaign: Campaign, decisions, names) -> tuple[np.ndarray, np.ndarray]:
    """(pulls, rewards) of the named decisions, by hand from PLAN, in their recorded cells."""
    pulls = np.zeros((len(SEGMENTS), len(campaign.arm_ids)))
    rewards = np.zeros_like(pulls)
    with engine.connect() as conn:
        for name in names:
            segment = conn.execute(
                sa.text("select segment from ops.decisions where decision_id = :d"),
                {"d": decisions[name].decision_id},
            ).scalar()
            cell = (SEGMENTS.index(segment), campaign.arm_ids.index(decisions[name].arm_id))
            pulls[cell] += 1
            rewards[cell] += PLAN[name][1]
    return pulls, rewards


def test_events_are_marked_outside_the_window_by_timestamp(world) -> None:
    _, _, outside = world
    assert outside == {
        "e-m0": False,
        "e-m1": False,
        "e-m2": True,
        "e-m3-before": True,  # the same UTC day, but before decided_at
        "e-m3": False,
        "e-m5": False,
        "e-late": False,
    }


def test_the_snapshot_folds_each_decision_once_when_its_minute_is_over(engine: sa.Engine, world) -> None:
    campaign, decisions, _ = world
    snapshot = Snapshot.load(engine, now=NOW)
    c = campaign.campaign_id
    zero = np.zeros((len(SEGMENTS), len(campaign.arm_ids)))
    assert snapshot.refresh(engine, now=NOW + timedelta(seconds=59.9)) is snapshot
    np.testing.assert_array_equal(snapshot.stats(c)[0], zero)  # every window still open

    assert snapshot.refresh(engine, now=NOW + timedelta(seconds=60)) is snapshot  # m0..m4 close
    first = ("m0", "m1", "m2", "m3", "m4")
    pulls, rewards = snapshot.stats(c)
    expected_pulls, expected_rewards = _expected(engine, campaign, decisions, first)
    np.testing.assert_array_equal(pulls, expected_pulls)
    np.testing.assert_array_equal(rewards, expected_rewards)
    assert (pulls.sum(), rewards.sum()) == (5, 3.0)  # 1 + 1 + 0.5 (default) + 0 + 0.5 (default)

    snapshot.refresh(engine, now=NOW + timedelta(seconds=62))  # folded once, not again
    np.testing.assert_array_equal(snapshot.stats(c)[0], expected_pulls)
    snapshot.refresh(engine, now=NOW + timedelta(seconds=90))  # m5 closes
    pulls, rewards = snapshot.stats(c)
    expected_pulls, expected_rewards = _expected(engine, campaign, decisions, (*first, "m5"))
    np.testing.assert_array_equal(pulls, expected_pulls)
    np.testing.assert_array_equal(rewards, expected_rewards)


def test_the_marts_count_what_the_snapshot_folded_and_hand_over_without_double_counting(
    engine: sa.Engine, world
) -> None:
    campaign, decisions, _ = world
    c = campaign.campaign_id
    after_late = LATE + timedelta(seconds=61)  # D+1 00:00:31: late has matured, next_day not yet
    snapshot = Snapshot.load(engine, now=after_late)
    folded = snapshot.stats(c)
    same_day = ("m0", "m1", "m2", "m3", "m4", "m5", "late")
    expected = _expected(engine, campaign, decisions, same_day)
    np.testing.assert_array_equal(folded[0], expected[0])
    np.testing.assert_array_equal(folded[1], expected[1])

    # The marts as of D+1 count D's decisions (all matured by D+1's end), default rewards
    # included, and not next_day's (made on D+1: it enters the marts of D+2).
    run_dbt(D + timedelta(days=1))
    with engine.connect() as conn:
        mart = segment_stats(conn, campaign)
        matured, reward_sum = conn.execute(
            sa.text("select sum(matured), sum(reward_sum) from analytics.arm_stats where campaign_id = :c"),
            {"c": c},
        ).one()
    np.testing.assert_array_equal(mart[0], folded[0])
    np.testing.assert_array_equal(mart[1], folded[1])
    assert (matured, reward_sum) == (7, 5.0)

    # A worker loading from those marts after next_day's minute: late matured after the mart's
    # day began but is the mart's (decided on D); next_day is folded, with the default reward.
    reloaded = Snapshot.load(engine, now=NEXT_DAY + timedelta(seconds=61), marts_as_of=D + timedelta(days=1))
    expected = _expected(engine, campaign, decisions, (*same_day, "next_day"))
    np.testing.assert_array_equal(reloaded.stats(c)[0], expected[0])
    np.testing.assert_array_equal(reloaded.stats(c)[1], expected[1])
