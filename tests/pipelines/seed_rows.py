"""Rows for the tables the daily stages read, written straight into PostgreSQL.

Shared by tests/pipelines/test_audience.py, test_monitor.py and test_decide_seed.py, which
each describe their own small world; campaigns go in through the real ``apply_campaign``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time

import numpy as np
import sqlalchemy as sa

from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import Campaign, apply_campaign, load_campaign_by_id
from tests.conftest import reset_tables


def truncate_all(engine: sa.Engine) -> None:
    reset_tables(engine)


def add_campaign(engine: sa.Engine, definition: dict) -> Campaign:
    result = apply_campaign(engine, CampaignSpec.model_validate(definition))
    return load_campaign_by_id(engine, result.campaign_id)


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def insert_customers(engine: sa.Engine, rows: Iterable[dict], snapshot: date) -> None:
    """rows: customer_id, age, income, optional gender (F); the other attributes get fixed
    plausible values."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into raw.customers (snapshot_date, customer_id, age, gender, income,
                       loyalty_points, tenure_years, products_held, digital_engagement, website_visits,
                       past_purchases, source_file)
                   values (:d, :customer_id, :age, :gender, :income, 100, 3.0, 2, 0.4, 5, 1, 'seed')"""
            ),
            [{"d": snapshot, "gender": "F", **r} for r in rows],
        )


def random_customers(n: int, seed: int, prefix: str = "b") -> list[dict]:
    """``n`` customers over every segment (ages 20-79, incomes 10k-150k), ids ``<prefix>0000``..."""
    rng = np.random.default_rng(seed)
    ages = rng.integers(20, 80, n)
    incomes = np.round(rng.uniform(10_000, 150_000, n), 2)
    return [
        {"customer_id": f"{prefix}{i:04d}", "age": int(a), "income": float(m)}
        for i, (a, m) in enumerate(zip(ages, incomes, strict=True))
    ]


def insert_consents(engine: sa.Engine, rows: Iterable[tuple[str, str, datetime, bool]]) -> None:
    """rows: (customer_id, channel, recorded_at, granted)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into raw.consents (customer_id, channel, recorded_at, granted, source_file) "
                "values (:c, :ch, :at, :g, 'seed')"
            ),
            [{"c": c, "ch": ch, "at": at, "g": g} for c, ch, at, g in rows],
        )


def insert_decisions(engine: sa.Engine, rows: Iterable[dict]) -> None:
    """rows: decision_id, campaign_id, customer_id, arm_id, decision_date; optional
    treatment_group (treatment), explored (False), propensity (0.5, 1.0 for control), source (batch)."""
    params = []
    for r in rows:
        group = r.get("treatment_group", "treatment")
        params.append(
            {
                "id": r["decision_id"],
                "cid": r["campaign_id"],
                "cust": r["customer_id"],
                "arm": r["arm_id"],
                "d": r["decision_date"],
                "at": datetime.combine(r["decision_date"], time(6), tzinfo=UTC),
                "p": r.get("propensity", 1.0 if group == "control" else 0.5),
                "x": r.get("explored", False),
                "g": group,
                "src": r.get("source", "batch"),
            }
        )
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                       decided_at, policy, policy_version, propensity, selected_by, explored,
                       treatment_group, source)
                   values (:id, :cid, :cust, :arm, :d, :at, 'thompson', 'test', :p, 'bandit', :x, :g, :src)"""
            ),
            params,
        )


def insert_events(engine: sa.Engine, rows: Iterable[tuple[str, str, float, datetime]]) -> None:
    """rows: (decision_id, event_type, value, occurred_at); the rest comes from the decision.
    logical_date is the UTC day of occurred_at, as the ingest files them."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id,
                       event_type, value, occurred_at, logical_date, source_file)
                   select :eid, d.decision_id, d.customer_id, d.campaign_id, d.arm_id, :t, :v, :at,
                          cast(:at at time zone 'UTC' as date), 'seed'
                   from ops.decisions d where d.decision_id = :did"""
            ),
            [
                {"eid": f"ev-{did}-{i}", "did": did, "t": kind, "v": value, "at": at}
                for i, (did, kind, value, at) in enumerate(rows)
            ],
        )


def replace_segment_arm_stats(engine: sa.Engine, rows: Iterable[dict]) -> None:
    """The `segment_arm_stats` mart (built by dbt first) holding only ``rows``: c (campaign id),
    s (segment), a (arm id), m (matured sends), r (reward sum)."""
    with engine.begin() as conn:
        conn.execute(sa.text("delete from analytics.segment_arm_stats"))
        conn.execute(
            sa.text(
                """insert into analytics.segment_arm_stats (campaign_id, segment, arm_id, sends, matured,
                       pending, opens, clicks, conversions, revenue, reward_sum, alpha, beta)
                   values (:c, :s, :a, :m, :m, 0, 0, 0, :r, 0, :r, 1 + :r, 1 + :m - :r)"""
            ),
            list(rows),
        )
