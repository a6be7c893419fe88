"""Stage 6 (monitor) on a world small enough to compute every KPI by hand.

The decisions and events go into ops/raw, the real dbt builds the marts monitor reads
(`campaign_daily_kpis`, `arm_stats`) as of AS_OF = 2026-05-20, then `monitor_day` runs.

Campaign `mon`: arms A = credit_card by email (the default, cost 0.5 a send) and B = by sms
(cost 2.0), conversion reward worth 100 when an event has no value, attribution window 2 days.

    day 05-10   id   group      arm  explored  conversion (day, value)
                t1   treatment  A    no        05-11, 0   -> revenue 100 (campaign value)
                t2   treatment  A    yes       05-12, 250 -> last day of the window: counts
                t3   treatment  B    yes       05-10, 0   -> revenue 100
                t4   treatment  A    no        (an open only)
                t5   treatment  A    no        -
                t6   treatment  B    no        05-13, 30  -> a day after the window: not attributed
                c1   control    A    no        05-11, 80
                c2   control    A    no        -
                c3   control    A    no        -
    day 05-12   t7   treatment  A    yes       -
                t8   treatment  B    no        05-13, 50
                t9   treatment  B    no        -
                t10  treatment  B    no        -
                c4   control    A    no        05-15, 40  -> outside the window (ends 05-14)
                c5   control    A    no        -

Campaign `mon-new`: one app_push arm, no costs, one treatment send on 05-19 (still pending:
its window ends 05-21 > AS_OF) and no control group yet.

Campaign `mon-wide`: arms by email, sms and app_push; on 05-14, 10 email sends (1 converts) and
10 sms sends (2 convert), all treatment; app_push was never sent.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from pipelines.monitor import campaign_kpis, monitor_day
from pipelines.transform import run_dbt
from tests.dbt.test_dbt_marts import _rows
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_customers,
    insert_decisions,
    insert_events,
    noon,
    truncate_all,
)

pytestmark = pytest.mark.slow

AS_OF = date(2026, 5, 20)
DAY1, DAY2 = date(2026, 5, 10), date(2026, 5, 12)

MON = {
    "name": "mon",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["credit_card"], "channel": ["email", "sms"]},
    "channel_costs": {"email": 0.5, "sms": 2.0},
    "reward": {"kind": "conversion", "conversion_value": 100},
    "attribution_window_days": 2,
    "holdout_share": 0.2,
}
MON_WIDE = {
    "name": "mon-wide",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["savings_account"], "channel": ["email", "sms", "app_push"]},
    "attribution_window_days": 2,
}
MON_NEW = {
    "name": "mon-new",
    "start_date": "2026-05-01",
    "parameters": {"offer_type": ["loan"], "channel": ["app_push"]},
    "attribution_window_days": 2,
}

# id -> (day, group, arm, explored)
DECISIONS = {
    "t1": (DAY1, "treatment", "A", False),
    "t2": (DAY1, "treatment", "A", True),
    "t3": (DAY1, "treatment", "B", True),
    "t4": (DAY1, "treatment", "A", False),
    "t5": (DAY1, "treatment", "A", False),
    "t6": (DAY1, "treatment", "B", False),
    "c1": (DAY1, "control", "A", False),
    "c2": (DAY1, "control", "A", False),
    "c3": (DAY1, "control", "A", False),
    "t7": (DAY2, "treatment", "A", True),
    "t8": (DAY2, "treatment", "B", False),
    "t9": (DAY2, "treatment", "B", False),
    "t10": (DAY2, "treatment", "B", False),
    "c4": (DAY2, "control", "A", False),
    "c5": (DAY2, "control", "A", False),
}
EVENTS = [  # (decision, type, value, day)
    ("t1", "conversion", 0, date(2026, 5, 11)),
    ("t2", "conversion", 250, date(2026, 5, 12)),
    ("t3", "conversion", 0, date(2026, 5, 10)),
    ("t4", "open", 0, date(2026, 5, 10)),
    ("t6", "conversion", 30, date(2026, 5, 13)),
    ("c1", "conversion", 80, date(2026, 5, 11)),
    ("t8", "conversion", 50, date(2026, 5, 13)),
    ("c4", "conversion", 40, date(2026, 5, 15)),
]

WIDE = {f"we{i}": 0 for i in range(10)} | {f"ws{i}": 1 for i in range(10)}  # id -> arm index (email, sms)


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict[str, int]:
    truncate_all(engine)
    mon, new, wide = add_campaign(engine, MON), add_campaign(engine, MON_NEW), add_campaign(engine, MON_WIDE)
    arms = dict(zip(["A", "B"], mon.arm_ids, strict=True))  # email first: the spec's order
    assert [p["channel"] for p in mon.arm_params] == ["email", "sms"]
    insert_customers(
        engine,
        [{"customer_id": f"cust-{d}", "age": 40, "income": 50_000.0} for d in [*DECISIONS, "n1", *WIDE]],
        date(2026, 5, 1),
    )
    insert_decisions(
        engine,
        [
            {"decision_id": d, "campaign_id": mon.campaign_id, "customer_id": f"cust-{d}",
             "arm_id": arms[arm], "decision_date": day, "treatment_group": group, "explored": explored}
            for d, (day, group, arm, explored) in DECISIONS.items()
        ]
        + [{"decision_id": "n1", "campaign_id": new.campaign_id, "customer_id": "cust-n1",
            "arm_id": new.arm_ids[0], "decision_date": date(2026, 5, 19)}]
        + [{"decision_id": d, "campaign_id": wide.campaign_id, "customer_id": f"cust-{d}",
            "arm_id": wide.arm_ids[arm], "decision_date": date(2026, 5, 14)} for d, arm in WIDE.items()],
    )  # fmt: skip
    wide_conversions = [(d, "conversion", 0, noon(date(2026, 5, 15))) for d in ("we0", "ws0", "ws1")]
    insert_events(engine, [(d, kind, value, noon(day)) for d, kind, value, day in EVENTS] + wide_conversions)
    run_dbt(AS_OF)
    assert [p["channel"] for p in wide.arm_params] == ["email", "sms", "app_push"]
    return {"mon": mon.campaign_id, "mon-new": new.campaign_id, "mon-wide": wide.campaign_id, **arms}


def test_pooled_kpis_match_the_hand_computation(engine: sa.Engine, world: dict[str, int]) -> None:
    """Pooled over both days of `mon`:

    treatment: 10 sends, conversions t1 t2 t3 t8 = 4 (t6 converted too late) -> rate 0.4
    control:    5 sends, conversion c1 = 1 (c4 too late)                    -> rate 0.2
    lift = 0.4 - 0.2 = 0.2; relative lift 0.2 / 0.2 = 1.0
    se = sqrt(0.4 * 0.6 / 10 + 0.2 * 0.8 / 5) = sqrt(0.024 + 0.032) = sqrt(0.056) = 0.2366432
    CI = 0.2 -+ 1.96 * 0.2366432 = [-0.2638207, 0.6638207]
    exploration: treatment sends explored t2 t3 t7 = 3 of 10 -> 0.3 (control never explores)
    cost: every send costs its channel, control included: A (email) t1 t2 t4 t5 t7 c1..c5 = 10
          x 0.5 = 5.0; B (sms) t3 t6 t8 t9 t10 = 5 x 2.0 = 10.0 -> 15.0
    revenue: t1 100 + t2 250 + t3 100 + t8 50 + c1 80 = 580 -> ROI (580 - 15) / 15 = 37.6667
    regret (posterior means of arm_stats, every matured send, Beta(1, 1) prior):
          A: 10 matured, 3 conversions (t1 t2 c1) -> Beta(4, 8), mean 1/3
          B:  5 matured, 2 conversions (t3 t8)    -> Beta(3, 4), mean 3/7 (the best)
          lost = (3/7 - 1/3) x 10 + 0 x 5 = 20/21 = 0.952381
    """
    summary = monitor_day(engine, AS_OF)
    kpis = {k["campaign"]: k for k in summary["kpis"]}
    mon = kpis["mon"]
    se = math.sqrt(0.056)
    expected = {
        "treatment_sends": 10,
        "treatment_rate": 0.4,
        "control_sends": 5,
        "control_rate": 0.2,
        "lift": 0.2,
        "lift_ci_low": 0.2 - 1.96 * se,
        "lift_ci_high": 0.2 + 1.96 * se,
        "relative_lift": 1.0,
        "exploration_rate": 0.3,
        "estimated_regret": 20 / 21,
        "pending": 0,
        "cost": 15.0,
        "revenue": 580.0,
        "roi": 565 / 15,
    }
    assert {k: mon[k] for k in expected} == pytest.approx(expected, rel=1e-9)
    assert mon["lift_ci_low"] == pytest.approx(-0.2638207, abs=1e-7)
    assert mon["lift_ci_high"] == pytest.approx(0.6638207, abs=1e-7)


def test_a_young_campaign_without_control_or_costs_reports_unknowns(
    engine: sa.Engine, world: dict[str, int]
) -> None:
    """`mon-new`: 1 treatment send, pending, no conversion, no control, no cost. Lift, its CI and
    ROI are unknown (None in the summary), not 0; one arm means nothing was lost to other arms."""
    new = {k["campaign"]: k for k in monitor_day(engine, AS_OF)["kpis"]}["mon-new"]
    assert new["treatment_sends"] == 1 and new["pending"] == 1 and new["control_sends"] == 0
    assert new["treatment_rate"] == 0.0 and new["exploration_rate"] == 0.0
    for unknown in ("control_rate", "lift", "lift_ci_low", "lift_ci_high", "relative_lift", "roi"):
        assert new[unknown] is None, unknown
    assert new["cost"] == 0.0 and new["estimated_regret"] == 0.0


def test_kpis_pool_only_the_days_up_to_the_date(engine: sa.Engine, world: dict[str, int]) -> None:
    """As of 05-11 only day 05-10 counts: treatment 3 of 6 (t1 t2 t3) = 0.5, control 1 of 3 = 1/3.
    lift = 1/6; se = sqrt(0.25 / 6 + (2/9) / 3) = sqrt(0.0416667 + 0.0740741) = 0.3402069.
    cost: A t1 t2 t4 t5 c1 c2 c3 = 7 x 0.5 + B t3 t6 = 2 x 2.0 = 7.5; revenue 100 + 250 + 100 + 80 = 530.
    mon-new has no decision by then: no row."""
    with engine.connect() as conn:
        rows = {r["campaign"]: r for r in campaign_kpis(conn, date(2026, 5, 11))}
    assert set(rows) == {"mon"}
    mon = rows["mon"]
    assert (mon["treatment_sends"], mon["control_sends"]) == (6, 3)
    assert mon["lift"] == pytest.approx(1 / 6)
    assert mon["lift_ci_low"] == pytest.approx(1 / 6 - 1.96 * 0.3402069, abs=1e-6)
    assert mon["exploration_rate"] == pytest.approx(2 / 6)
    assert (mon["cost"], mon["revenue"]) == pytest.approx((7.5, 530.0))
    assert mon["roi"] == pytest.approx((530 - 7.5) / 7.5)


def test_the_daily_mart_has_the_same_signs(engine: sa.Engine, world: dict[str, int]) -> None:
    """campaign_daily_kpis per day: 05-10 lift 0.5 - 1/3 = 1/6; 05-12 lift 1/4 - 0/2 = 0.25."""
    rows = _rows(
        engine,
        "select kpi_date, abs_lift, exploration_rate, cost, roi from analytics.campaign_daily_kpis "
        "where campaign_id = :c order by kpi_date",
        c=world["mon"],
    )
    assert [r["kpi_date"] for r in rows] == [DAY1, DAY2]
    assert [r["abs_lift"] for r in rows] == pytest.approx([1 / 6, 0.25])
    assert [r["exploration_rate"] for r in rows] == pytest.approx([2 / 6, 1 / 4])
    assert [float(r["cost"]) for r in rows] == pytest.approx([7.5, 7.5])  # day 2: 3 x 0.5 + 3 x 2.0


def test_alerts_of_the_day_are_replaced_not_added(engine: sa.Engine, world: dict[str, int]) -> None:
    """One quarantined row of AS_OF gives one quarantine alert; a stale alert of the day from an
    earlier run is dropped; alerts of other days stay; a second run changes nothing."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into ops.quarantine (logical_date, source_file, line_no, row, reason) "
                "values (:d, 'interactions.csv', 7, 'x,y', 'bad event_type')"
            ),
            {"d": AS_OF},
        )
        conn.execute(
            sa.text(
                "insert into ops.alerts (alert_date, campaign_id, kind, severity, message) values "
                "(:d, :c, 'conversion_drift', 'warning', 'stale'), (:y, null, 'quarantine', 'warning', 'old')"
            ),
            {"d": AS_OF, "y": AS_OF - timedelta(days=1), "c": world["mon"]},
        )
    try:
        first = monitor_day(engine, AS_OF)
        second = monitor_day(engine, AS_OF)
        assert first == second
        assert first["alerts"] == ["1 rows of 2026-05-20 were quarantined; see ops.quarantine"]
        alerts = _rows(engine, "select alert_date, kind, message from ops.alerts order by alert_date")
        assert [(a["alert_date"], a["kind"], a["message"]) for a in alerts] == [
            (AS_OF - timedelta(days=1), "quarantine", "old"),
            (AS_OF, "quarantine", first["alerts"][0]),
        ]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("truncate ops.quarantine, ops.alerts"))


def test_an_arm_never_sent_is_not_the_best_arm_of_the_regret(
    engine: sa.Engine, world: dict[str, int]
) -> None:
    """`mon-wide`: email Beta(1 + 1, 1 + 9) mean 1/6, sms Beta(1 + 2, 1 + 8) mean 1/4, app_push unsent.
    Conversions lost against the best arm that was tried: (1/4 - 1/6) x 10 = 0.8333. (Counting the
    unsent arm at 0.5: (0.5 - 1/6) x 10 + (0.5 - 1/4) x 10 = 5.8333.)"""
    wide = {k["campaign"]: k for k in monitor_day(engine, AS_OF)["kpis"]}["mon-wide"]
    assert wide["treatment_rate"] == pytest.approx(3 / 20)
    assert wide["estimated_regret"] == pytest.approx(10 / 12)
