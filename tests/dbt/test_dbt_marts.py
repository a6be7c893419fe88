"""dbt build on a small known world: exact mart values, attribution, segments, failures.

One `dbt build` per module (about 10-20 s); the seeded world is described next to SEED.
As of 2026-03-20, campaign `conv` (conversion reward, 7-day window, value 100, email 0.5 /
sms 2.0 per send) and campaign `eng` (weighted engagement, 3-day window, value 60).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign
from pipelines.domain import SEGMENTS, segment_of
from pipelines.errors import PipelineError
from pipelines.transform import DbtResult, dbt_env, run_dbt
from tests.conftest import reset_tables

pytestmark = pytest.mark.slow

AS_OF = date(2026, 3, 20)
Z = 1.959964

TABLES = (
    "ops.feedback_holds, ops.feedback_volumes, ops.alerts, ops.quarantine, ops.ingested_files, "
    "ops.suppressions, ops.send_lists, "
    "ops.decisions, ops.arms, ops.campaigns, raw.interactions, raw.customers, raw.consents"
)

CONV = {
    "name": "conv",
    "start_date": "2026-03-01",
    "parameters": {"offer_type": ["credit_card", "loan", "savings_account"], "channel": ["email", "sms"]},
    "channel_costs": {"email": 0.5, "sms": 2.0},
    "reward": {"kind": "conversion", "conversion_value": 100},
    "attribution_window_days": 7,
    "holdout_share": 0.2,
}
ENG = {
    "name": "eng",
    "start_date": "2026-03-01",
    "parameters": {"offer_type": ["investment_product"], "channel": ["app_push"]},
    "reward": {
        "kind": "weighted_engagement",
        "weights": {"open": 0.25, "click": 0.5, "view": 0.1, "dwell": 0.05, "conversion": 1.0},
        "conversion_value": 60,
    },
    "attribution_window_days": 3,
    "holdout_share": 0.1,
}

# customer -> snapshots (date, age, income). c5 has none; c4's 03-25 snapshot is in the future.
SNAPSHOTS = {
    "c1": [("2026-03-01", 29, 39999.99), ("2026-03-10", 30, 40000)],
    "c2": [("2026-03-01", 55, 100000)],
    "c3": [("2026-03-01", 40, 120000)],
    "c4": [("2026-03-05", 20, 10000), ("2026-03-25", 70, 500000)],
}
# A deployment's own features (CUSTOMER_EXTRA_FEATURES) per snapshot; the others hold {}.
EXTRA_FEATURES = {
    ("c1", "2026-03-01"): {"region": "north", "credit_score": 610.5},
    ("c1", "2026-03-10"): {"region": "south", "credit_score": 720},
    ("c2", "2026-03-01"): {"region": "north"},
}
GRID_AGES = (0, 29, 30, 54, 55, 120)
GRID_INCOMES = (0, 39999.99, 40000, 99999.99, 100000, 1_000_000)

# decision -> (campaign, customer, arm, date, group, explored, recorded segment)
DECISIONS = {
    "d1": ("conv", "c1", "A", "2026-03-01", "treatment", False, None),
    "d2": ("conv", "c2", "A", "2026-03-01", "treatment", True, None),
    "d3": ("conv", "c3", "B", "2026-03-01", "control", False, None),
    "d4": ("conv", "c1", "A", "2026-03-15", "treatment", True, None),
    "d5": ("conv", "c2", "B", "2026-03-15", "treatment", False, "senior_high"),
    "d6": ("conv", "c5", "B", "2026-03-15", "control", False, None),
    "d7": ("conv", "c4", "A", "2026-03-15", "treatment", True, None),
    "d8": ("conv", "c3", "A", "2026-03-21", "treatment", False, None),  # after as_of: ignored
    "d9": ("conv", "c2", "A", "2026-03-20", "treatment", False, None),  # made on as_of: not yet
    "e1": ("eng", "c1", "D", "2026-03-01", "treatment", False, None),
    "e2": ("eng", "c2", "D", "2026-03-01", "treatment", False, None),
    "e3": ("eng", "c3", "D", "2026-03-19", "control", False, None),
}
# (decision, event type, value, day); logical_date = day.
EVENTS = [
    ("d1", "open", 0, "2026-03-02"),
    ("d1", "conversion", 0, "2026-03-05"),  # inside: revenue = campaign value 100
    ("d2", "click", 0, "2026-03-03"),
    ("d2", "conversion", 80, "2026-03-09"),  # one day after the window: not attributed
    ("d3", "conversion", 250, "2026-03-08"),  # last day of the window: attributed
    ("d4", "conversion", 30, "2026-03-21"),  # landed after as_of: invisible, d4 stays pending
    ("d5", "conversion", 40, "2026-03-16"),  # young, converted early: still pending
    ("d7", "open", 0, "2026-03-15"),
    ("e1", "open", 0, "2026-03-01"),
    ("e1", "click", 0, "2026-03-01"),
    ("e1", "click", 0, "2026-03-02"),
    ("e1", "dwell", 0, "2026-03-05"),  # outside the 3-day window
    ("e2", "open", 0, "2026-03-01"),
    ("e2", "click", 0, "2026-03-02"),
    ("e2", "view", 0, "2026-03-02"),
    ("e2", "conversion", 0, "2026-03-04"),
    ("e3", "click", 0, "2026-03-20"),
    ("d9", "conversion", 10, "2026-03-20"),
]


def _seed(engine: sa.Engine) -> dict[str, int]:
    reset_tables(engine, TABLES)
    ids = {}
    for spec in (CONV, ENG):
        ids[spec["name"]] = apply_campaign(engine, CampaignSpec.model_validate(spec)).campaign_id
    with engine.begin() as conn:
        keys = dict(conn.execute(sa.text("select arm_key, arm_id from ops.arms")).all())
        arms = {
            "A": keys["offer_type=credit_card|channel=email"],
            "B": keys["offer_type=loan|channel=sms"],
            "C": keys["offer_type=savings_account|channel=email"],
            "D": keys["offer_type=investment_product|channel=app_push"],
        }
        conn.execute(sa.text("update ops.arms set active = false where arm_id = :a"), {"a": arms["C"]})
        rows = [
            {"d": d, "c": c, "age": age, "inc": inc}
            for c, snaps in SNAPSHOTS.items()
            for d, age, inc in snaps
        ] + [
            {"d": "2026-03-01", "c": f"g_{age}_{inc}", "age": age, "inc": inc}
            for age in GRID_AGES
            for inc in GRID_INCOMES
        ]
        conn.execute(
            sa.text(
                """insert into raw.customers (snapshot_date, customer_id, age, gender, income,
                       loyalty_points, tenure_years, products_held, digital_engagement, website_visits,
                       past_purchases, source_file)
                   values (cast(:d as date), :c, :age, 'F', :inc, 10, 2.5, 1, 0.5, 3, 1, 'seed')"""
            ),
            rows,
        )
        for (customer, day), extra in EXTRA_FEATURES.items():
            conn.execute(
                sa.text(
                    "update raw.customers set extra_features = cast(:x as jsonb) "
                    "where customer_id = :c and snapshot_date = :d"
                ),
                {"x": json.dumps(extra), "c": customer, "d": date.fromisoformat(day)},
            )
        conn.execute(
            sa.text(
                """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                       decided_at, segment, policy, policy_version, propensity, selected_by, explored,
                       treatment_group, source)
                   values (:id, :cid, :cust, :arm, cast(:d as date), cast(:d as timestamptz), :seg,
                       'thompson', 'test', :p, 'bandit', :x, :g, 'batch')"""
            ),
            [
                {
                    "id": did,
                    "cid": ids[camp],
                    "cust": cust,
                    "arm": arms[arm],
                    "d": d,
                    "seg": seg,
                    "p": 1.0 if group == "control" else 0.5,
                    "x": explored,
                    "g": group,
                }
                for did, (camp, cust, arm, d, group, explored, seg) in DECISIONS.items()
            ],
        )
        conn.execute(
            sa.text(
                """insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id,
                       event_type, value, occurred_at, logical_date, source_file)
                   select :eid, d.decision_id, d.customer_id, d.campaign_id, d.arm_id, :t, :v,
                          :at, cast(:day as date), 'seed'
                   from ops.decisions d where d.decision_id = :did"""
            ),
            [
                {
                    "eid": f"ev{i}",
                    "did": did,
                    "t": kind,
                    "v": value,
                    "day": day,
                    "at": datetime.combine(date.fromisoformat(day), time(12), tzinfo=UTC),
                }
                for i, (did, kind, value, day) in enumerate(EVENTS)
            ],
        )
    return {**ids, **arms}


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict[str, int]:
    return _seed(engine)


@pytest.fixture(scope="module")
def built(world: dict[str, int]) -> DbtResult:
    return run_dbt(AS_OF)


def _rows(engine: sa.Engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def test_build_succeeds_and_counts(built: DbtResult, test_home) -> None:
    assert built.success
    assert built.models_built == 16  # int_arm_segment_daily since the marts are incremental
    assert built.tests_failed == 0
    assert built.tests_passed >= 100  # data tests + 5 unit tests
    assert built.target_path.startswith(str(test_home))


def test_arm_stats(engine: sa.Engine, world: dict[str, int], built: DbtResult) -> None:
    rows = {r["arm_id"]: r for r in _rows(engine, "select * from analytics.arm_stats")}
    assert len(rows) == 7  # 6 arms of conv (never-sent ones at the prior) + 1 of eng
    cols = ("sends", "matured", "pending", "opens", "clicks", "conversions", "revenue", "reward_sum")
    expected = {
        "A": (4, 2, 2, 2, 1, 1, 100, 1, 2, 2),
        "B": (3, 1, 2, 0, 0, 2, 290, 1, 2, 1),  # d5 converted early but is pending
        "C": (0, 0, 0, 0, 0, 0, 0, 0, 1, 1),
        "D": (3, 2, 1, 2, 3, 1, 60, 1.75, 2.75, 1.25),
    }
    for arm, values in expected.items():
        row = rows[world[arm]]
        got = tuple(float(row[c]) for c in (*cols, "alpha", "beta"))
        assert got == pytest.approx(values), arm
    assert rows[world["C"]]["active"] is False
    assert rows[world["D"]]["campaign_id"] == world["eng"]


def test_segment_arm_stats(engine: sa.Engine, world: dict[str, int], built: DbtResult) -> None:
    rows = _rows(
        engine,
        "select campaign_id, segment, arm_id, sends, matured, pending, alpha, beta "
        "from analytics.segment_arm_stats",
    )
    got = {
        (r["campaign_id"], r["segment"], r["arm_id"]): (
            r["sends"],
            r["matured"],
            r["pending"],
            float(r["alpha"]),
            float(r["beta"]),
        )
        for r in rows
    }
    c, e, a, b, d = world["conv"], world["eng"], world["A"], world["B"], world["D"]
    assert got == {
        (c, "young_low", a): (2, 1, 1, 2.0, 1.0),  # d1 (snapshot of 03-01) + d7 pending
        (c, "senior_high", a): (1, 1, 0, 1.0, 2.0),  # d2: conversion after the window
        (c, "middle_mid", a): (1, 0, 1, 1.0, 1.0),  # d4: c1's snapshot of 03-10
        (c, "middle_high", b): (1, 1, 0, 2.0, 1.0),  # d3
        (c, "senior_high", b): (1, 0, 1, 1.0, 1.0),  # d5: recorded segment, still pending
        (c, "unknown", b): (1, 0, 1, 1.0, 1.0),  # d6: no snapshot at all
        (e, "young_low", d): (1, 1, 0, 1.75, 1.25),  # e1: open + click, dwell too late
        (e, "senior_high", d): (1, 1, 0, 2.0, 1.0),  # e2: capped at 1
        (e, "middle_high", d): (1, 0, 1, 1.0, 1.0),  # e3 pending
    }


def test_customer_features(engine: sa.Engine, built: DbtResult) -> None:
    rows = {
        r["customer_id"]: r
        for r in _rows(engine, "select * from analytics.customer_features where customer_id like 'c%'")
    }
    assert set(rows) == {"c1", "c2", "c3", "c4"}  # c5 has no snapshot
    cols = (
        "segment",
        "age",
        "sends_90d",
        "opens_90d",
        "clicks_90d",
        "conversions_90d",
        "days_since_last_conversion",
        "days_since_last_send",
    )
    expected = {
        "c1": ("middle_mid", 30, 3, 2, 1, 1, 15, 5),
        "c2": ("senior_high", 55, 3, 1, 2, 3, 4, 5),
        "c3": ("middle_high", 40, 2, 0, 1, 1, 12, 1),
        "c4": ("young_low", 20, 1, 1, 0, 0, None, 5),  # the 03-25 snapshot is not seen yet
    }
    assert {c: tuple(rows[c][k] for k in cols) for c in rows} == expected


def test_customer_segments_match_domain_rule(engine: sa.Engine, built: DbtResult) -> None:
    rows = _rows(engine, "select age, income, segment from analytics.customer_features")
    ages = np.array([r["age"] for r in rows])
    incomes = np.array([float(r["income"]) for r in rows])
    expected = [SEGMENTS[i] for i in segment_of(ages, incomes)]
    assert [r["segment"] for r in rows] == expected
    assert len(rows) == 4 + len(GRID_AGES) * len(GRID_INCOMES)


def test_training_examples(engine: sa.Engine, world: dict[str, int], built: DbtResult) -> None:
    rows = {r["decision_id"]: r for r in _rows(engine, "select * from analytics.training_examples")}
    assert set(rows) == {"d1", "d2", "d3", "e1", "e2"}  # matured only
    d1 = rows["d1"]
    assert (d1["segment"], d1["age"], float(d1["income"]), d1["snapshot_date"]) == (
        "young_low",
        29,
        39999.99,
        date(2026, 3, 1),
    )
    assert (d1["offer_type"], d1["channel"], d1["discount"], d1["cta"]) == (
        "credit_card",
        "email",
        None,
        None,
    )
    assert (d1["reward"], d1["converted"], d1["revenue"], d1["propensity"]) == (1, True, 100, 0.5)
    assert (rows["d2"]["reward"], rows["d2"]["converted"]) == (0, False)
    assert rows["d3"]["treatment_group"] == "control" and rows["d3"]["revenue"] == 250
    assert rows["d2"]["segment"] == "senior_high"
    assert rows["e1"]["reward"] == pytest.approx(0.75)
    assert rows["e2"]["reward"] == 1 and rows["e2"]["revenue"] == 60


def test_extra_features_follow_the_snapshot_of_the_decision(
    engine: sa.Engine, built: DbtResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jsonb object rides through the marts as of each decision's snapshot, and the
    training-set query expands the configured features into columns (missing: null)."""
    from pipelines.retrain.data import load_training_examples
    from pipelines.settings import get_settings

    mart = dict(_rows_of(engine, "select customer_id, extra_features from analytics.customer_features"))
    assert (mart["c1"], mart["c2"], mart["c3"]) == (
        {"region": "south", "credit_score": 720},
        {"region": "north"},
        {},
    )
    monkeypatch.setenv("CUSTOMER_EXTRA_FEATURES", "region:categorical,credit_score:numeric")
    get_settings.cache_clear()
    try:
        examples = load_training_examples(engine, as_of=AS_OF).set_index("decision_id")
    finally:
        monkeypatch.delenv("CUSTOMER_EXTRA_FEATURES")
        get_settings.cache_clear()
    assert "extra_features" not in examples.columns
    got = {d: (examples.at[d, "region"], examples.at[d, "credit_score"]) for d in ("d1", "e1")}
    # d1 and e1 were decided on 03-01, before c1's 03-10 snapshot: they saw north / 610.5.
    assert got == {"d1": ("north", 610.5), "e1": ("north", 610.5)}
    assert examples.at["d2", "region"] == "north" and np.isnan(examples.at["d2", "credit_score"])
    assert pd.isna(examples.at["d3", "region"])  # c3's snapshot holds no extra feature


def _rows_of(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_campaign_daily_kpis(engine: sa.Engine, world: dict[str, int], built: DbtResult) -> None:
    rows = {
        (r["campaign_id"], r["kpi_date"]): r
        for r in _rows(engine, "select * from analytics.campaign_daily_kpis")
    }
    c, e = world["conv"], world["eng"]
    assert set(rows) == {
        (c, date(2026, 3, 1)),
        (c, date(2026, 3, 15)),
        (e, date(2026, 3, 1)),
        (e, date(2026, 3, 19)),
    }

    day1 = rows[(c, date(2026, 3, 1))]
    assert (day1["sends"], day1["treatment_sends"], day1["treatment_conversions"]) == (3, 2, 1)
    assert (day1["control_sends"], day1["control_conversions"], day1["pending"]) == (1, 1, 0)
    assert day1["treatment_cr"] == pytest.approx(0.5) and day1["control_cr"] == pytest.approx(1.0)
    se = math.sqrt(0.5 * 0.5 / 2)
    assert day1["abs_lift"] == pytest.approx(-0.5)
    assert day1["abs_lift_ci_low"] == pytest.approx(-0.5 - Z * se)
    assert day1["abs_lift_ci_high"] == pytest.approx(-0.5 + Z * se)
    log_se = math.sqrt(1 / 1 - 1 / 2 + 1 / 1 - 1 / 1)
    assert day1["rel_lift"] == pytest.approx(-0.5)
    assert day1["rel_lift_ci_low"] == pytest.approx(math.exp(math.log(0.5) - Z * log_se) - 1)
    assert day1["rel_lift_ci_high"] == pytest.approx(math.exp(math.log(0.5) + Z * log_se) - 1)
    assert day1["exploration_rate"] == pytest.approx(0.5)
    assert float(day1["cost"]) == pytest.approx(3.0)  # 2 emails at 0.5 + 1 sms at 2.0
    assert float(day1["revenue"]) == pytest.approx(350)
    assert float(day1["roi"]) == pytest.approx((350 - 3) / 3)

    day15 = rows[(c, date(2026, 3, 15))]
    assert (day15["treatment_sends"], day15["treatment_conversions"], day15["control_sends"]) == (3, 1, 1)
    assert day15["abs_lift"] == pytest.approx(1 / 3)
    assert day15["abs_lift_ci_low"] == pytest.approx(1 / 3 - Z * math.sqrt((1 / 3) * (2 / 3) / 3))
    assert day15["rel_lift"] is None and day15["rel_lift_ci_low"] is None  # control rate 0
    assert day15["exploration_rate"] == pytest.approx(2 / 3)
    assert day15["pending"] == 4
    assert float(day15["cost"]) == pytest.approx(5.0)
    assert float(day15["roi"]) == pytest.approx(7.0)

    eng1 = rows[(e, date(2026, 3, 1))]
    assert eng1["control_sends"] == 0 and eng1["control_cr"] is None and eng1["abs_lift"] is None
    assert float(eng1["cost"]) == 0 and eng1["roi"] is None and float(eng1["revenue"]) == 60
    eng19 = rows[(e, date(2026, 3, 19))]
    assert eng19["treatment_sends"] == 0 and eng19["exploration_rate"] is None and eng19["pending"] == 1


def test_models_live_in_analytics_schema(engine: sa.Engine, built: DbtResult) -> None:
    names = {
        r["table_name"]
        for r in _rows(
            engine, "select table_name from information_schema.tables where table_schema = 'analytics'"
        )
    }
    assert {
        "arm_stats",
        "segment_arm_stats",
        "customer_features",
        "training_examples",
        "campaign_daily_kpis",
        "stg_raw__interactions",
    } <= names
    assert not _rows(engine, "select 1 from information_schema.schemata where schema_name like 'analytics_%'")


def test_failing_test_raises_one_line_naming_it(engine: sa.Engine, world: dict[str, int], built) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("update ops.decisions set segment = 'bogus' where decision_id = 'd1'"))
    try:
        with pytest.raises(PipelineError) as info:
            run_dbt(AS_OF, select="stg_ops__decisions")
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("update ops.decisions set segment = null where decision_id = 'd1'"))
    message = str(info.value)
    assert "\n" not in message
    assert "accepted_values_stg_ops__decisions_segment" in message and "failed (1 failing row)" in message
    assert isinstance(info.value.result, DbtResult) and info.value.result.tests_failed == 1


def test_dbt_env_from_urls() -> None:
    assert dbt_env("postgresql+psycopg://alice:s3cret@db.example:6543/co") == {
        "DBT_HOST": "db.example",
        "DBT_PORT": "6543",
        "DBT_USER": "alice",
        "DBT_PASSWORD": "s3cret",
        "DBT_DBNAME": "co",
    }
    socket = dbt_env("postgresql+psycopg://postgres:@/campaignopt?host=/home/u/.campaignopt/pgdata")
    assert socket["DBT_HOST"] == "/home/u/.campaignopt/pgdata"
    assert (socket["DBT_PORT"], socket["DBT_USER"], socket["DBT_DBNAME"]) == (
        "5432",
        "postgres",
        "campaignopt",
    )
    with pytest.raises(PipelineError):
        dbt_env("postgresql+psycopg://postgres@localhost")
