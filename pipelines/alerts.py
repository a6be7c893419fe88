"""Operational alerts in `ops.alerts`: failed tasks, and reading, acknowledging, resolving any alert.

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

from pipelines.errors import UserError

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


SEVERITIES = ("info", "warning", "critical")
_LIST_COLUMNS = """a.alert_id, a.alert_date, c.name as campaign, a.kind, a.severity, a.message,
                   a.acknowledged_by, a.acknowledged_at, a.resolved_by, a.resolved_at, a.note, a.details"""


def list_alerts(
    conn: sa.Connection,
    day: date | None = None,
    since: date | None = None,
    severity: str | None = None,
    kind: str | None = None,
    open_only: bool = False,
) -> list[dict]:
    """Alerts newest first; ``kind`` matches a kind or its prefix (``concept_drift`` finds
    ``concept_drift:12``); ``severity`` keeps that level and above."""
    if severity is not None and severity not in SEVERITIES:
        raise UserError(f"--severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    where, params = ["true"], {}
    if day is not None:
        where.append("a.alert_date = :day")
        params["day"] = day
    if since is not None:
        where.append("a.alert_date >= :since")
        params["since"] = since
    if severity is not None:
        where.append("a.severity = any(:levels)")
        params["levels"] = list(SEVERITIES[SEVERITIES.index(severity) :])
    if kind is not None:
        where.append("(a.kind = :kind or a.kind like :prefix)")
        params |= {"kind": kind, "prefix": kind.rstrip(":") + ":%"}
    if open_only:
        where.append("a.resolved_at is null")
    rows = conn.execute(
        sa.text(
            f"""select {_LIST_COLUMNS} from ops.alerts a left join ops.campaigns c using (campaign_id)
                where {" and ".join(where)} order by a.alert_date desc, a.alert_id desc"""
        ),
        params,
    ).mappings()
    return [dict(r) for r in rows]


def acknowledge_alert(conn: sa.Connection, alert_id: int, by: str, note: str | None = None) -> dict:
    """Mark an alert seen by ``by``; it still applies. A second acknowledgement keeps the first's time."""
    return _mark(conn, alert_id, by, note, "acknowledged")


def resolve_alert(conn: sa.Connection, alert_id: int, by: str, note: str | None = None) -> dict:
    """Mark an alert dealt with: a resolved concept-drift alert no longer discounts its arm, a
    resolved feedback-anomaly alert releases its held source-day (pipelines/anomalies.py)."""
    from pipelines.anomalies import release_for_alert

    row = _mark(conn, alert_id, by, note, "resolved")
    release_for_alert(conn, row, by, note)
    return row


def _mark(conn: sa.Connection, alert_id: int, by: str, note: str | None, what: str) -> dict:
    if not by.strip():
        raise UserError("--by: say who (a name or an e-mail address)")
    row = conn.execute(
        sa.text(
            f"""update ops.alerts set {what}_by = :by, {what}_at = coalesce({what}_at, now()),
                       note = coalesce(:note, note)
                where alert_id = :id returning alert_id"""
        ),
        {"by": by.strip(), "note": note, "id": alert_id},
    ).first()
    if row is None:
        raise UserError(f"alert {alert_id}: no such alert (see 'campaignopt alerts list')")
    found = (
        conn.execute(
            sa.text(
                f"select {_LIST_COLUMNS} from ops.alerts a left join ops.campaigns c using (campaign_id) "
                "where a.alert_id = :id"
            ),
            {"id": alert_id},
        )
        .mappings()
        .one()
    )
    return dict(found)
