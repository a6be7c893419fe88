"""The real-time eligibility query (one round trip) gives the batch audience's answers, customer by
customer, around every boundary: each subset of sends on the days around the 7-day window and the
minimum gap, the audience's age and income limits, suppressions, and the latest consent.

Campaign `elig`: email and sms arms, caps max_per_week=2 and min_days_between=2, ages 30-60,
income >= 40,000. The batch decides D counting sends before D; real time on D with `now` at the end
of D (the batch's consent cut-off) and no send on D itself decides the same, except for a send on D,
which real time counts too (the last case).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import combinations

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.audience import eligible_audience
from pipelines.campaign_store import Campaign
from pipelines.realtime.optimize import NotEligible, eligible_customer
from pipelines.transform import run_dbt
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_consents,
    insert_customers,
    insert_decisions,
    noon,
    truncate_all,
)

pytestmark = pytest.mark.slow

D = date(2026, 6, 15)
END_OF_D = datetime.combine(D + timedelta(days=1), time(0), tzinfo=UTC)
SNAPSHOT = date(2026, 6, 1)
CONSENTED = noon(date(2026, 5, 1))
ELIG = {
    "name": "elig",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
    "holdout_share": 0.3,
    "frequency_caps": {"max_per_week": 2, "min_days_between": 2},
    "audience": {"min_age": 30, "max_age": 60, "min_income": 40_000},
}
SEND_DAYS = (1, 2, 3, 6, 7, 8)  # days before D: 1 is inside the gap, 7 and 8 outside the week
# (customer, age, income) at the audience limits
LIMITS = [("a_29", 29, 50_000.0), ("a_30", 30, 50_000.0), ("a_60", 60, 50_000.0), ("a_61", 61, 50_000.0),
          ("i_below", 45, 39_999.99), ("i_at", 45, 40_000.0)]  # fmt: skip
CONSENTS = {  # customer -> [(channel, recorded_at, granted)]; everyone else: email and sms from May
    "k_revoked": [("email", CONSENTED, True), ("email", noon(D - timedelta(days=3)), False)],
    "k_regranted": [("email", CONSENTED, False), ("email", noon(D - timedelta(days=3)), True)],
    "k_none": [],
    "k_sms_only": [("sms", CONSENTED, True)],
    "k_at_cutoff": [("email", END_OF_D, True)],  # recorded at the cut-off: not yet
    "k_before_cutoff": [("email", END_OF_D - timedelta(microseconds=1), True)],
    "k_push_only": [("app_push", CONSENTED, True)],
}
SUPPRESSED = {"s_this": "this", "s_global": 0, "s_other": 999}


def _send_cases() -> dict[str, tuple[int, ...]]:
    return {
        "w_" + ("_".join(map(str, days)) or "none"): days
        for n in range(4)
        for days in combinations(SEND_DAYS, n)
    }


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> tuple[Campaign, list[str]]:
    truncate_all(engine)
    campaign = add_campaign(engine, ELIG)
    sends = _send_cases()
    people = [{"customer_id": c, "age": 45, "income": 50_000.0} for c in [*sends, *CONSENTS, *SUPPRESSED]]
    people += [{"customer_id": c, "age": a, "income": m} for c, a, m in LIMITS]
    people.append({"customer_id": "t_today", "age": 45, "income": 50_000.0})
    insert_customers(engine, people, SNAPSHOT)
    ids = [p["customer_id"] for p in people]
    consents = [(c, ch, CONSENTED, True) for c in ids if c not in CONSENTS for ch in ("email", "sms")]
    consents += [(c, ch, at, g) for c, rows in CONSENTS.items() for ch, at, g in rows]
    insert_consents(engine, consents)
    decisions = [
        {"decision_id": f"{c}-{d}", "campaign_id": campaign.campaign_id, "customer_id": c,
         "arm_id": campaign.arm_ids[0], "decision_date": D - timedelta(days=d)}
        for c, days in sends.items() for d in days
    ]  # fmt: skip
    insert_decisions(engine, decisions)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into ops.suppressions (customer_id, campaign_id, reason, added_on) "
                "values (:c, :k, 't', :d)"
            ),
            [
                {"c": c, "k": campaign.campaign_id if k == "this" else k, "d": SNAPSHOT}
                for c, k in SUPPRESSED.items()
            ],
        )
    run_dbt(D)
    return campaign, ids


def test_one_customer_query_gives_the_batch_audience_at_every_boundary(
    engine: sa.Engine, world: tuple[Campaign, list[str]]
) -> None:
    campaign, ids = world
    with engine.connect() as conn:
        batch, batch_allowed = eligible_audience(conn, campaign, D)
        realtime = {}
        for c in ids:
            try:
                realtime[c] = eligible_customer(conn, campaign, c, None, None, D, END_OF_D)
            except NotEligible:
                pass
    batch_ids = batch["customer_id"].tolist()
    assert sorted(realtime) == batch_ids
    # by hand: 2 sends a week at most, none in the last 2 days (day 1 sends keep a customer out)
    eligible_sends = {c for c, days in _send_cases().items() if 1 not in days and len(set(days) - {7, 8}) < 2}
    assert {c for c in batch_ids if c.startswith("w_")} == eligible_sends
    assert {c for c in batch_ids if c[:2] in ("a_", "i_")} == {"a_30", "a_60", "i_at"}
    assert {c for c in batch_ids if c.startswith("s_")} == {"s_other"}
    assert {c for c in batch_ids if c.startswith("k_")} == {"k_regranted", "k_sms_only", "k_before_cutoff"}
    for i, c in enumerate(batch_ids):
        frame, allowed = realtime[c]
        np.testing.assert_array_equal(allowed[0], batch_allowed[i], err_msg=c)
        assert frame.iloc[0].to_dict() == batch.iloc[i].drop("shard").to_dict(), c  # shard: batch only
    assert batch["is_control"].any() and not batch["is_control"].all()


def test_a_send_earlier_today_counts_in_real_time_only(
    engine: sa.Engine, world: tuple[Campaign, list[str]]
) -> None:
    campaign, _ = world
    insert_decisions(
        engine,
        [{"decision_id": "t-today", "campaign_id": campaign.campaign_id, "customer_id": "t_today",
          "arm_id": campaign.arm_ids[0], "decision_date": D}],
    )  # fmt: skip
    with engine.connect() as conn:
        assert "t_today" in eligible_audience(conn, campaign, D)[0]["customer_id"].tolist()
        with pytest.raises(NotEligible, match="last send on 2026-06-15"):
            eligible_customer(conn, campaign, "t_today", None, None, D, END_OF_D)
