"""The dashboard's data quality: quarantined rows by reason and by day, rejected inbox files, and
the Great Expectations results of recent validations (with their data docs pages).

The validation results are read from GX's validation results store on disk, the JSON files
:mod:`pipelines.validation` keeps (``<home>/gx/validation_results/<suite>/<run name>/<run
time>/<batch>.json``), not through a GX context: the service would otherwise import
great_expectations (10+ s and a few hundred MB per worker) to list a few files.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from pipelines.errors import UserError
from pipelines.settings import Settings
from pipelines.validation import data_docs_dir, validation_results_dir

MAX_DAYS = 366
RECENT_VALIDATIONS = 50
RUN_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # how GX names a run's folder


def quality_summary(engine: sa.Engine, settings: Settings, today: date, days: int) -> dict:
    """Quarantine (rows not superseded by a newer version of their file) and rejected files of
    the ``days`` logical dates up to ``today``, the feedback source-days held out of learning
    (those of the window, and any still held), and the most recent validation results."""
    if not 1 <= days <= MAX_DAYS:
        raise UserError(f"days: between 1 and {MAX_DAYS}, got {days}")
    since = today - timedelta(days=days - 1)
    window = {"since": since, "until": today}
    live = "logical_date between :since and :until and superseded_by is null"
    with engine.connect() as conn:
        by_reason = conn.execute(
            sa.text(
                f"""select reason, count(*) as rows, count(distinct source_file) as files
                    from ops.quarantine where {live} group by reason order by rows desc, reason"""
            ),
            window,
        ).mappings()
        by_reason = [dict(r) for r in by_reason]
        by_day = conn.execute(
            sa.text(
                f"""select logical_date as date, reason, count(*) as rows from ops.quarantine
                    where {live} group by 1, 2 order by 1, 2"""
            ),
            window,
        ).mappings()
        by_day = [dict(r) for r in by_day]
        rejected = conn.execute(
            sa.text(
                """select logical_date as date, path, kind, reason, rows_read, rows_quarantined, loaded_at
                   from ops.ingested_files
                   where status = 'rejected' and logical_date between :since and :until
                   order by logical_date desc, path"""
            ),
            window,
        ).mappings()
        rejected = [dict(r) for r in rejected]
        holds = conn.execute(
            sa.text(
                """select channel, landing, logical_date as date, reason, held_at, released_at, released_by
                   from ops.feedback_holds
                   where logical_date between :since and :until or released_at is null
                   order by logical_date desc, channel, landing"""
            ),
            window,
        ).mappings()
        holds = [dict(r) for r in holds]
    docs = data_docs_dir(settings)
    return {
        "window": {"since": since, "until": today, "days": days},
        "quarantine": {"rows": sum(r["rows"] for r in by_reason), "by_reason": by_reason, "by_day": by_day},
        "rejected_files": rejected,
        "feedback_holds": holds,
        "validations": recent_validations(settings),
        "data_docs_index": "index.html" if (docs / "index.html").is_file() else None,
    }


def recent_validations(settings: Settings, limit: int = RECENT_VALIDATIONS) -> list[dict]:
    """The newest ``limit`` results of GX's store, newest first: suite, batch, when, passed, the
    failed expectations, and the data docs page (relative to the site) when it exists."""
    store, docs = validation_results_dir(settings), data_docs_dir(settings)
    found = []
    for path in store.glob("*/*/*/*.json"):  # suite / run name / run time / batch
        relative = path.relative_to(store)
        suite, run_name, run_time = relative.parts[:3]
        try:
            when = datetime.strptime(run_time, RUN_TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            continue  # not a run folder of ours
        found.append((when, suite, run_name, path, relative))
    found.sort(key=lambda item: item[0], reverse=True)
    out = []
    for when, suite, run_name, path, relative in found[:limit]:
        result = _read(path)
        if result is None:
            continue
        page = Path("validations") / relative.with_suffix(".html")
        results = result.get("results") or []
        out.append(
            {
                "suite": suite,
                "batch": run_name,
                "run_time": when,
                "success": bool(result.get("success")),
                "evaluated": len(results),
                "failed": [_expectation_name(r) for r in results if not r.get("success")],
                "data_docs_page": page.as_posix() if (docs / page).is_file() else None,
            }
        )
    return out


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # a result being written, or a broken file: not listed
        return None


def _expectation_name(result: dict) -> str:
    """As pipelines.validation names a failed expectation: its meta name, else type(column)."""
    config = result.get("expectation_config") or {}
    name = (config.get("meta") or {}).get("name")
    return name or f"{config.get('type')}({(config.get('kwargs') or {}).get('column', '')})"


def with_status(alert: dict) -> dict:
    """An alert of :func:`pipelines.alerts.list_alerts` with its status: open, acknowledged, resolved."""
    status = "resolved" if alert["resolved_at"] else "acknowledged" if alert["acknowledged_at"] else "open"
    return alert | {"status": status}
