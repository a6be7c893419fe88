"""The world of tests/pipelines/test_performance.py, small enough to count by hand; shared by
test_report.py. Its figures are described in test_performance.py's docstring.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from pipelines.campaign_store import Campaign
from tests.pipelines.seed_rows import add_campaign, insert_decisions, insert_events, noon, truncate_all
from tests.pipelines.test_monitor import MON

NOW = datetime(2026, 6, 30, 10, tzinfo=UTC)
DAY, LATE, EARLY = date(2026, 6, 1), date(2026, 6, 25), date(2026, 5, 1)
# the monitor test's campaign `mon` (same arms, costs and value) with a 7-day window
PERF = MON | {"name": "perf", "start_date": "2026-04-01", "attribution_window_days": 7}


def seed_perf_world(engine: sa.Engine) -> Campaign:
    """Empty the raw and ops tables and write the world of the module docstring."""
    truncate_all(engine)
    campaign = add_campaign(engine, PERF)
    a, b = campaign.arm_ids
    assert [p["channel"] for p in campaign.arm_params] == ["email", "sms"]

    def row(did: str, day: date, arm: int, group: str = "treatment", **extra) -> dict:
        return {"decision_id": did, "campaign_id": campaign.campaign_id, "customer_id": f"cu-{did}",
                "arm_id": arm, "decision_date": day, "treatment_group": group} | extra  # fmt: skip

    rows = [row(f"t{i}", DAY, a if i < 60 else b, explored=i < 25) for i in range(100)]
    rows += [row(f"c{i}", DAY, a, "control", source="realtime" if i >= 40 else "batch") for i in range(50)]
    rows += [row(f"p{i}", LATE, a) for i in range(10)] + [row(f"q{i}", LATE, a, "control") for i in range(5)]
    rows += [row(f"o{i}", EARLY, a) for i in range(5)]
    insert_decisions(engine, rows)
    conversion_day = noon(DAY + timedelta(days=2))
    events = [(f"t{i}", "conversion", 0 if i < 6 else 250, conversion_day) for i in range(12)]
    events += [("t12", "conversion", 0, noon(DAY + timedelta(days=8))), ("t13", "open", 0, conversion_day)]
    # the funnel (test_performance's docstring): opens, clicks, views with their dwell seconds
    events += [(f"t{i}", "open", 0, conversion_day) for i in range(20) if i != 13]
    events += [(f"t{i}", "click", 0, conversion_day) for i in range(15)]
    viewed = (("view", 0), ("dwell", 30))
    events += [(f"t{i}", kind, value, conversion_day) for i in range(10) for kind, value in viewed]
    events += [("t12", "click", 0, noon(DAY + timedelta(days=8)))]  # outside t12's window
    events += [("p0", "open", 0, noon(LATE + timedelta(days=1)))]  # pending on NOW
    funnel = (("open", 0), ("click", 0), ("view", 0), ("dwell", 60))
    events += [("c0", kind, value, conversion_day) for kind, value in funnel]
    events += [(f"c{i}", "conversion", None, conversion_day) for i in range(3)]
    events += [("p0", "conversion", 40, noon(LATE + timedelta(days=1)))]
    events += [(f"o{i}", "conversion", 0, noon(EARLY)) for i in range(5)]
    insert_events(engine, events)
    with engine.begin() as conn:  # the segment at decision time, which the snapshot folds by
        conn.execute(sa.text("update ops.decisions set segment = 'middle_mid'"))
    return campaign
