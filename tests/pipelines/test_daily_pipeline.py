"""The daily stages end to end on real PostgreSQL, dbt and Great Expectations (no Airflow).

One small world per module: 2,000 generated customers, the two example campaigns,
one day landed, validated, built, decided and published.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import daily
from pipelines.campaign_spec import load_campaign
from pipelines.campaign_store import apply_campaign, load_campaign_by_name
from pipelines.decide import decide_campaign
from pipelines.demo import write_customer_files
from pipelines.errors import NotFound, UserError, ValidationFailed
from pipelines.publish import export_list, publish_list
from pipelines.settings import get_settings
from tests.conftest import reset_tables

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 2)
NEXT = date(2026, 11, 3)
DECISION_COLUMNS = "decision_id, customer_id, arm_id, propensity, treatment_group, explored, seed"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> sa.Engine:
    reset_tables(engine)
    for name in ("card_cashback", "cross_sell"):
        apply_campaign(engine, load_campaign(REPO / f"campaigns/{name}.yaml"))
    write_customer_files(get_settings().inbox_dir, DAY, 2_000, seed=3)
    daily.ingest(DAY)
    daily.validate_batch(DAY)
    daily.transform(DAY)
    for campaign_id in daily.active_campaigns(DAY):
        daily.decide(campaign_id, DAY)
        daily.publish(campaign_id, DAY)
    return engine


def decisions(engine: sa.Engine, campaign_id: int, day: date) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text(
                f"select {DECISION_COLUMNS} from ops.decisions "
                "where campaign_id = :c and decision_date = :d order by customer_id"
            ),
            conn,
            params={"c": campaign_id, "d": day},
        )


def test_published_lists_respect_audience_consent_and_holdout(world: sa.Engine) -> None:
    campaign = load_campaign_by_name(world, "cross-sell")
    frame = decisions(world, campaign.campaign_id, DAY)
    assert 0 < len(frame) <= campaign.spec.audience.max_customers
    assert frame["customer_id"].is_unique
    assert ((frame["propensity"] > 0) & (frame["propensity"] <= 1)).all()
    control = frame["treatment_group"] == "control"
    assert abs(control.mean() - campaign.spec.holdout_share) < 0.04
    assert (
        frame.loc[control, "arm_id"] == campaign.control_arm_id
    ).mean() > 0.8  # default arm, where allowed
    assert (frame.loc[control, "propensity"] == 1.0).all()
    with world.connect() as conn:
        no_consent = conn.execute(
            sa.text(
                """select count(*) from ops.decisions d join ops.arms a using (arm_id)
                   where d.decision_date = :d and not exists (
                       select 1 from raw.consents c where c.customer_id = d.customer_id
                         and c.channel = a.channel and c.granted)"""
            ),
            {"d": DAY},
        ).scalar_one()
        status = conn.execute(
            sa.text("select status, n_rows from ops.send_lists where campaign_id = :c and list_date = :d"),
            {"c": campaign.campaign_id, "d": DAY},
        ).one()
    assert no_consent == 0
    assert status == ("published", len(frame))
    path, rows = export_list(world, campaign, DAY, "csv")
    exported = pd.read_csv(path)
    assert rows == len(exported) == len(frame)
    assert {"offer_type", "channel", "time_of_day", "treatment_group", "propensity"} <= set(exported.columns)
    parquet, _ = export_list(world, campaign, DAY, "parquet")
    assert pd.read_parquet(parquet)["decision_id"].tolist() == exported["decision_id"].tolist()


def test_rerunning_a_published_day_changes_nothing(world: sa.Engine) -> None:
    campaign = load_campaign_by_name(world, "card-cashback")
    before = decisions(world, campaign.campaign_id, DAY)
    result = decide_campaign(world, campaign, DAY)
    assert result.status == "published"
    pd.testing.assert_frame_equal(decisions(world, campaign.campaign_id, DAY), before)
    assert daily.monitor(DAY) == daily.monitor(DAY)


def test_a_draft_list_is_reproduced_exactly_and_a_retry_leaves_no_duplicates(world: sa.Engine) -> None:
    campaign = load_campaign_by_name(world, "card-cashback")
    first = decide_campaign(world, campaign, NEXT)
    rows_first = decisions(world, campaign.campaign_id, NEXT)
    # The run "crashed" after decide: the retry decides again, then publishes.
    second = decide_campaign(world, campaign, NEXT)
    pd.testing.assert_frame_equal(decisions(world, campaign.campaign_id, NEXT), rows_first)
    assert first.seed == second.seed and first.n_rows == second.n_rows == len(rows_first) > 0
    published = publish_list(world, campaign, NEXT)
    assert published.n_rows == len(rows_first)
    assert len(pd.read_csv(published.csv_path)) == len(rows_first)


def test_a_failing_suite_publishes_nothing(world: sa.Engine) -> None:
    campaign = load_campaign_by_name(world, "cross-sell")
    other = load_campaign_by_name(world, "card-cashback")
    day = date(2026, 11, 4)
    decide_campaign(world, campaign, day)
    with world.begin() as conn:  # corrupt the draft: one customer gets another campaign's arm
        conn.execute(
            sa.text(
                """update ops.decisions set arm_id = :foreign where decision_id = (
                       select min(decision_id) from ops.decisions
                       where campaign_id = :c and decision_date = :d)"""
            ),
            {"foreign": other.arm_ids[0], "c": campaign.campaign_id, "d": day},
        )
    with pytest.raises(ValidationFailed, match="send_list"):
        publish_list(world, campaign, day)
    with world.connect() as conn:
        status = conn.execute(
            sa.text("select status, csv_path from ops.send_lists where campaign_id = :c and list_date = :d"),
            {"c": campaign.campaign_id, "d": day},
        ).one()
    assert status == ("draft", None)
    with pytest.raises(UserError, match="is a draft, not published yet"):
        export_list(world, campaign, day, "csv")


def test_missing_list_and_unknown_campaign_are_clear_errors(world: sa.Engine) -> None:
    campaign = load_campaign_by_name(world, "cross-sell")
    with pytest.raises(NotFound, match="no send list for campaign 'cross-sell' on 2027-01-01"):
        export_list(world, campaign, date(2027, 1, 1), "csv")
    with pytest.raises(NotFound, match="unknown campaign 'nope'; known: card-cashback, cross-sell"):
        load_campaign_by_name(world, "nope")
