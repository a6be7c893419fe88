"""Great Expectations suites: a good batch passes, a bad one fails naming the expectations."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign
from pipelines.errors import UserError, ValidationFailed
from pipelines.validation import suites, validate_interactions, validate_send_list
from tests.conftest import reset_tables

pytestmark = pytest.mark.slow

GOOD_DAY = date(2026, 4, 1)
BAD_DAY = date(2026, 4, 2)
EMPTY_DAY = date(2026, 4, 3)
LIST_DAY = date(2026, 4, 1)

TABLES = (
    "ops.feedback_holds, ops.feedback_volumes, ops.alerts, ops.quarantine, ops.ingested_files, "
    "ops.suppressions, ops.send_lists, "
    "ops.decisions, ops.arms, ops.campaigns, raw.interactions, raw.customers, raw.consents"
)


def _spec(name: str, offers: list[str]) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": name,
            "start_date": "2026-03-01",
            "parameters": {"offer_type": offers, "channel": ["email"]},
            "holdout_share": 0.1,
        }
    )


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict[str, int]:
    reset_tables(engine, TABLES)
    one = apply_campaign(engine, _spec("gx-one", ["credit_card", "loan", "savings_account"])).campaign_id
    two = apply_campaign(engine, _spec("gx-two", ["investment_product"])).campaign_id
    with engine.begin() as conn:
        arms = conn.execute(sa.text("select campaign_id, arm_key, arm_id from ops.arms")).all()
        ids = {f"{c}:{k.split('|')[0].split('=')[1]}": a for c, k, a in arms}
        conn.execute(
            sa.text("update ops.arms set active = false where arm_id = :a"),
            {"a": ids[f"{one}:savings_account"]},
        )
    return {
        "one": one,
        "two": two,
        "A": ids[f"{one}:credit_card"],
        "B": ids[f"{one}:loan"],
        "retired": ids[f"{one}:savings_account"],
        "other": ids[f"{two}:investment_product"],
    }


def _insert_events(engine: sa.Engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into raw.interactions (event_id, decision_id, customer_id, campaign_id, arm_id,
                       event_type, value, occurred_at, logical_date, source_file)
                   values (:event_id, :decision_id, :customer_id, :campaign_id, :arm_id, :event_type,
                       :value, :occurred_at, :logical_date, 'test.csv')"""
            ),
            rows,
        )


def _event(i: int, day: date, campaign: int, arm: int, *, at: datetime | None = None, kind="open", value=0):
    return {
        "event_id": f"{day}-{i}",
        "decision_id": f"dec{i}",
        "customer_id": f"cust{i}",
        "campaign_id": campaign,
        "arm_id": arm,
        "event_type": kind,
        "value": value,
        "occurred_at": at or datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=i % 24),
        "logical_date": day,
    }


def test_good_interactions_batch_passes(engine: sa.Engine, world: dict[str, int], test_home: Path) -> None:
    kinds = ["impression", "open", "click", "view", "dwell", "conversion"]
    rows = [
        _event(
            i,
            GOOD_DAY,
            world["one"],
            world["A"] if i % 2 else world["B"],
            kind=kinds[i % 6],
            value=120 if kinds[i % 6] == "conversion" else 0,
        )
        for i in range(30)
    ]
    rows.append(
        _event(99, GOOD_DAY, world["one"], world["A"], at=datetime(2026, 4, 1, 23, 59, 59, tzinfo=UTC))
    )
    # A late event of an earlier day, and one cut a minute after midnight: normal arrivals.
    rows.append(_event(98, GOOD_DAY, world["one"], world["A"], at=datetime(2026, 3, 28, 9, 0, tzinfo=UTC)))
    rows.append(_event(97, GOOD_DAY, world["one"], world["A"], at=datetime(2026, 4, 2, 0, 1, tzinfo=UTC)))
    _insert_events(engine, rows)
    report = validate_interactions(GOOD_DAY)
    assert report.success and report.failed == [] and report.evaluated == 9
    assert report.data_docs_path is not None and Path(report.data_docs_path).is_file()
    assert Path(report.data_docs_path).is_relative_to(test_home / "gx" / "data_docs")
    assert report.data_docs_index == str(test_home / "gx" / "data_docs" / "index.html")


def test_bad_interactions_batch_names_failed_expectations(engine: sa.Engine, world: dict[str, int]) -> None:
    rows = [_event(i, BAD_DAY, world["one"], world["A"]) for i in range(10)]
    # An arm of another campaign, and an event from after D's end plus ingestion's 1 h grace.
    rows.append(_event(50, BAD_DAY, world["one"], world["other"]))
    rows.append(_event(51, BAD_DAY, world["one"], world["A"], at=datetime(2026, 4, 3, 1, 0, tzinfo=UTC)))
    rows.append(_event(52, BAD_DAY, world["one"], 999_999))  # an arm that does not exist
    _insert_events(engine, rows)

    with pytest.raises(ValidationFailed) as info:
        validate_interactions(BAD_DAY)
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert "\n" not in message
    assert "arm_in_campaign (2 of 13 rows" in message and "occurred_at_not_in_future (1 of 13 rows" in message
    report = info.value.report
    assert report.failed == ["occurred_at_not_in_future", "arm_in_campaign"]

    again = validate_interactions(BAD_DAY, raise_on_failure=False)
    assert not again.success and again.failed == report.failed


def test_empty_day_passes(world: dict[str, int]) -> None:
    assert validate_interactions(EMPTY_DAY).success


def _insert_list(engine: sa.Engine, campaign: int, day: date, arms: list[int], groups: list[str]) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("delete from ops.decisions where campaign_id = :c and decision_date = :d"),
            {"c": campaign, "d": day},
        )
        conn.execute(
            sa.text(
                """insert into ops.decisions (decision_id, campaign_id, customer_id, arm_id, decision_date,
                       decided_at, policy, policy_version, propensity, selected_by, explored,
                       treatment_group, source)
                   values (:id, :c, :cust, :arm, :d, :at, 'thompson', 'test', :p, 'bandit', false,
                       :g, 'batch')"""
            ),
            [
                {
                    "id": f"{campaign}-{day}-{i}",
                    "c": campaign,
                    "cust": f"u{i:03d}",
                    "arm": arm,
                    "d": day,
                    "at": datetime.combine(day, time(6), tzinfo=UTC),
                    "p": 1.0 if group == "control" else 0.5,
                    "g": group,
                }
                for i, (arm, group) in enumerate(zip(arms, groups, strict=True))
            ],
        )


def test_good_send_list_passes(engine: sa.Engine, world: dict[str, int]) -> None:
    n = 200
    groups = ["control" if i % 10 == 0 else "treatment" for i in range(n)]  # 10% control
    arms = [world["A"] if g == "control" or i % 2 else world["B"] for i, g in enumerate(groups)]
    _insert_list(engine, world["one"], LIST_DAY, arms, groups)
    report = validate_send_list(world["one"], LIST_DAY, holdout_share=0.1)
    assert report.success and report.rows == n and report.evaluated == 8


def test_bad_send_list_names_failed_expectations(engine: sa.Engine, world: dict[str, int]) -> None:
    n = 200
    groups = ["control" if i % 2 == 0 else "treatment" for i in range(n)]  # 50% control vs 10%
    arms = [world["retired"] if i == 1 else world["other"] if i == 3 else world["A"] for i in range(n)]
    day = LIST_DAY + timedelta(days=1)
    _insert_list(engine, world["one"], day, arms, groups)
    with pytest.raises(ValidationFailed) as info:
        validate_send_list(world["one"], day, holdout_share=0.1)
    report = info.value.report
    assert report.failed == ["arm_allowed", "control_share"]
    assert "arm_allowed (2 of 200 rows" in str(info.value) and "control_share (observed 0.5)" in str(
        info.value
    )


def test_empty_send_list_fails(world: dict[str, int]) -> None:
    with pytest.raises(ValidationFailed, match="list_not_empty") as info:
        validate_send_list(world["one"], date(2030, 1, 1), holdout_share=0.1, data_docs=False)
    assert info.value.report.rows == 0 and info.value.report.data_docs_path is None


@pytest.mark.parametrize(
    ("holdout", "n", "low", "high"),
    [
        (0.1, 10_000, 0.07, 0.13),  # 3 SE = 0.009 < 0.03: the floor applies
        (0.1, 100, 0.01, 0.19),  # 3 SE = 0.09
        (0.0, 50, 0.0, 0.03),
    ],
)
def test_control_share_bounds(holdout: float, n: int, low: float, high: float) -> None:
    assert suites().control_share_bounds(holdout, n) == pytest.approx((low, high))
