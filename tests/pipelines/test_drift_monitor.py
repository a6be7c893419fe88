"""Drift alerts of the daily monitor on the real marts, the discount response, `campaignopt alerts`.

Campaign `drifty`, arms A (email) and B (sms), attribution window 0 days (a decision of D is
matured as of D), 14 days from 2026-03-01, every customer in one segment:

    arm A: 400 sends a day; 20 conversions a day on 03-01..03-08, then 8 a day from 03-09
    arm B: 400 sends a day; 20 conversions a day throughout

Customer snapshots: 03-01 (every customer digital_engagement 0.4, website_visits 5) and 03-10
(half of them digital_engagement 0.1; 16 of the 800, 2%, website_visits 1).
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.campaign_store import load_campaign_by_id
from pipelines.decide import segment_stats
from pipelines.drift import PH_DELTA, PH_THRESHOLD
from pipelines.monitor import monitor_day
from pipelines.transform import run_dbt
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_customers,
    insert_decisions,
    insert_events,
    noon,
    truncate_all,
)

pytestmark = pytest.mark.slow

START, DAYS, CHANGE = date(2026, 3, 1), 14, 8  # CHANGE: index of 03-09
LAST = START + timedelta(days=DAYS - 1)
MATURED = DAYS - 1  # as of LAST: a 0-day window's sends of LAST mature at its end
SENDS, BEFORE, AFTER = 400, 20, 8
CLI = str(Path(sys.executable).with_name("campaignopt"))
DRIFTY = {
    "name": "drifty",
    "start_date": "2026-03-01",
    "parameters": {"offer_type": ["credit_card"], "channel": ["email", "sms"]},
    "attribution_window_days": 0,
    "holdout_share": 0.0,
    "drift": {"response": "discount", "factor": 0.25},
}


def _conversions(arm: str, day: int) -> int:
    return AFTER if arm == "A" and day >= CHANGE else BEFORE


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict:
    truncate_all(engine)
    campaign = add_campaign(engine, DRIFTY)
    arms = dict(zip("AB", campaign.arm_ids, strict=True))
    customers = [{"customer_id": f"k{i:03d}", "age": 40, "income": 50_000.0} for i in range(2 * SENDS)]
    insert_customers(engine, customers, START)
    with engine.begin() as conn:  # the second snapshot: same people, engagement and visits moved
        conn.execute(
            sa.text(
                """insert into raw.customers (snapshot_date, customer_id, age, gender, income,
                       loyalty_points, tenure_years, products_held, digital_engagement, website_visits,
                       past_purchases, source_file)
                   select :d, customer_id, age, gender, income, loyalty_points, tenure_years, products_held,
                          case when customer_id < 'k400' then 0.1 else digital_engagement end,
                          case when customer_id < 'k016' then 1 else website_visits end,
                          past_purchases, 'seed'
                   from raw.customers where snapshot_date = :s"""
            ),
            {"d": date(2026, 3, 10), "s": START},
        )
    decisions, events = [], []
    for day in range(DAYS):
        d = START + timedelta(days=day)
        for a, arm in enumerate("AB"):
            for i in range(SENDS):
                did = f"{arm}{day:02d}-{i:03d}"
                decisions.append(
                    {
                        "decision_id": did,
                        "campaign_id": campaign.campaign_id,
                        "customer_id": f"k{a * SENDS + i:03d}",
                        "arm_id": arms[arm],
                        "decision_date": d,
                    }
                )
                if i < _conversions(arm, day):
                    events.append((did, "conversion", 0, noon(d)))
    insert_decisions(engine, decisions)
    insert_events(engine, events)
    run_dbt(LAST)
    yield {"campaign_id": campaign.campaign_id, **arms}
    truncate_all(engine)


def _hand_alarm_day() -> int:
    """Page-Hinkley with the mean known to be 0 on arm A's daily z, the textbook loop."""
    down = 0.0
    for t in range(1, DAYS):
        conv = sum(_conversions("A", d) for d in range(t))
        pooled = (conv + 0.5) / (SENDS * t + 1)
        r = (conv + pooled) / (SENDS * t + 1)  # one segment: the segment's rate shrunk to the pooled
        z = (_conversions("A", t) - SENDS * r) / math.sqrt(SENDS * r * (1 - r))
        down = max(0.0, down - z - PH_DELTA)
        if t >= 5 and down > PH_THRESHOLD:
            return t
    raise AssertionError("no alarm by hand")


def _alerts(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select alert_id, alert_date, kind, severity, message, details, acknowledged_by "
                "from ops.alerts order by alert_date, kind"
            )
        ).mappings()
        return [dict(r) for r in rows]


def test_a_step_change_alerts_once_on_the_day_the_hand_computation_says(engine, world) -> None:
    alarm = _hand_alarm_day()
    assert alarm == 12  # 03-13: the fifth day of the drop
    alarm_date = START + timedelta(days=alarm)
    monitor_day(engine, alarm_date - timedelta(days=1))
    assert [a["kind"] for a in _alerts(engine) if a["kind"].startswith("concept_drift")] == []
    monitor_day(engine, alarm_date)
    drift = [a for a in _alerts(engine) if a["kind"].startswith("concept_drift")]
    assert [(a["alert_date"], a["kind"], a["severity"]) for a in drift] == [
        (alarm_date, f"concept_drift:{world['A']}", "critical")
    ]
    details = drift[0]["details"]
    # before: 8 days of 20/400; after: 03-09..03-13, 5 days of 8/400.
    assert details["change_start"] == "2026-03-09" and details["alarm_date"] == "2026-03-13"
    assert details["rate_before"] == pytest.approx(0.05) and details["rate_after"] == pytest.approx(0.02)
    assert details["relative_change"] == pytest.approx(-0.6) and details["direction"] == "decrease"
    assert drift[0]["message"] == (
        f"campaign drifty arm {world['A']} (offer_type=credit_card|channel=email): reward rate fell from "
        "5.00% to 2.00% (-60%) from decisions of 2026-03-09 on; detected on those of 2026-03-13"
    )
    # Arm B never changed: no alert. The next day finds the same alarm, already alerted.
    monitor_day(engine, LAST)
    assert [a["alert_date"] for a in _alerts(engine) if a["kind"].startswith("concept_drift")] == [alarm_date]


def test_rerunning_a_day_changes_nothing_and_keeps_the_acknowledgement(engine, world) -> None:
    monitor_day(engine, LAST - timedelta(days=1))
    first = _alerts(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update ops.alerts set acknowledged_by = 'ops', acknowledged_at = now() "
                "where kind like 'concept_drift:%'"
            )
        )
    monitor_day(engine, LAST - timedelta(days=1))
    again = _alerts(engine)
    assert [(a["alert_id"], a["kind"], a["message"]) for a in again] == [
        (a["alert_id"], a["kind"], a["message"]) for a in first
    ]
    assert [a["acknowledged_by"] for a in again if a["kind"].startswith("concept_drift")] == ["ops"]
    with engine.begin() as conn:
        conn.execute(sa.text("update ops.alerts set acknowledged_by = null, acknowledged_at = null"))


def test_feature_drift_alerts_carry_the_conventional_severities(engine, world) -> None:
    """digital_engagement: reference all in one bin, current half below it: shares (1e-4 floor)
    r = (1e-4, 1), c = (0.5, 0.5). website_visits: c = (0.02, 0.98)."""
    monitor_day(engine, LAST)
    feature = {
        a["kind"]: a for a in _alerts(engine) if a["alert_date"] == LAST and a["kind"].startswith("feature")
    }

    def psi(c: float) -> float:
        return (c - 1e-4) * math.log(c / 1e-4) + ((1 - c) - 1) * math.log(1 - c)

    assert set(feature) == {"feature_drift:digital_engagement", "feature_drift:website_visits"}
    engagement, visits = feature["feature_drift:digital_engagement"], feature["feature_drift:website_visits"]
    assert (
        engagement["details"]["psi"] == pytest.approx(psi(0.5), abs=1e-4)
        and engagement["severity"] == "critical"
    )
    assert visits["details"]["psi"] == pytest.approx(psi(0.02), abs=1e-4) and visits["severity"] == "warning"
    assert 0.1 <= psi(0.02) < 0.25 <= psi(0.5)


def test_the_discount_scales_the_old_evidence_of_the_drifted_arm_exactly(engine, world) -> None:
    monitor_day(engine, START + timedelta(days=12))
    campaign = load_campaign_by_id(engine, world["campaign_id"])
    a, b = campaign.arm_ids.index(world["A"]), campaign.arm_ids.index(world["B"])
    with engine.connect() as conn:
        pulls, rewards = segment_stats(conn, campaign)
    seg = int(np.flatnonzero(pulls[:, b])[0])
    # The marts as of 03-14 hold 13 matured days (03-14's sends mature at its end, after the run).
    # A: its 8 days before 03-09 count 0.25 times: 0.25 x 3200 + 5 x 400 sends, 0.25 x 160 + 5 x 8 rewards.
    assert pulls[seg, a] == pytest.approx(0.25 * 8 * SENDS + 5 * SENDS)
    assert rewards[seg, a] == pytest.approx(0.25 * 8 * BEFORE + 5 * AFTER)
    assert (pulls[seg, b], rewards[seg, b]) == (MATURED * SENDS, MATURED * BEFORE)  # B untouched
    spec_off = campaign.spec.model_copy(update={"drift": None})
    with engine.connect() as conn:
        plain, _ = segment_stats(conn, dataclasses.replace(campaign, spec=spec_off))
    assert plain[seg, a] == MATURED * SENDS
    with engine.begin() as conn:  # resolved: the old evidence counts fully again
        conn.execute(
            sa.text("update ops.alerts set resolved_at = now(), resolved_by = 't' where kind like 'concept%'")
        )
        assert segment_stats(conn, campaign)[0][seg, a] == MATURED * SENDS
        conn.execute(sa.text("update ops.alerts set resolved_at = null, resolved_by = null"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "alerts", *args], capture_output=True, text=True, timeout=120)


def test_the_alerts_cli_lists_filters_acknowledges_and_resolves(engine, world) -> None:
    monitor_day(engine, START + timedelta(days=12))
    listed = json.loads(_cli("list", "--kind", "concept_drift", "--json").stdout)
    assert [(r["alert_date"], r["severity"], r["campaign"]) for r in listed] == [
        ("2026-03-13", "critical", "drifty")
    ]
    alert_id = listed[0]["alert_id"]
    assert json.loads(_cli("list", "--day", "2026-03-12", "--kind", "concept_drift", "--json").stdout) == []
    critical = json.loads(_cli("list", "--since", "2026-03-13", "--severity", "critical", "--json").stdout)
    assert {r["kind"] for r in critical} == {
        f"concept_drift:{world['A']}",
        "feature_drift:digital_engagement",
    }
    table = _cli("list", "--day", "2026-03-13", "--kind", "concept_drift")
    assert table.returncode == 0 and "severity" in table.stdout and "│ open " in table.stdout
    acked = _cli("ack", str(alert_id), "--by", "ana", "--note", "looking at the email platform")
    assert acked.returncode == 0 and acked.stdout.strip().endswith("acknowledged by ana")
    assert "acknowledged by ana" in _cli("list", "--kind", "concept_drift").stdout
    assert _cli("resolve", str(alert_id), "--by", "ana").returncode == 0
    assert json.loads(_cli("list", "--kind", "concept_drift", "--open", "--json").stdout) == []
    row = json.loads(_cli("list", "--kind", "concept_drift", "--json").stdout)[0]
    assert (row["resolved_by"], row["note"]) == ("ana", "looking at the email platform")
    for bad, message in [
        (("list", "--severity", "loud"), "error: --severity: 'loud' is not one of info, warning, critical"),
        (("list", "--day", "03/13"), "error: --day: '03/13' is not a date (YYYY-MM-DD)"),
        (
            ("ack", "999999", "--by", "ana"),
            "error: alert 999999: no such alert (see 'campaignopt alerts list')",
        ),
        (("ack", str(alert_id), "--by", " "), "error: --by: say who (a name or an e-mail address)"),
    ]:
        result = _cli(*bad)
        assert (result.returncode, result.stderr.strip()) == (2, message)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update ops.alerts set resolved_at = null, resolved_by = null, "
                "acknowledged_at = null, acknowledged_by = null, note = null"
            )
        )
