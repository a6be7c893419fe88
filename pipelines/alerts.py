"""Operational alerts in `ops.alerts` that do not come from monitoring: failed tasks.

Airflow calls :func:`record_task_failure` from a task's ``on_failure_callback`` (after its
last retry). One alert per (day, campaign, task): a second failure of the same task
replaces the message. The monitor step replaces only its own kinds of alerts, so these
stay until a new run of the day starts (:func:`clear_task_failures`).
"""

from __future__ import annotations

import json
import logging
from datetime import date

import sqlalchemy as sa

log = logging.getLogger(__name__)

TASK_FAILED = "task_failed:"  # kind prefix: task_failed:<task_id>


def record_task_failure(
    day: date | str,
    dag_id: str,
    task_id: str,
    error: str,
    campaign_id: int | None = None,
    map_index: int = -1,
    run_id: str | None = None,
) -> bool:
    """Write a critical alert for a failed task; never raises (the database may be what failed).

    Returns whether the alert was stored.
    """
    from pipelines.db import get_engine

    day = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
    where = f"{task_id}[{map_index}]" if map_index >= 0 else task_id
    message = f"{dag_id} {where} failed for {day}: {error}"[:2000]
    details = {"dag_id": dag_id, "task_id": task_id, "map_index": map_index, "run_id": run_id}
    try:
        with get_engine().begin() as conn:
            if campaign_id is not None:  # a campaign deleted since: keep the alert, drop the link
                known = conn.execute(
                    sa.text("select 1 from ops.campaigns where campaign_id = :c"), {"c": campaign_id}
                ).first()
                campaign_id = campaign_id if known else None
            conn.execute(
                sa.text(
                    """insert into ops.alerts (alert_date, campaign_id, kind, severity, message, details)
                       values (:d, :c, :k, 'critical', :m, cast(:details as jsonb))
                       on conflict (alert_date, (coalesce(campaign_id, 0)), kind)
                       do update set message = excluded.message, details = excluded.details,
                                     created_at = now()"""
                ),
                {
                    "d": day,
                    "c": campaign_id,
                    "k": TASK_FAILED + task_id,
                    "m": message,
                    "details": json.dumps(details),
                },
            )
    except Exception as exc:  # noqa: BLE001 - an alert must never hide the task's own error
        log.error("could not record the failure of %s in ops.alerts: %s", where, exc)
        return False
    return True


def clear_task_failures(conn: sa.Connection, day: date) -> int:
    """Remove the task-failure alerts of ``day``: a new run of the day supersedes them."""
    result = conn.execute(
        sa.text("delete from ops.alerts where alert_date = :d and kind like :k"),
        {"d": day, "k": TASK_FAILED + "%"},
    )
    return result.rowcount
