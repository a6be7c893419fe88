"""The decide step's writes, partitioned over (campaign, customer-hash bucket).

A campaign's list of day D is decided as buckets 0..B-1 (pipelines/shards.py), each an
independent task that many workers may run at once: a bucket reads its customers, decides
them (:func:`pipelines.decide.decide_customers`), and replaces its shards' decisions in one
transaction. :func:`finish_list` then turns the buckets of one run into the draft list, and
refuses while any bucket of that run is missing: publish waits for all buckets. Whatever B and
the order buckets finish in, the list is the same; a published list is never changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from pipelines.allocation_day import day_allocation, repair_list
from pipelines.audience import eligible_audience
from pipelines.campaign_store import Campaign
from pipelines.db import copy_frame
from pipelines.decide import (
    DecideResult,
    ModelHandle,
    campaign_lock,
    decide_customers,
    decision_stats,
    pending_sends,
    seed_for,
)
from pipelines.errors import UserError
from pipelines.shards import check_bucket

log = logging.getLogger(__name__)


class ListIncomplete(UserError):
    """A list's buckets are not all decided by one run (or disagree): it cannot become a draft."""


@dataclass(frozen=True)
class BucketResult:
    campaign: str
    campaign_id: int
    list_date: date
    bucket: int
    n_buckets: int
    status: str  # decided | published (the list is final; nothing written)
    n_rows: int
    n_control: int
    model_version: str | None


def list_status(engine: sa.Engine, campaign_id: int, day: date) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select status from ops.send_lists where campaign_id = :c and list_date = :d"),
            {"c": campaign_id, "d": day},
        ).scalar()


@contextmanager
def _bucket_lock(engine: sa.Engine, campaign_id: int, bucket: int, n_buckets: int) -> Iterator[None]:
    """One decide of a (campaign, bucket) at a time; other buckets go on in parallel."""
    key = {"k": f"campaignopt-decide:{campaign_id}:{n_buckets}:{bucket}"}
    with engine.connect() as conn:
        conn.execute(sa.text("select pg_advisory_lock(hashtextextended(:k, 0))"), key)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("select pg_advisory_unlock(hashtextextended(:k, 0))"), key)
            conn.commit()


def decide_bucket(
    engine: sa.Engine,
    campaign: Campaign,
    day: date,
    bucket: int,
    n_buckets: int,
    run_id: str,
    model: ModelHandle | None = None,
    note: str | None = None,
) -> BucketResult:
    """Decide bucket ``bucket`` of ``n_buckets`` of ``campaign``'s list for ``day`` and replace
    that bucket's decisions; recorded in ``ops.decide_buckets`` under ``run_id``."""
    check_bucket(bucket, n_buckets)
    with _bucket_lock(engine, campaign.campaign_id, bucket, n_buckets):
        if list_status(engine, campaign.campaign_id, day) == "published":
            log.info("%s %s: list already published; bucket %d left as it is", campaign.name, day, bucket)
            return BucketResult(
                campaign.name, campaign.campaign_id, day, bucket, n_buckets, "published", 0, 0, None
            )
        with engine.connect() as conn:
            customers, allowed = eligible_audience(conn, campaign, day, bucket=(bucket, n_buckets))
            pulls, rewards = decision_stats(conn, campaign)
            pending = pending_sends(conn, campaign)
        seed = seed_for(campaign.name, day)
        # Capacities are per list: every bucket solves the same day's prices (allocation_day.py).
        alloc = day_allocation(engine, campaign, day, seed, model)
        decisions = decide_customers(
            campaign, customers, allowed, pulls, rewards, seed, day, model, note, alloc, pending
        )
        n_control = int((decisions["treatment_group"] == "control").sum())
        key = {"c": campaign.campaign_id, "d": day, "b": bucket, "n": n_buckets}
        with engine.begin() as conn:
            # Delete-then-insert of exactly this bucket's shards (rows from before shards existed
            # have none: any bucket deletes them): a retry leaves one decision per customer.
            conn.execute(
                sa.text(
                    """delete from ops.decisions where campaign_id = :c and decision_date = :d
                       and source = 'batch' and (shard is null or mod(shard, :n) = :b)"""
                ),
                key,
            )
            if len(decisions):
                copy_frame(conn, "ops.decisions", decisions)
            conn.execute(
                sa.text(
                    """update ops.send_lists set status = 'deciding', updated_at = now()
                       where campaign_id = :c and list_date = :d and status = 'draft'"""
                ),
                key,
            )
            conn.execute(
                sa.text(
                    """insert into ops.decide_buckets
                           (campaign_id, list_date, n_buckets, bucket, run_id,
                            n_rows, n_control, model_version)
                       values (:c, :d, :n, :b, :r, :rows, :nc, :mv)
                       on conflict (campaign_id, list_date, n_buckets, bucket) do update set
                           run_id = excluded.run_id, n_rows = excluded.n_rows, n_control = excluded.n_control,
                           model_version = excluded.model_version, decided_at = now()"""
                ),
                key
                | {
                    "r": run_id,
                    "rows": len(decisions),
                    "nc": n_control,
                    "mv": model.version if model else None,
                },
            )
    log.info(
        "%s %s: bucket %d/%d, %d decisions (%d control)",
        campaign.name,
        day,
        bucket,
        n_buckets,
        len(decisions),
        n_control,
    )
    return BucketResult(
        campaign.name,
        campaign.campaign_id,
        day,
        bucket,
        n_buckets,
        "decided",
        len(decisions),
        n_control,
        model.version if model else None,
    )


def finish_list(
    engine: sa.Engine, campaign: Campaign, day: date, n_buckets: int, run_id: str
) -> DecideResult:
    """The draft list of ``day`` from the ``n_buckets`` buckets ``run_id`` decided.

    Raises ListIncomplete naming what is missing: a bucket not decided by this run, buckets
    decided with different champion versions, or decisions that are not the buckets' sum.
    A campaign with capacities has its list's overflow moved to free arms here (allocation_day.py).
    A published list is returned as it is."""
    seed = seed_for(campaign.name, day)
    key = {"c": campaign.campaign_id, "d": day, "n": n_buckets, "r": run_id}
    with campaign_lock(engine, campaign.campaign_id), engine.begin() as conn:
        current = conn.execute(
            sa.text(
                "select status, n_rows, n_control, model_version from ops.send_lists "
                "where campaign_id = :c and list_date = :d"
            ),
            key,
        ).first()
        if current is not None and current.status == "published":
            return DecideResult(
                campaign.name,
                campaign.campaign_id,
                day,
                "published",
                current.n_rows,
                current.n_control,
                current.model_version,
                seed,
            )
        rows = conn.execute(
            sa.text(
                """select bucket, n_rows, n_control, model_version from ops.decide_buckets
                   where campaign_id = :c and list_date = :d and n_buckets = :n and run_id = :r"""
            ),
            key,
        ).all()
        missing = sorted(set(range(n_buckets)) - {r.bucket for r in rows})
        if missing:
            raise ListIncomplete(
                f"{campaign.name} {day}: bucket(s) {_ranges(missing)} of {n_buckets} were not decided "
                f"by run {run_id}; the list stays unpublished until every bucket is decided"
            )
        versions = sorted({str(r.model_version) for r in rows})
        if len(versions) > 1:
            raise ListIncomplete(
                f"{campaign.name} {day}: buckets were decided with different champion versions "
                f"({', '.join(versions)}; the champion changed during the run): re-run the day"
            )
        n_rows, n_control = sum(r.n_rows for r in rows), sum(r.n_control for r in rows)
        stored = conn.execute(
            sa.text(
                "select count(*) from ops.decisions where campaign_id = :c and decision_date = :d "
                "and source = 'batch'"
            ),
            key,
        ).scalar()
        if stored != n_rows:
            raise ListIncomplete(
                f"{campaign.name} {day}: {stored} batch decisions stored but the {n_buckets} buckets "
                f"decided {n_rows} (another run or bucket count wrote since): re-run the day"
            )
        model_version = rows[0].model_version
        repair_list(conn, campaign, day)  # capacities hold exactly over the whole list
        conn.execute(
            sa.text(
                """insert into ops.send_lists
                       (campaign_id, list_date, status, n_rows, n_control, model_version)
                   values (:c, :d, 'draft', :rows, :nc, :mv)
                   on conflict (campaign_id, list_date) do update set status = 'draft',
                       n_rows = excluded.n_rows,
                       n_control = excluded.n_control, model_version = excluded.model_version,
                       csv_path = null, parquet_path = null, published_at = null, updated_at = now()"""
            ),
            key | {"rows": n_rows, "nc": n_control, "mv": model_version},
        )
    log.info(
        "%s %s: list of %d decisions (%d control) from %d bucket(s)",
        campaign.name,
        day,
        n_rows,
        n_control,
        n_buckets,
    )
    return DecideResult(
        campaign.name,
        campaign.campaign_id,
        day,
        "draft" if n_rows else "empty",
        n_rows,
        n_control,
        model_version,
        seed,
    )


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5': a short name for many missing buckets."""
    out, start = [], values[0]
    for prev, cur in zip(values, [*values[1:], None], strict=True):
        if cur is None or cur != prev + 1:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(out)
