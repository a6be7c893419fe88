"""The decide step partitioned over (campaign, customer-hash bucket) (issue 11, part 2).

World: 900 customers; campaign `wide` (thompson_blend with a real XGBoost model, 2 offers x
email/sms; a third of the customers consented to SMS only, a few to nothing) and campaign
`capped` (rotation, at most 500 customers a day: a subset rule over the whole audience). The
list of a day — every customer's arm, propensity and group — must be the same for 1, 4 and 16
buckets and whatever order the buckets run in; a list is complete only when every bucket of one
run is decided; re-runs and a changed bucket count leave one decision per customer.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from ml.scoring import ResponseModel
from ml.synthetic import make_training_examples
from ml.train import TrainConfig, train_model
from pipelines import decide as decide_mod
from pipelines.campaign_store import Campaign
from pipelines.decide import ModelHandle, decide_campaign
from pipelines.decide_buckets import ListIncomplete, decide_bucket, finish_list
from pipelines.publish import publish_list
from pipelines.transform import run_dbt
from tests.pipelines.seed_rows import (
    add_campaign,
    insert_consents,
    insert_customers,
    noon,
    random_customers,
    truncate_all,
)

pytestmark = pytest.mark.slow

D = date(2026, 7, 1)
WIDE = {
    "name": "wide",
    "start_date": "2026-06-01",
    "parameters": {"offer_type": ["credit_card", "loan"], "channel": ["email", "sms"]},
    "policy": {"name": "thompson_blend"},
    "holdout_share": 0.2,
}
CAPPED = {
    "name": "capped",
    "start_date": "2026-06-01",
    "audience": {"max_customers": 500},
    "parameters": {"offer_type": ["credit_card", "savings_account", "loan"], "channel": ["email"]},
    "policy": {"name": "rotation", "params": {"period": 7}},
    "holdout_share": 0.1,
}
COLUMNS = "customer_id, arm_id, propensity, treatment_group, selected_by, strategy, model_score, shard"


@pytest.fixture(scope="module")
def world(engine: sa.Engine) -> dict[str, Campaign]:
    truncate_all(engine)
    campaigns = {"wide": add_campaign(engine, WIDE), "capped": add_campaign(engine, CAPPED)}
    customers = random_customers(900, seed=11, prefix="p")
    insert_customers(engine, customers, date(2026, 6, 1))
    consents = []
    for i, c in enumerate(customers):
        if i % 3:
            consents.append((c["customer_id"], "email", noon(date(2026, 6, 1)), i % 29 != 1))
        consents.append((c["customer_id"], "sms", noon(date(2026, 6, 1)), i % 2 == 0))
    insert_consents(engine, consents)
    run_dbt(D)
    return campaigns


@pytest.fixture(scope="module")
def model() -> ModelHandle:
    """A real champion-shaped model: XGBoost trained on synthetic logged decisions."""
    # a week of validation, as when the capacity tests were written: their lists depend on this model
    config = TrainConfig(n_estimators=40, validation_days=7)
    fitted = train_model(make_training_examples(4_000, seed=3), config)
    response = ResponseModel(fitted.model, fitted.spec)
    return ModelHandle(
        "7", lambda c, a, allowed=None: response.score_matrix(c, a, allowed=allowed), 0.6, response
    )


def _list(engine: sa.Engine, campaign: Campaign) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text(
                f"select {COLUMNS} from ops.decisions where campaign_id = :c and decision_date = :d "
                "and source = 'batch' order by customer_id"
            ),
            conn,
            params={"c": campaign.campaign_id, "d": D},
        )


def _decide_in_order(engine, campaign, n_buckets: int, order: list[int], run_id: str, model) -> None:
    for bucket in order:
        decide_bucket(engine, campaign, D, bucket, n_buckets, run_id, model, None)
    finish_list(engine, campaign, D, n_buckets, run_id)


def test_the_list_is_the_same_for_1_4_and_16_buckets_in_any_order(
    engine: sa.Engine, world: dict[str, Campaign], model: ModelHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide, capped = world["wide"], world["capped"]
    decide_campaign(engine, wide, D, model=model)
    decide_campaign(engine, capped, D)
    whole_wide, whole_capped = _list(engine, wide), _list(engine, capped)
    # What the lists must hold, by hand: every customer with a consent once (2 in 3 have email,
    # 1 in 2 SMS); the capped campaign its 500; the model scored the wide campaign's treatment.
    assert len(whole_wide) == 900 - len([i for i in range(900) if i % 3 == 0 and i % 2 == 1]) - len(
        [i for i in range(900) if i % 3 and i % 29 == 1 and i % 2 == 1]
    )
    assert len(whole_capped) == 500 and whole_capped["strategy"].nunique() == 3
    treated = whole_wide["treatment_group"] == "treatment"
    assert whole_wide.loc[treated, "model_score"].notna().all()
    assert 0.15 < (~treated).mean() < 0.25 and whole_wide["shard"].nunique() == 64

    monkeypatch.setattr(decide_mod, "CHUNK", 37)  # many scoring calls, each of whole shards
    for n_buckets, order in ((4, [3, 1, 0, 2]), (16, [*range(15, -1, -2), *range(0, 16, 2)])):
        _decide_in_order(engine, wide, n_buckets, order, f"run-{n_buckets}", model)
        _decide_in_order(engine, capped, n_buckets, order, f"run-{n_buckets}", None)
        pd.testing.assert_frame_equal(_list(engine, wide), whole_wide)
        pd.testing.assert_frame_equal(_list(engine, capped), whole_capped)
        with engine.connect() as conn:
            n_rows = conn.execute(
                sa.text("select n_rows from ops.send_lists where campaign_id = :c and list_date = :d"),
                {"c": wide.campaign_id, "d": D},
            ).scalar()
        assert n_rows == len(whole_wide)


def test_a_list_is_complete_only_with_every_bucket_of_one_run(
    engine: sa.Engine, world: dict[str, Campaign], model: ModelHandle
) -> None:
    wide = world["wide"]
    decide_campaign(engine, wide, D, model=model)
    whole = _list(engine, wide)
    for bucket in (0, 2, 3):
        decide_bucket(engine, wide, D, bucket, 4, "run-a", model, None)
    status = "select status from ops.send_lists where campaign_id = :c and list_date = :d"
    with engine.connect() as conn:
        assert conn.execute(sa.text(status), {"c": wide.campaign_id, "d": D}).scalar() == "deciding"
    with pytest.raises(ListIncomplete, match=r"bucket\(s\) 1 of 4 were not decided by run run-a"):
        finish_list(engine, wide, D, 4, "run-a")
    with pytest.raises(ListIncomplete, match="on 2026-07-01 is not complete"):
        publish_list(engine, wide, D, validate=False)
    # Another run's bucket 1 does not complete run-a's list.
    decide_bucket(engine, wide, D, 1, 4, "run-b", model, None)
    with pytest.raises(ListIncomplete, match=r"bucket\(s\) 0, 2-3 of 4 were not decided by run run-b"):
        finish_list(engine, wide, D, 4, "run-b")
    decide_bucket(engine, wide, D, 1, 4, "run-a", model, None)  # a retry of the failed bucket
    decide_bucket(engine, wide, D, 1, 4, "run-a", model, None)  # and again: nothing doubles
    assert finish_list(engine, wide, D, 4, "run-a").n_rows == len(whole)
    pd.testing.assert_frame_equal(_list(engine, wide), whole)

    # A champion change between buckets is refused, not mixed into one list.
    other = ModelHandle("8", model.scorer, model.quality, model.model)
    for bucket in range(4):
        decide_bucket(engine, wide, D, bucket, 4, "run-c", other if bucket == 2 else model, None)
    with pytest.raises(ListIncomplete, match=r"different champion versions \(7, 8"):
        finish_list(engine, wide, D, 4, "run-c")


def test_a_published_list_is_left_as_it_is_by_every_bucket(
    engine: sa.Engine, world: dict[str, Campaign], model: ModelHandle
) -> None:
    capped = world["capped"]
    decide_campaign(engine, capped, D)
    publish_list(engine, capped, D, validate=False)
    before = _list(engine, capped)
    result = decide_bucket(engine, capped, D, 0, 4, "late", model, None)
    assert result.status == "published" and result.n_rows == 0
    assert finish_list(engine, capped, D, 4, "late").status == "published"
    pd.testing.assert_frame_equal(_list(engine, capped), before)


def test_bucket_numbers_out_of_range_are_refused(engine: sa.Engine, world: dict[str, Campaign]) -> None:
    with pytest.raises(ValueError, match="bucket count must be between 1 and 64, got 0"):
        decide_bucket(engine, world["wide"], D, 0, 0, "r")
    with pytest.raises(ValueError, match="bucket must be between 0 and 3, got 4"):
        decide_bucket(engine, world["wide"], D, 4, 4, "r")
