"""Wiring only: each task calls one function of `pipelines.daily`."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, PokeReturnValue, dag, task
from airflow.task.trigger_rule import TriggerRule
from assets import MARTS

DOC = """
### Daily campaign optimization

For the day D: **prepare** (schema migrations; which day D is) -> **wait_for_inbox** ->
**ingest** the inbox files of D into `raw` (bad rows to `ops.quarantine`) -> **validate** the
landed batch with Great Expectations -> **dbt build** the marts and their tests -> **decide**,
mapped over (active campaign, customer-hash bucket) (`DECIDE_BUCKETS` per campaign, so many
workers build one list) -> per campaign, **publish** once every bucket of this run is decided
(GX on the list, then CSV/Parquet exports) -> **monitor** (KPIs, drift alerts). A campaign
that fails fails alone: the others still publish (monitor then waits for a fixed re-run).

**Which day.** A scheduled run covers its daily interval: the run at midnight after D is
for D. A manual trigger may set the `date` param; without it and without a logical date
(Airflow 3), the run is for the day before it was triggered.

**Waiting for data.** `wait_for_inbox` (reschedule mode: no worker slot held) waits for the
`_READY` marker the producer writes in `<inbox>/<D>/` after the day's last file, up to 12 h,
then fails. A day without a data file fails there too: nothing is decided or published on
a day without data. A run by hand (`campaignopt daily --date D`) does not wait for the marker.

**Order of days.** Deciding D waits (bounded) until the earlier days of its frequency-cap
window are final, and a day decided after a later one is refused: see `pipelines/day_order.py`.

Every task is keyed by D, idempotent and time-limited; a failed task (after its retries)
writes a critical alert to `ops.alerts`. A published list is never changed.
"""

# `campaignopt daily` runs a day by hand: retries off so a failure reports at once.
HAND_RUN = os.environ.get("CAMPAIGNOPT_HAND_RUN") == "1"
RETRIES = int(os.environ.get("CAMPAIGNOPT_TASK_RETRIES", "2"))
DECIDE_WAIT = float(os.environ.get("DECIDE_WAIT_SECONDS", "1800"))
# Decide tasks of one run at once (the bucket tasks of every campaign): as many as workers' slots.
DECIDE_PARALLEL = int(os.environ.get("DECIDE_PARALLELISM", "2"))


def _alert_failure(context) -> None:
    """Hand the failure to pipelines (one function); the values come from Airflow's context."""
    from pipelines import daily

    ti = context["ti"]
    mapped = ti.map_index is not None and ti.map_index >= 0
    ids = None
    if mapped and ti.task_id == "decide":  # mapped over (campaign, bucket) jobs
        ids = [job["campaign_id"] for job in ti.xcom_pull(task_ids="decide_jobs") or []]
    elif mapped:
        ids = ti.xcom_pull(task_ids="active_campaigns")
    daily.task_failed(
        ti.xcom_pull(task_ids="prepare"),
        (context.get("params") or {}).get("date"),
        context.get("logical_date"),
        getattr(context.get("dag_run"), "run_after", None),
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        error=str(context.get("exception") or "failed"),
        campaign_ids=ids,
        map_index=ti.map_index if mapped else -1,
        run_id=ti.run_id,
    )


@dag(
    dag_id="daily_campaign_optimization",
    # Data intervals: the run after midnight is for the day that just ended (logical date = D).
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    tags=["campaignopt", "daily"],
    doc_md=DOC,
    params={"date": Param(None, type=["null", "string"], description="Day D (YYYY-MM-DD), for manual runs")},
    default_args={
        "retries": RETRIES,
        "retry_delay": timedelta(minutes=5),
        "owner": "data-engineering",
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": _alert_failure,
    },
)
def daily_campaign_optimization():
    @task(execution_timeout=timedelta(minutes=10))
    def prepare(params=None, logical_date=None, dag_run=None) -> str:
        from pipelines import daily

        return daily.prepare((params or {}).get("date"), logical_date, getattr(dag_run, "run_after", None))

    @task.sensor(
        mode="reschedule",
        poke_interval=timedelta(minutes=5),
        timeout=timedelta(hours=0 if HAND_RUN else 12),
        execution_timeout=timedelta(minutes=5),
    )
    def wait_for_inbox(day: str) -> PokeReturnValue:
        from pipelines import daily

        found = daily.inbox_ready(day, hand_run=HAND_RUN)
        return PokeReturnValue(is_done=found is not None, xcom_value=found)

    @task(execution_timeout=timedelta(hours=2))
    def ingest(day: str) -> dict:
        from pipelines import daily

        return daily.ingest(day)

    @task(execution_timeout=timedelta(minutes=30))
    def validate_batch(day: str) -> dict:
        from pipelines import daily

        return daily.validate_batch(day)

    @task(outlets=MARTS, execution_timeout=timedelta(hours=1))
    def dbt_build(day: str) -> dict:
        from pipelines import daily

        return daily.transform(day)

    @task(execution_timeout=timedelta(minutes=5))
    def active_campaigns(day: str) -> list[int]:
        from pipelines import daily

        return daily.active_campaigns(day)

    @task(execution_timeout=timedelta(minutes=5))
    def decide_jobs(campaign_ids: list[int]) -> list[dict]:
        from pipelines import daily

        return daily.decide_jobs(campaign_ids)

    @task(max_active_tis_per_dagrun=DECIDE_PARALLEL, execution_timeout=timedelta(seconds=DECIDE_WAIT + 3600))
    def decide(job: dict, day: str, run_id=None) -> dict:
        from pipelines import daily

        return daily.decide_bucket(job, day, run_id)

    # Runs once every bucket is done, whether or not all succeeded: a campaign whose bucket
    # failed is refused by its own publish (this run's buckets are checked in the database),
    # and the other campaigns still publish.
    @task(
        max_active_tis_per_dagrun=2,
        execution_timeout=timedelta(minutes=30),
        trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS,
    )
    def publish(campaign_id: int, day: str, run_id=None) -> dict:
        from pipelines import daily

        return daily.publish(campaign_id, day, run_id)

    @task(execution_timeout=timedelta(minutes=30))
    def monitor(published: list[dict], day: str) -> dict:
        from pipelines import daily

        return daily.monitor(day)

    day = prepare()
    ready = wait_for_inbox(day)
    landed = ingest(day)
    validated = validate_batch(day)
    built = dbt_build(day)
    campaigns = active_campaigns(day)
    ready >> landed >> validated >> built >> campaigns
    decided = decide.partial(day=day).expand(job=decide_jobs(campaigns))
    published = publish.partial(day=day).expand(campaign_id=campaigns)
    decided >> published
    monitor(published, day)


daily_campaign_optimization()
