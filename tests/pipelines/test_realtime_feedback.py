"""Real-time feedback lands once per event_id whatever the retries and races, and matured
feedback moves the snapshot's statistics by exactly what the marts count.

World: 40 customers in the `customer_features` mart (dbt as of D), email consent, and campaign
`rt-learn` (thompson, conversion reward, a 1-day attribution window, no holdout, loose caps).
12 real-time decisions on D; their window covers the UTC days D and D + 1, so they mature at
D + 2, 00:00 UTC.
"""

from __future__ import annotations

import threading
from collections import Counter
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
MATURES = datetime.combine(D + timedelta(days=2), time(0), tzinfo=UTC)
LEARN = {
    "name": "rt-learn",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["credit_card", "loan", "savings_account", "investment_product"]},
    "holdout_share": 0.0,
    "attribution_window_days": 1,
    "frequency_caps": {"max_per_week": 100, "min_days_between": 0},
}


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> tuple[Campaign, list[RealtimeDecision]]:
    truncate_all(engine)
    customers = random_customers(40, seed=5, prefix="f")
    insert_customers(engine, customers, date(2026, 6, 1))
    insert_consents(engine, [(c["customer_id"], "email", noon(date(2026, 5, 1)), True) for c in customers])
    campaign = add_campaign(engine, LEARN)
    run_dbt(D)
    snapshot = Snapshot.load(engine, now=NOW)
    decisions = [
        decide_one(engine, snapshot, campaign.campaign_id, f"f{i:04d}", idempotency_key=f"w-{i}", now=NOW)
        for i in range(12)
    ]
    return campaign, decisions


def _event(event_id: str, decision: RealtimeDecision, kind: str, at: datetime, value: float | None = None):
    return FeedbackEvent(event_id, decision.decision_id, kind, at, value)


def test_concurrent_senders_with_overlapping_ids_land_each_event_once(
    engine: sa.Engine, world: tuple[Campaign, list[RealtimeDecision]]
) -> None:
    _, decisions = world
    at = NOW + timedelta(minutes=1)
    barrier = threading.Barrier(8)
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def send(t: int) -> None:
        batch = [_event(f"imp-{j}", decisions[j % 12], "impression", at) for j in range(t * 5, t * 5 + 20)]
        barrier.wait()
        results = record_events(engine, batch, now=at)
        with lock:
            statuses.update(r.status for r in results)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # ids imp-0 .. imp-54: 55 distinct among 8 x 20 sent.
    assert statuses == {"stored": 55, "duplicate": 160 - 55}
    with engine.connect() as conn:
        n, sources = conn.execute(
            sa.text(
                "select count(*), array_agg(distinct source) from raw.interactions "
                "where event_id like 'imp-%'"
            )
        ).one()
    assert n == 55 and sources == ["realtime"]


def test_conflict_unknown_decision_invalid_and_outside_window(
    engine: sa.Engine, world: tuple[Campaign, list[RealtimeDecision]]
) -> None:
    _, decisions = world
    at = NOW + timedelta(minutes=2)
    first = record_events(engine, [_event("c-1", decisions[11], "open", at)], now=at)
    assert [r.status for r in first] == ["stored"]
    results = record_events(
        engine,
        [
            _event("c-1", decisions[11], "click", at),  # same id, other content
            FeedbackEvent("c-2", "no-such-decision", "open", at),
            FeedbackEvent("c-3", decisions[11].decision_id, "purchase", at),
            _event("c-4", decisions[11], "open", at - timedelta(days=1)),  # the day before the decision
            _event("c-1", decisions[11], "open", at),  # a retry: the same content
            _event("c-5", decisions[11], "conversion", at, value=-3.0),
            FeedbackEvent("c-6\ud800", decisions[11].decision_id, "open", at),  # JSON "\ud800": not text
        ],
        now=at,
    )
    assert [r.status for r in results] == [
        "conflict",
        "unknown_decision",
        "invalid",
        "stored",
        "duplicate",
        "invalid",
        "invalid",
    ]
    assert results[0].message == (
        "event c-1 was already stored from realtime:feedback with other content: "
        "event_type open there, click here"
    )
    assert results[1].message == "event c-2: unknown decision_id no-such-decision"
    assert "event_type 'purchase' is not one of" in results[2].message
    assert results[3].outside_window and not results[4].outside_window
    assert "value: must be between 0" in results[5].message
    assert results[6].message == "event_id: holds a lone surrogate (U+D800), which is not text"
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select event_id, event_type, outside_window from raw.interactions "
                "where event_id like 'c-%' order by 1"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("c-1", "open", False), ("c-4", "open", True)]


def test_matured_feedback_moves_the_snapshot_by_the_hand_counted_rewards(
    engine: sa.Engine, world: tuple[Campaign, list[RealtimeDecision]]
) -> None:
    campaign, decisions = world
    snapshot = Snapshot.load(engine, now=NOW)
    before = snapshot.stats(campaign.campaign_id)
    day1 = datetime.combine(D + timedelta(days=1), time(23), tzinfo=UTC)
    late = datetime.combine(D + timedelta(days=2), time(1), tzinfo=UTC)
    events = [_event(f"conv-{i}", decisions[i], "conversion", NOW + timedelta(hours=2)) for i in range(4)]
    events += [
        _event("conv-4", decisions[4], "conversion", day1),  # the window's last day: counts
        _event("conv-5", decisions[5], "conversion", late),  # after the window: stored, not learned
        _event("click-6", decisions[6], "click", NOW + timedelta(hours=3)),  # no conversion: reward 0
        _event("conv-7", decisions[7], "conversion", NOW + timedelta(hours=4), value=250.0),
    ]
    for event in events:  # each sent when it happened (its logical date is the day received)
        record_events(engine, [event], now=event.occurred_at + timedelta(seconds=5))
    record_events(engine, [events[-1]], now=day1)  # a retry of conv-7 changes nothing

    segment_of = {}
    with engine.connect() as conn:
        for d in decisions:
            segment_of[d.decision_id] = conn.execute(
                sa.text("select segment from ops.decisions where decision_id = :d"), {"d": d.decision_id}
            ).scalar()
    expected_pulls = np.zeros_like(before[0])
    expected_rewards = np.zeros_like(before[1])
    for i, d in enumerate(decisions):
        cell = (SEGMENTS.index(segment_of[d.decision_id]), campaign.arm_ids.index(d.arm_id))
        expected_pulls[cell] += 1
        expected_rewards[cell] += 1 if i in (0, 1, 2, 3, 4, 7) else 0  # by hand: the converted ones

    # The window is open until D + 2 00:00 UTC: nothing matured a second before.
    assert snapshot.refresh(engine, now=MATURES - timedelta(seconds=1)) is snapshot
    np.testing.assert_array_equal(snapshot.stats(campaign.campaign_id)[0], before[0])
    assert snapshot.refresh(engine, now=MATURES + timedelta(seconds=1)) is snapshot
    pulls, rewards = snapshot.stats(campaign.campaign_id)
    np.testing.assert_array_equal(pulls - before[0], expected_pulls)
    np.testing.assert_array_equal(rewards - before[1], expected_rewards)
    assert expected_pulls.sum() == 12 and expected_rewards.sum() == 6
    assert snapshot.refresh(engine, now=MATURES + timedelta(seconds=9)) is snapshot  # folded once
    np.testing.assert_array_equal(snapshot.stats(campaign.campaign_id)[0], pulls)

    # The marts built as of D + 2 count the same (both paths land in raw.interactions).
    run_dbt(D + timedelta(days=2))
    with engine.connect() as conn:
        mart_pulls, mart_rewards = segment_stats(conn, campaign)
    np.testing.assert_array_equal(mart_pulls, pulls)
    np.testing.assert_array_equal(mart_rewards, rewards)
    # A worker loading from those marts folds nothing twice.
    reloaded = Snapshot.load(engine, now=MATURES + timedelta(seconds=10), marts_as_of=D + timedelta(days=2))
    np.testing.assert_array_equal(reloaded.stats(campaign.campaign_id)[0], pulls)
