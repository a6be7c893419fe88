"""Who may receive a campaign on day D: caps, suppressions, consent and the holdout, directly.

One world per module: two campaigns and about 2,000 customers in raw.customers, the
`customer_features` mart built by the real dbt (the only mart `eligible_audience` reads);
each test writes the decisions and suppressions it needs into `ops` and reads the audience.

Campaign `aud`: email and sms arms, caps max_per_week=2 and min_days_between=2, holdout 0.2.
Campaign `aud-other`: email only, the default caps (3 a week, 1 day apart), holdout 0.1.
Every customer has email consent from 2026-05-01 unless a consent test says otherwise.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.audience import eligible_audience
from pipelines.campaign_store import Campaign
from pipelines.decide import decide_campaign
from pipelines.transform import run_dbt
from tests.conftest import empty_incremental_marts
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_consents,
    insert_customers,
    insert_decisions,
    noon,
    random_customers,
    truncate_all,
)

pytestmark = pytest.mark.slow

D = date(2026, 6, 15)
SNAPSHOT = date(2026, 6, 1)
CONSENTED = noon(date(2026, 5, 1))

AUD = {
    "name": "aud",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
    "holdout_share": 0.2,
    "frequency_caps": {"max_per_week": 2, "min_days_between": 2},
}
AUD_OTHER = {
    "name": "aud-other",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["savings_account"], "channel": ["email"]},
    "holdout_share": 0.1,
}

# Consent histories (customer -> [(channel, recorded_at, granted)]), none of them email-from-May.
CONSENT_CASES = {
    "k_revoked": [("email", CONSENTED, True), ("email", noon(D - timedelta(days=5)), False)],
    "k_regranted": [("email", CONSENTED, False), ("email", noon(D - timedelta(days=5)), True)],
    "k_none": [],  # no record: opt-in means no consent
    "k_granted_tomorrow": [("email", noon(D + timedelta(days=1)), True)],
    "k_revoked_tomorrow": [("email", CONSENTED, True), ("email", noon(D + timedelta(days=1)), False)],
    "k_granted_today": [("email", noon(D), True)],
    "k_sms_only": [("sms", CONSENTED, True)],
    "k_push_only": [("app_push", CONSENTED, True)],  # a channel neither campaign uses
}
SPECIAL = ["w_one", "w_two", "w_two_one_old", "g_ok", "g_short", "x_other", "x_today",
           "s_this", "s_global", "s_other_campaign"]  # fmt: skip
N_BULK = 2_000


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict[str, Campaign]:
    truncate_all(engine)
    campaigns = {"aud": add_campaign(engine, AUD), "aud-other": add_campaign(engine, AUD_OTHER)}
    people = [{"customer_id": c, "age": 40, "income": 50_000.0} for c in SPECIAL + list(CONSENT_CASES)]
    insert_customers(engine, people + random_customers(N_BULK, seed=11), SNAPSHOT)
    email_from_may = [p["customer_id"] for p in people if p["customer_id"] not in CONSENT_CASES]
    email_from_may += [f"b{i:04d}" for i in range(N_BULK)]
    insert_consents(
        engine,
        [(c, "email", CONSENTED, True) for c in email_from_may]
        + [(c, ch, at, g) for c, history in CONSENT_CASES.items() for ch, at, g in history],
    )
    run_dbt(D)
    return campaigns


@pytest.fixture(autouse=True)
def no_ledger(engine: sa.Engine, world) -> None:
    """Each test writes the decisions and suppressions it means."""
    with engine.begin() as conn:
        conn.execute(sa.text("truncate ops.decisions, ops.send_lists, ops.suppressions"))
        empty_incremental_marts(conn)


def _audience(engine: sa.Engine, campaign: Campaign, day: date):
    with engine.connect() as conn:
        return eligible_audience(conn, campaign, day)


def _ids(engine: sa.Engine, campaign: Campaign, day: date) -> set[str]:
    return set(_audience(engine, campaign, day)[0]["customer_id"])


def _sends(campaign: Campaign, customer: str, *days: date) -> list[dict]:
    return [
        {
            "decision_id": f"{campaign.campaign_id}-{day}-{customer}",
            "campaign_id": campaign.campaign_id,
            "customer_id": customer,
            "arm_id": campaign.arm_ids[0],
            "decision_date": day,
        }
        for day in days
    ]


def _days_before(*offsets: int) -> list[date]:
    return [D - timedelta(days=k) for k in offsets]


def test_frequency_caps_at_their_boundaries(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    """`aud` allows 2 sends in the 7 days D-6..D-1 and a gap of >= 2 days since the last one.

    w_one          1 send on D-6                 1 < 2 this week, gap 6        -> eligible
    w_two          sends on D-6 and D-4          2 this week (gap 4 is fine)   -> capped
    w_two_one_old  sends on D-7 and D-4          D-7 is outside the week: 1    -> eligible
    g_ok           1 send on D-2                 gap 2 = min_days_between      -> eligible
    g_short        1 send on D-1                 gap 1 < 2 (1 send is fine)    -> too soon
    x_other        2 sends of aud-other, D-5/D-3 caps count every campaign's sends -> capped
    x_today        1 send of aud-other on D      D's own decisions do not count -> eligible
    """
    aud, other = world["aud"], world["aud-other"]
    insert_decisions(
        engine,
        _sends(aud, "w_one", *_days_before(6))
        + _sends(aud, "w_two", *_days_before(6, 4))
        + _sends(aud, "w_two_one_old", *_days_before(7, 4))
        + _sends(aud, "g_ok", *_days_before(2))
        + _sends(aud, "g_short", *_days_before(1))
        + _sends(other, "x_other", *_days_before(5, 3))
        + _sends(other, "x_today", D),
    )
    eligible = _ids(engine, aud, D)
    assert {"w_one", "w_two_one_old", "g_ok", "x_today"} <= eligible
    assert "w_two" not in eligible, "max_per_week: a third send in 7 days"
    assert "g_short" not in eligible, "min_days_between: a send one day after the last"
    assert "x_other" not in eligible, "sends of another campaign count towards the cap"
    # The same ledger under aud-other's own caps (3 a week, 1 day apart): nobody is capped.
    assert {"w_one", "w_two", "w_two_one_old", "g_ok", "g_short", "x_other", "x_today"} <= _ids(
        engine, other, D
    )
    # A week later every one of these sends has left the window.
    assert set(SPECIAL) - {"s_this", "s_global", "s_other_campaign"} <= _ids(engine, aud, D + timedelta(7))


def test_max_per_week_counts_exactly_up_to_the_cap(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    """aud-other (3 a week, 1 day apart): 2 sends in the week leave room, 3 do not."""
    other = world["aud-other"]
    insert_decisions(
        engine, _sends(other, "w_one", *_days_before(6, 4)) + _sends(other, "w_two", *_days_before(6, 4, 2))
    )
    eligible = _ids(engine, other, D)
    assert "w_one" in eligible and "w_two" not in eligible


def test_suppressions_for_one_campaign_and_for_all(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    aud, other = world["aud"], world["aud-other"]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into ops.suppressions (customer_id, campaign_id, reason, added_on) "
                "values ('s_this', :a, 'complained', :d), ('s_global', 0, 'deceased', :d), "
                "('s_other_campaign', :o, 'opted out of savings', :d)"
            ),
            {"a": aud.campaign_id, "o": other.campaign_id, "d": D},
        )
    for_aud, for_other = _ids(engine, aud, D), _ids(engine, other, D)
    assert "s_this" not in for_aud and "s_this" in for_other
    assert "s_global" not in for_aud and "s_global" not in for_other
    assert "s_other_campaign" in for_aud and "s_other_campaign" not in for_other
    # Nobody else is touched: the other specials, the bulk and the 4 consent cases that may receive aud.
    assert len(for_aud) == len(SPECIAL) - 2 + N_BULK + 4


def test_consent_latest_record_wins_and_no_record_means_no(
    engine: sa.Engine, world: dict[str, Campaign]
) -> None:
    aud = world["aud"]
    customers, allowed = _audience(engine, aud, D)
    ids = customers["customer_id"].tolist()
    assert {"k_regranted", "k_revoked_tomorrow", "k_granted_today", "k_sms_only"} <= set(ids)
    for absent in ("k_revoked", "k_none", "k_granted_tomorrow", "k_push_only"):
        assert absent not in ids, absent
    channels = np.array([p["channel"] for p in aud.arm_params])
    mask = {c: allowed[i] for i, c in enumerate(ids)}
    np.testing.assert_array_equal(mask["k_regranted"], channels == "email")
    np.testing.assert_array_equal(mask["k_sms_only"], channels == "sms")
    # aud-other has no sms arm: an sms-only customer is not in its audience at all.
    assert "k_sms_only" not in _ids(engine, world["aud-other"], D)
    # The day after, the consent recorded on D + 1 applies.
    later = _ids(engine, aud, D + timedelta(days=1))
    assert "k_granted_tomorrow" in later and "k_revoked_tomorrow" not in later


def test_holdout_is_the_same_customers_every_day(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    """Decide D for real, then read the audience of D + 5: whoever was control on D is control on
    D + 5 and nobody else is. The share is 0.2 within 3 binomial standard errors."""
    aud = world["aud"]
    decide_campaign(engine, aud, D)
    with engine.connect() as conn:
        ledger = dict(
            conn.execute(
                sa.text("select customer_id, treatment_group from ops.decisions where campaign_id = :c"),
                {"c": aud.campaign_id},
            ).all()
        )
    later, _ = _audience(engine, aud, D + timedelta(days=5))  # 1 send, 5 days ago: under both caps
    # Only consent changed in between: recorded on D + 1, one customer gained and one lost email.
    assert set(later["customer_id"]) ^ set(ledger) == {"k_granted_tomorrow", "k_revoked_tomorrow"}
    both = later[later["customer_id"].isin(list(ledger))]
    control_later = set(both.loc[both["is_control"], "customer_id"])
    assert control_later == {c for c, g in ledger.items() if g == "control"}
    n = len(ledger)
    share = len(control_later) / n
    assert abs(share - 0.2) <= 3 * np.sqrt(0.2 * 0.8 / n), share
    # Another campaign draws its own holdout: the two control groups are not the same people.
    other, _ = _audience(engine, world["aud-other"], D + timedelta(days=5))
    other_control = set(other.loc[other["is_control"], "customer_id"])
    overlap = len(other_control & control_later) / len(other_control)
    assert abs(overlap - 0.2) < 0.1, overlap  # independent draws: about 0.2 of them, not all


def test_consent_recorded_on_d_counts_for_d(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    """A consent recorded at 23:59:59 UTC on D counts for D; one at 00:00 UTC on D + 1 does not."""
    last_second = noon(D) + timedelta(hours=11, minutes=59, seconds=59)
    insert_consents(
        engine,
        [
            ("k_none", "sms", last_second, True),
            ("k_push_only", "sms", last_second + timedelta(seconds=1), True),
        ],
    )
    try:
        eligible = _ids(engine, world["aud"], D)
        assert "k_none" in eligible and "k_push_only" not in eligible
    finally:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "delete from raw.consents where channel = 'sms' "
                    "and customer_id in ('k_none', 'k_push_only')"
                )
            )
