"""Stage 5 of the day: validate a draft send list, publish it, export it for marketing ops.

Exports go to ``<home>/exports/<campaign>/<date>.csv`` and ``.parquet``, written to a
temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from pipelines.campaign_store import Campaign
from pipelines.db import read_frame
from pipelines.domain import PARAMETERS
from pipelines.errors import NotFound, UserError
from pipelines.settings import get_settings

log = logging.getLogger(__name__)

EXPORT_COLUMNS = (
    "decision_id",
    "customer_id",
    "arm_id",
    *PARAMETERS,
    "treatment_group",
    "propensity",
    "policy",
    "explored",
    "model_version",
)

_LIST_SQL = """
select d.decision_id, d.customer_id, d.arm_id, {params}, d.treatment_group, d.propensity, d.policy,
       d.explored, d.model_version
from ops.decisions d join ops.arms a on a.arm_id = d.arm_id
where d.campaign_id = %(c)s and d.decision_date = %(d)s and d.source = 'batch'
order by d.customer_id
""".format(params=", ".join(f"a.params ->> '{p}' as {p}" for p in PARAMETERS))


@dataclass(frozen=True)
class PublishResult:
    campaign: str
    list_date: date
    n_rows: int
    csv_path: str
    parquet_path: str
    already_published: bool


def export_paths(campaign_name: str, day: date) -> tuple[Path, Path]:
    folder = get_settings().exports_dir / campaign_name
    return folder / f"{day.isoformat()}.csv", folder / f"{day.isoformat()}.parquet"


def publish_list(engine: sa.Engine, campaign: Campaign, day: date, validate: bool = True) -> PublishResult:
    """Validate the draft list with Great Expectations, export it, and mark it published."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select status, n_rows from ops.send_lists where campaign_id = :c and list_date = :d"),
            {"c": campaign.campaign_id, "d": day},
        ).first()
    if row is None:
        raise NotFound(f"no send list for campaign {campaign.name!r} on {day}: run the decide step first")
    if row.status == "deciding":
        from pipelines.decide_buckets import ListIncomplete

        raise ListIncomplete(
            f"the send list of campaign {campaign.name!r} on {day} is not complete: its buckets are "
            "being decided again (finish the run that decides them, or re-run the day)"
        )
    csv_path, parquet_path = export_paths(campaign.name, day)
    if row.status == "published" and csv_path.exists() and parquet_path.exists():
        return PublishResult(campaign.name, day, row.n_rows, str(csv_path), str(parquet_path), True)
    if validate and row.n_rows:
        from pipelines.validation import validate_send_list

        validate_send_list(campaign.campaign_id, day, campaign.spec.holdout_share)
    with engine.connect() as conn:
        frame = read_frame(conn, _LIST_SQL, {"c": campaign.campaign_id, "d": day})
    frame = frame.reindex(columns=list(EXPORT_COLUMNS))
    _write_atomically(frame, csv_path, parquet_path)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """update ops.send_lists set status = 'published', csv_path = :csv, parquet_path = :pq,
                       published_at = coalesce(published_at, now()), updated_at = now()
                   where campaign_id = :c and list_date = :d"""
            ),
            {"c": campaign.campaign_id, "d": day, "csv": str(csv_path), "pq": str(parquet_path)},
        )
    log.info("%s %s: published %d rows to %s", campaign.name, day, len(frame), csv_path)
    return PublishResult(campaign.name, day, len(frame), str(csv_path), str(parquet_path), False)


def _write_atomically(frame: pd.DataFrame, csv_path: Path, parquet_path: Path) -> None:
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    for path, write in (
        (csv_path, lambda p: frame.to_csv(p, index=False)),
        (parquet_path, lambda p: frame.to_parquet(p, index=False)),
    ):
        tmp = path.with_name(path.name + ".tmp")
        write(tmp)
        os.replace(tmp, path)


def export_list(
    engine: sa.Engine, campaign: Campaign, day: date, fmt: str, output: Path | None = None
) -> tuple[Path, int]:
    """Copy a published list to ``output`` (or return its export path). Unpublished: a clear error."""
    if fmt not in ("csv", "parquet"):
        raise UserError(f"unknown format {fmt!r}; use csv or parquet")
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "select status, n_rows, csv_path, parquet_path from ops.send_lists "
                "where campaign_id = :c and list_date = :d"
            ),
            {"c": campaign.campaign_id, "d": day},
        ).first()
    if row is None:
        raise NotFound(f"no send list for campaign {campaign.name!r} on {day}")
    if row.status != "published":
        raise UserError(f"the send list for {campaign.name!r} on {day} is a draft, not published yet")
    source = Path(row.csv_path if fmt == "csv" else row.parquet_path)
    if not source.exists():
        raise NotFound(f"the export {source} is missing; publish the list again to rewrite it")
    if output is None:
        return source, row.n_rows
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(source.read_bytes())
    return output, row.n_rows
