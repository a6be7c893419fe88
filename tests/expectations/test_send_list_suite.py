"""The send_list suite on a list that breaks one rule only: a customer listed twice.

ops.decisions cannot hold that list (decision_id is the primary key and one batch decision
per campaign, customer and day is a unique index), so the second row is added in the query
GX reads, the way a bug in a future decide step or a broken index would show it: same
customer, its own decision_id. The suite runs through GX's PostgreSQL engine, as in
production (pipelines.validation).
"""

from __future__ import annotations

from datetime import date

import great_expectations as gx
import pytest
import sqlalchemy as sa

from pipelines.campaign_spec import CampaignSpec
from pipelines.campaign_store import apply_campaign, load_campaign_by_id
from pipelines.validation import suites
from tests.expectations.test_gx_suites import _insert_list
from tests.pipelines.seed_rows import truncate_all

pytestmark = pytest.mark.slow

DAY = date(2026, 4, 20)
N = 200


@pytest.fixture(scope="module")
def listed(engine: sa.Engine) -> int:
    """A good list of 200 rows (every 10th control, holdout 0.1) for campaign `dup`."""
    truncate_all(engine)
    spec = CampaignSpec.model_validate(
        {"name": "dup", "start_date": "2026-04-01", "holdout_share": 0.1,
         "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email"]}}
    )  # fmt: skip
    campaign = load_campaign_by_id(engine, apply_campaign(engine, spec).campaign_id)
    groups = ["control" if i % 10 == 0 else "treatment" for i in range(N)]
    arms = [
        campaign.control_arm_id if g == "control" else campaign.arm_ids[i % 2] for i, g in enumerate(groups)
    ]
    _insert_list(engine, campaign.campaign_id, DAY, arms, groups)
    return campaign.campaign_id


def _validate(database_url: str, query: str, n_rows: int) -> list[str]:
    """Names of the failed expectations of the real suite on ``query``'s rows."""
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_postgres(name="pg", connection_string=database_url)
    try:
        asset = source.add_query_asset(name="list", query=query)
        batch = asset.add_batch_definition_whole_table("all").get_batch()
        result = batch.validate(suites().send_list_suite(0.1, n_rows))
    finally:
        source.get_engine().dispose()
    return [r.expectation_config.meta["name"] for r in result.results if not r.success]


def test_the_list_as_stored_passes(database_url: str, listed: int) -> None:
    assert _validate(database_url, suites().send_list_query(listed, DAY), N) == []


def test_a_customer_listed_twice_fails_one_row_per_customer(database_url: str, listed: int) -> None:
    """Row u005 (treatment) again under decision_id <id>-again: 201 rows, 201 distinct decision ids,
    200 distinct customers. Only `one_row_per_customer` fails (the control share 20/201 is fine)."""
    base = suites().send_list_query(listed, DAY)
    twice = f"""
        select * from ({base}) as l
        union all
        select decision_id || '-again', customer_id, arm_id, propensity, treatment_group, is_control,
               arm_allowed
        from ({base}) as l where customer_id = 'u005'
    """
    assert _validate(database_url, twice, N + 1) == ["one_row_per_customer"]
