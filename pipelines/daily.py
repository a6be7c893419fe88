"""The daily job as plain functions: one per task of the `daily_campaign_optimization` DAG.

Each takes the day D (and a campaign id where mapped), does one transaction keyed by
them, and returns a small JSON-able dict (counts, ids, paths) for XCom. They run the same
without Airflow, which is how the tests call them. A lost database connection inside a
step is raised as ServiceUnavailable naming the step (`campaignopt daily` then exits 3).
"""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from pipelines.db import get_engine
from pipelines.errors import ServiceUnavailable, UserError

log = logging.getLogger(__name__)

READY_MARKER = "_READY"  # written by the producer of an inbox folder after its last file


class InboxNotReady(UserError):
    """The inbox of D holds no data file: the day is not decided or published."""


def _as_date(day: date | str) -> date:
    return day if isinstance(day, date) else date.fromisoformat(str(day)[:10])


def _step(func):
    """Name the step when the database goes away in the middle of it (checked, not assumed:
    a deadlock or a cancelled query is an OperationalError too, and stays what it is)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            try:
                get_engine()
            except ServiceUnavailable as down:
                raise ServiceUnavailable(f"{func.__name__}: {down}") from exc
            raise

    return wrapper


def resolve_day(
    requested: str | None, logical_date: datetime | str | None, run_after: datetime | str | None
) -> date:
    """The day D a run is for.

    The ``date`` param when given (a manual trigger that names its day); else the logical
    date (a scheduled run: the start of its daily interval; `airflow dags test DAG D`);
    else, for an Airflow 3 manual trigger without a logical date, the day before
    ``run_after`` — the last day that is complete, as a scheduled run at midnight would take.
    """
    if requested:
        try:
            return date.fromisoformat(str(requested)[:10])
        except ValueError:
            raise UserError(f"param date: {requested!r} is not a date (YYYY-MM-DD)") from None
    if logical_date is not None:
        return _as_date(logical_date.isoformat() if isinstance(logical_date, datetime) else logical_date)
    if run_after is None:
        raise UserError("a run without a logical date, run_after or a date param: no day to run")
    after = run_after if isinstance(run_after, datetime) else datetime.fromisoformat(str(run_after))
    return after.date() - timedelta(days=1)


@_step
def prepare(
    requested: str | None, logical_date: datetime | str | None, run_after: datetime | str | None
) -> str:
    """First task: the schema at head (migrations never run inside a data step) and the day D.

    A new run of D supersedes the task-failure alerts of earlier runs of D.
    """
    from pipelines import migrate
    from pipelines.alerts import clear_task_failures

    day = resolve_day(requested, logical_date, run_after)
    engine = get_engine()
    migrate.upgrade(engine)
    with engine.begin() as conn:
        clear_task_failures(conn, day)
    return day.isoformat()


def inbox_ready(day: date | str, hand_run: bool) -> dict | None:
    """Whether the inbox of D can be ingested; None while a scheduled run should keep waiting.

    Scheduled runs wait for the ``_READY`` marker the producer writes after the day's last file
    (files may still be arriving before it). A run by hand (`campaignopt daily`) is the person
    saying the day is complete: it needs data files, not the marker. Either way a day without a
    data file fails loudly (InboxNotReady): nothing is decided or published silently.
    """
    from pipelines.ingest import inbox_folder

    day = _as_date(day)
    folder = inbox_folder(day)
    files = (
        sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(("_", ".")))
        if folder.is_dir()
        else []
    )
    marked = (folder / READY_MARKER).is_file()
    if not hand_run and not marked:
        log.info("waiting for %s", folder / READY_MARKER)
        return None
    if not files:
        raise InboxNotReady(f"the inbox of {day} ({folder}) holds no data file: nothing to decide or publish")
    return {"files": len(files), "marked_ready": marked}


@_step
def ingest(day: date | str) -> dict:
    from pipelines.ingest import ingest_day

    # A rejected file does not stop the day: it is recorded with its reason in ops.ingested_files
    # and a critical ingest_rejected alert, and the day decides on what did land.
    report = ingest_day(get_engine(), _as_date(day))
    summary = report.as_dict()
    return {key: summary[key] for key in ("loaded", "duplicates", "quarantined", "rejected")} | {
        "files": len(report.files)
    }


@_step
def validate_batch(day: date | str) -> dict:
    from pipelines.validation import validate_interactions

    return validate_interactions(_as_date(day)).as_dict()


@_step
def transform(day: date | str) -> dict:
    """dbt build of the shared marts as of D, once the earlier days are final (pipelines.day_order).

    First the day's feedback is checked for anomalies (pipelines.anomalies): a source-day found
    anomalous is held, so this very build keeps it out of learning.
    """
    from pipelines.anomalies import hold_anomalous_days
    from pipelines.day_order import marts_build_slot
    from pipelines.settings import get_settings
    from pipelines.transform import run_dbt

    day = _as_date(day)
    engine = get_engine()
    with marts_build_slot(engine, day, get_settings().decide_wait_seconds):
        holds = hold_anomalous_days(engine, day)
        held = [h["reason"] for h in holds if not h["released"]]
        return run_dbt(day).as_dict() | {"feedback_holds": held}


@_step
def active_campaigns(day: date | str) -> list[int]:
    """Ids only, not validated here: a stored campaign that no longer validates fails its own tasks."""
    from pipelines.campaign_store import active_campaign_ids

    return active_campaign_ids(get_engine(), _as_date(day))


@_step
def decide_jobs(campaign_ids: list[int]) -> list[dict]:
    """The decide tasks of the day: every (campaign, bucket) for the configured bucket count."""
    from pipelines.settings import get_settings

    n = get_settings().decide_buckets
    return [{"campaign_id": c, "bucket": b, "n_buckets": n} for c in campaign_ids for b in range(n)]


@_step
def decide(campaign_id: int, day: date | str) -> dict:
    """Decide one campaign's whole list of D in this process (every bucket, then the list)."""
    from pipelines.decide import decide_campaign
    from pipelines.settings import get_settings

    engine, day = get_engine(), _as_date(day)
    with _deciding(engine, campaign_id, day) as (campaign, model, note):
        result = decide_campaign(engine, campaign, day, model, note, get_settings().decide_buckets)
    return asdict(result) | {"list_date": result.list_date.isoformat(), "note": note}


@_step
def decide_bucket(job: dict, day: date | str, run_id: str) -> dict:
    """Decide one bucket of one campaign's list of D (a task of the DAG's mapped decide)."""
    from pipelines.decide_buckets import decide_bucket as decide_one_bucket

    engine, day = get_engine(), _as_date(day)
    with _deciding(engine, job["campaign_id"], day) as (campaign, model, note):
        result = decide_one_bucket(
            engine, campaign, day, job["bucket"], job["n_buckets"], run_id, model, note
        )
    return asdict(result) | {"list_date": result.list_date.isoformat(), "note": note}


@contextmanager
def _deciding(engine: sa.Engine, campaign_id: int, day: date):
    """The campaign and champion, inside the day-order slot: once the earlier days of the cap
    window are final (pipelines/day_order.py)."""
    from pipelines.campaign_store import load_campaign_by_id
    from pipelines.day_order import decide_slot
    from pipelines.scoring import load_model_for_decide
    from pipelines.settings import get_settings

    campaign = load_campaign_by_id(engine, campaign_id)
    model, note = load_model_for_decide(day=day, engine=engine)  # alerts when the champion fails
    with decide_slot(engine, campaign_id, day, get_settings().decide_wait_seconds):
        yield campaign, model, note


@_step
def publish(campaign_id: int, day: date | str, run_id: str | None = None) -> dict:
    """Publish D's list; with ``run_id`` (the DAG), first the list from that run's buckets,
    refused while one of them is missing."""
    from pipelines.campaign_store import load_campaign_by_id
    from pipelines.decide_buckets import finish_list
    from pipelines.publish import publish_list
    from pipelines.settings import get_settings

    engine, day = get_engine(), _as_date(day)
    campaign = load_campaign_by_id(engine, campaign_id)
    if run_id is not None:
        finish_list(engine, campaign, day, get_settings().decide_buckets, run_id)
    result = publish_list(engine, campaign, day)
    return asdict(result) | {"list_date": result.list_date.isoformat()}


@_step
def monitor(day: date | str) -> dict:
    from pipelines.monitor import monitor_day

    return monitor_day(get_engine(), _as_date(day))


def task_failed(
    prepared_day: str | None,
    requested: str | None,
    logical_date: datetime | str | None,
    run_after: datetime | str | None,
    *,
    dag_id: str,
    task_id: str,
    error: str,
    campaign_ids: list[int] | None = None,
    map_index: int = -1,
    run_id: str | None = None,
) -> bool:
    """on_failure_callback of every daily task: a critical alert in ops.alerts; never raises.

    A task of the per-campaign group is mapped over ``campaign_ids`` (the output of
    active_campaigns): its map index names the campaign the alert belongs to.
    """
    from pipelines.alerts import record_task_failure

    ids = campaign_ids if isinstance(campaign_ids, list) else []
    campaign_id = ids[map_index] if 0 <= map_index < len(ids) else None
    try:
        day = _as_date(prepared_day) if prepared_day else resolve_day(requested, logical_date, run_after)
    except UserError:
        day = date.today()  # the run could not even tell its day; the alert still must land
    return record_task_failure(day, dag_id, task_id, error, campaign_id, map_index, run_id)
