"""Wiring only: each task calls one function of `pipelines.daily`."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import dag, task
from assets import MARTS

DOC = """
### Daily campaign optimization

For the logical date D: **ingest** the inbox files of D into `raw` (bad rows to
`ops.quarantine`) -> **validate** the landed batch with Great Expectations -> **dbt build**
the marts and their tests -> **decide** a send list per active campaign (mapped) ->
**publish** (GX on the list, then CSV/Parquet exports) -> **monitor** (KPIs, drift alerts).

Every task is keyed by D and idempotent: a retry or a re-run of D leaves the same state,
and a published list is never changed. Run one day by hand with `campaignopt daily --date D`.
"""


@dag(
    dag_id="daily_campaign_optimization",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    tags=["campaignopt", "daily"],
    doc_md=DOC,
    default_args={
        # `campaignopt daily` runs a day by hand with retries off, so a failure reports at once.
        "retries": int(os.environ.get("CAMPAIGNOPT_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
        "owner": "data-engineering",
    },
)
def daily_campaign_optimization():
    @task
    def ingest(ds: str | None = None) -> dict:
        from pipelines import daily

        return daily.ingest(ds)

    @task
    def validate_batch(ds: str | None = None) -> dict:
        from pipelines import daily

        return daily.validate_batch(ds)

    @task(outlets=MARTS)
    def dbt_build(ds: str | None = None) -> dict:
        from pipelines import daily

        return daily.transform(ds)

    @task
    def active_campaigns(ds: str | None = None) -> list[int]:
        from pipelines import daily

        return daily.active_campaigns(ds)

    @task(max_active_tis_per_dagrun=2)
    def decide(campaign_id: int, ds: str | None = None) -> int:
        from pipelines import daily

        daily.decide(campaign_id, ds)
        return campaign_id

    @task(max_active_tis_per_dagrun=2)
    def publish(campaign_id: int, ds: str | None = None) -> dict:
        from pipelines import daily

        return daily.publish(campaign_id, ds)

    @task
    def monitor(published: list[dict], ds: str | None = None) -> dict:
        from pipelines import daily

        return daily.monitor(ds)

    landed = ingest()
    validated = validate_batch()
    built = dbt_build()
    campaigns = active_campaigns()
    landed >> validated >> built >> campaigns
    decided = decide.expand(campaign_id=campaigns)
    published = publish.expand(campaign_id=decided)
    monitor(published)


daily_campaign_optimization()
