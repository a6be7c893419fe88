"""The real-time service decides a capacity campaign with the day's prices (the batch's stored
duals) and counts the day's sends, batch and real time, against what is left (issue 12, part 3).

World: 12 customers with email and SMS consent; campaign `rt-priced` (credit_card/loan x
email/sms, no holdout, exploration 0 so every choice is the priced argmax with propensity 1),
hand-written statistics: SMS converts at 0.5, email at 0.1 in every segment, credit_card a little
above loan. Value per conversion 100, SMS costs 0.05, email 0.01: SMS is worth 50 - 0.05 against
10 - 0.01 for email, a gap of 39.96 that a price of 50 per SMS send overturns.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.allocation import allocation_for
from pipelines.allocation_day import store_prices
from pipelines.campaign_store import Campaign
from pipelines.domain import SEGMENTS
from pipelines.realtime.optimize import NotEligible, decide_one
from pipelines.realtime.snapshot import Snapshot
from pipelines.transform import run_dbt
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_consents,
    insert_customers,
    insert_decisions,
    noon,
    random_customers,
    replace_segment_arm_stats,
    truncate_all,
)

pytestmark = pytest.mark.slow

D = date(2026, 6, 15)
NOW = datetime.combine(D, time(10), tzinfo=UTC)
PRICED = {
    "name": "rt-priced",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
    "channel_costs": {"email": 0.01, "sms": 0.05},
    "reward": {"conversion_value": 100.0},
    "holdout_share": 0.0,
    "frequency_caps": {"max_per_week": 100, "min_days_between": 0},
    "objective": {"kind": "expected_value", "exploration": 0.0},
    "capacities": [{"where": {"channel": "sms"}, "max_sends": 3}],
}


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> tuple[Campaign, list[str]]:
    truncate_all(engine)
    customers = random_customers(12, seed=5, prefix="cap")
    insert_customers(engine, customers, date(2026, 6, 1))
    consented = noon(date(2026, 5, 1))
    insert_consents(
        engine, [(c["customer_id"], ch, consented, True) for c in customers for ch in ("email", "sms")]
    )
    campaign = add_campaign(engine, PRICED)
    run_dbt(D)
    rate = {"email": 0.1, "sms": 0.5}
    rows = [
        {
            "c": campaign.campaign_id,
            "s": segment,
            "a": arm_id,
            "m": 10_000,
            "r": 10_000 * (rate[p["channel"]] + (0.01 if p["offer_type"] == "credit_card" else 0.0)),
        }
        for segment in SEGMENTS
        for arm_id, p in zip(campaign.arm_ids, campaign.arm_params, strict=True)
    ]
    replace_segment_arm_stats(engine, rows)
    return campaign, sorted(c["customer_id"] for c in customers)


@pytest.fixture(autouse=True)
def _no_decisions(engine: sa.Engine, world: tuple[Campaign, list[str]]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("delete from ops.decisions"))
        conn.execute(sa.text("delete from ops.day_prices"))


def _arm(campaign: Campaign, arm_id: int) -> str:
    return (
        campaign.arm_params[campaign.arm_ids.index(arm_id)]["channel"]
        + "/"
        + str(campaign.arm_params[campaign.arm_ids.index(arm_id)]["offer_type"])
    )


def _prices(engine: sa.Engine, campaign: Campaign, price: float) -> None:
    alloc = allocation_for(campaign.spec, campaign.arm_params)
    assert alloc is not None
    store_prices(engine, campaign, D, alloc.with_prices(np.array([price]), np.array([1.0])), 100, 12.0)


def test_the_day_s_remaining_capacity_is_counted_batch_and_real_time(
    engine: sa.Engine, world: tuple[Campaign, list[str]]
) -> None:
    campaign, customers = world
    _prices(engine, campaign, 0.0)  # the batch found no binding capacity: only the count limits
    sms_loan = campaign.arm_ids[
        [p == {"offer_type": "loan", "channel": "sms"} for p in campaign.arm_params].index(True)
    ]
    # The batch list of the day already sent one SMS: 2 of the 3 slots are left.
    insert_decisions(
        engine,
        [
            {
                "decision_id": "b-1",
                "campaign_id": campaign.campaign_id,
                "customer_id": customers[-1],
                "arm_id": sms_loan,
                "decision_date": D,
            }
        ],
    )
    snapshot = Snapshot.load(engine, now=NOW)
    got = [
        decide_one(engine, snapshot, campaign.campaign_id, c, idempotency_key=f"k-{c}", now=NOW)
        for c in customers[:5]
    ]
    assert [_arm(campaign, d.arm_id) for d in got] == ["sms/credit_card"] * 2 + ["email/credit_card"] * 3
    assert all(d.propensity == 1.0 and d.selected_by == "priced" for d in got)
    # A retry of a key replays its decision and takes no further slot.
    again = decide_one(
        engine, snapshot, campaign.campaign_id, customers[0], idempotency_key=f"k-{customers[0]}", now=NOW
    )
    assert again.arm_id == got[0].arm_id


def test_the_day_s_prices_steer_real_time_away_from_a_priced_arm(
    engine: sa.Engine, world: tuple[Campaign, list[str]]
) -> None:
    campaign, customers = world
    _prices(engine, campaign, 50.0)  # 50 a send > the 39.96 SMS is worth over email
    snapshot = Snapshot.load(engine, now=NOW)
    d = decide_one(engine, snapshot, campaign.campaign_id, customers[0], now=NOW)
    assert _arm(campaign, d.arm_id) == "email/credit_card" and d.propensity == 1.0
    _prices(engine, campaign, 39.0)  # below the gap: SMS again
    d = decide_one(engine, snapshot, campaign.campaign_id, customers[1], now=NOW)
    assert _arm(campaign, d.arm_id) == "sms/credit_card"


def test_a_customer_with_only_exhausted_arms_is_not_eligible(
    engine: sa.Engine, world: tuple[Campaign, list[str]]
) -> None:
    campaign, customers = world
    _prices(engine, campaign, 0.0)
    snapshot = Snapshot.load(engine, now=NOW)
    for c in customers[:3]:
        decide_one(engine, snapshot, campaign.campaign_id, c, now=NOW)
    with pytest.raises(NotEligible, match="the day's capacities leave no arm for this customer"):
        decide_one(engine, snapshot, campaign.campaign_id, customers[3], channels=["sms"], now=NOW)
