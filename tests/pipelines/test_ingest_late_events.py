"""A late event (occurred before D, delivered in D's inbox) lands and counts for its decision in the
marts of D, by its occurred_at, even when the decision's window had already closed.

card-cashback: conversion reward, attribution window 2 days, conversion_value 80.
- L1, L2 decided 2026-10-30: window 10-30..11-01, matured from 11-01 on.
- L3 decided 2026-11-01: window 11-01..11-03, pending on 11-02.
D = 2026-11-02's inbox holds: a conversion of L1 that occurred 11-01 23:58 (inside its window, a
day late), a conversion of L3 on D without value (counts at conversion_value 80), nothing for L2.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign
from pipelines.ingest import ingest_day
from pipelines.transform import run_dbt

pytestmark = pytest.mark.slow  # two dbt builds, ~15 s each

REPO = Path(__file__).resolve().parents[2]
D = date(2026, 11, 2)
HEADER = "event_id,decision_id,customer_id,campaign_id,arm_id,event_type,value,occurred_at\n"


def _attributed(engine: sa.Engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select decision_id, status, converted, revenue, reward "
                "from analytics.int_decisions_attributed order by decision_id"
            )
        ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_a_late_event_counts_for_its_decision(clean_engine: sa.Engine, tmp_path: Path) -> None:
    cid = apply_campaign(clean_engine, load_campaign(REPO / "campaigns/card_cashback.yaml")).campaign_id
    with clean_engine.begin() as conn:
        arm = conn.execute(sa.text("select min(arm_id) from ops.arms")).scalar_one()
        conn.execute(
            sa.text(
                """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                       decided_at, policy, policy_version, propensity, selected_by, explored,
                       treatment_group, source)
                   values (:d, :c, :cust, :a, :day, :day, 'thompson', '1', 0.5, 'bandit', false,
                           'treatment', 'batch')"""
            ),
            [
                {"d": "L1", "c": cid, "cust": "C1", "a": arm, "day": date(2026, 10, 30)},
                {"d": "L2", "c": cid, "cust": "C2", "a": arm, "day": date(2026, 10, 30)},
                {"d": "L3", "c": cid, "cust": "C3", "a": arm, "day": date(2026, 11, 1)},
            ],
        )
    run_dbt(date(2026, 11, 1))
    before = _attributed(clean_engine)
    assert before["L1"] == ("matured", False, 0.0, 0)  # on 11-01 its conversion had not arrived yet

    folder = tmp_path / D.isoformat()
    folder.mkdir()
    (folder / "interactions_1.csv").write_text(
        HEADER
        + f"late-1,L1,C1,{cid},{arm},conversion,120,2026-11-01T23:58:00Z\n"
        + f"ontime-3,L3,C3,{cid},{arm},conversion,,2026-11-02T09:00:00Z\n"
    )
    report = ingest_day(clean_engine, D, inbox=tmp_path)
    assert (report.loaded, report.quarantined) == (2, 0)

    run_dbt(D)
    assert _attributed(clean_engine) == {
        "L1": ("matured", True, 120.0, 1),  # the late conversion, by occurred_at, inside the window
        "L2": ("matured", False, 0.0, 0),
        "L3": ("pending", True, 80.0, None),  # no value: the campaign's conversion_value
    }
    with clean_engine.connect() as conn:
        stats = conn.execute(
            sa.text(
                "select sends, matured, conversions, reward_sum from analytics.arm_stats where arm_id = :a"
            ),
            {"a": arm},
        ).one()
    assert tuple(stats) == (3, 2, 2, 1)
