"""The daily job as plain functions: one per task of the `daily_campaign_optimization` DAG.

Each takes the logical date (and a campaign id where mapped), does one transaction
keyed by them, and returns a small JSON-able dict (counts, ids, paths) for XCom.
They run the same without Airflow, which is how the tests call them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import date

from pipelines.db import get_engine

log = logging.getLogger(__name__)


def _as_date(day: date | str) -> date:
    return day if isinstance(day, date) else date.fromisoformat(str(day)[:10])


def ingest(day: date | str) -> dict:
    from pipelines import migrate
    from pipelines.ingest import ingest_day

    engine = get_engine()
    migrate.upgrade(engine)  # a fresh database needs its schema before the first landing
    report = ingest_day(engine, _as_date(day))
    return {"loaded": report.loaded, "quarantined": report.quarantined, "files": len(report.files)}


def validate_batch(day: date | str) -> dict:
    from pipelines.validation import validate_interactions

    return validate_interactions(_as_date(day)).as_dict()


def transform(day: date | str) -> dict:
    from pipelines.transform import run_dbt

    return run_dbt(_as_date(day)).as_dict()


def active_campaigns(day: date | str) -> list[int]:
    from pipelines.campaign_store import load_active_campaigns

    return [c.campaign_id for c in load_active_campaigns(get_engine(), _as_date(day))]


def decide(campaign_id: int, day: date | str) -> dict:
    from pipelines.campaign_store import load_campaign_by_id
    from pipelines.decide import decide_campaign
    from pipelines.scoring import load_model_for_decide

    engine = get_engine()
    campaign = load_campaign_by_id(engine, campaign_id)
    model, note = load_model_for_decide()
    result = decide_campaign(engine, campaign, _as_date(day), model=model, note=note)
    return asdict(result) | {"list_date": result.list_date.isoformat(), "note": note}


def publish(campaign_id: int, day: date | str) -> dict:
    from pipelines.campaign_store import load_campaign_by_id
    from pipelines.publish import publish_list

    engine = get_engine()
    result = publish_list(engine, load_campaign_by_id(engine, campaign_id), _as_date(day))
    return asdict(result) | {"list_date": result.list_date.isoformat()}


def monitor(day: date | str) -> dict:
    from pipelines.monitor import monitor_day

    return monitor_day(get_engine(), _as_date(day))
