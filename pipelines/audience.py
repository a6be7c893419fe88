"""Who may receive a campaign on day D, and through which channels.

Eligible: in the latest customer snapshot on or before D (the `customer_features`
mart), inside the campaign's audience filter, not suppressed, under the frequency
caps, and with consent for at least one of the campaign's channels. The holdout
control group is a stable hash of (campaign, customer): the same customers stay in
control every day, whatever else changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.campaign_store import Campaign
from pipelines.db import read_frame
from pipelines.domain import CUSTOMER_COLUMNS, SEGMENTS
from pipelines.extra_features import customer_columns_sql, extra_feature_names
from pipelines.shards import in_bucket_sql, shard_sql

# Caps count the sends of every campaign and both paths (batch lists and real-time decisions) in
# the week before the cap end. The batch counts earlier days only (cap end = D): campaigns decided
# in parallel on D stay independent, and a re-run of D sees exactly what the first run saw. Real
# time counts day T itself too (cap end = T + 1): a send earlier today is a send.
# ``customers`` is the mart, or (real time) one customer given by attributes, same columns.
_AUDIENCE_SQL = """
with recent as (
    select customer_id, count(*) as sends_7d, max(decision_date) as last_send
    from ops.decisions
    where decision_date > %(d)s::date - 7 and decision_date < %(cap_end)s::date
      and (%(customer)s::text is null or customer_id = %(customer)s::text)
    group by customer_id
)
select f.customer_id, f.segment, {columns},
       ('x' || substr(md5(%(name)s || ':' || f.customer_id), 1, 8))::bit(32)::bigint / 4294967296.0
           as holdout_draw,
       {shard} as shard
from {customers} f
left join recent r on r.customer_id = f.customer_id
where {in_bucket}
  and f.age between %(min_age)s and %(max_age)s
  and f.income >= %(min_income)s
  and (%(segments)s::text[] is null or f.segment = any(%(segments)s::text[]))
  and (%(customer)s::text is null or f.customer_id = %(customer)s::text)
  and not exists (
      select 1 from ops.suppressions s
      where s.customer_id = f.customer_id and s.campaign_id in (0, %(cid)s))
  and coalesce(r.sends_7d, 0) < %(max_per_week)s
  and (r.last_send is null or r.last_send <= %(d)s::date - %(min_gap)s)
order by f.customer_id
"""
MART_CUSTOMERS = "analytics.customer_features"


def audience_sql(customers: str = MART_CUSTOMERS) -> str:
    """The audience rules over ``customers`` (a table or a one-row subquery with its columns)."""
    return _AUDIENCE_SQL.format(
        columns=customer_columns_sql("f"),
        customers=customers,
        shard=shard_sql("f.customer_id"),
        in_bucket=in_bucket_sql("f.customer_id"),
    )


def audience_params(
    campaign: Campaign,
    day: date,
    cap_end: date,
    customer_id: str | None = None,
    bucket: tuple[int, int] = (0, 1),
) -> dict:
    """Parameters of :func:`audience_sql` for ``campaign`` deciding on ``day``; ``bucket`` is
    (bucket, bucket count): the customers of that bucket only (pipelines/shards.py)."""
    spec = campaign.spec
    return {
        "bucket": bucket[0],
        "n_buckets": bucket[1],
        "d": day,
        "cap_end": cap_end,
        "customer": customer_id,
        "name": spec.name,
        "cid": campaign.campaign_id,
        "min_age": spec.audience.min_age,
        "max_age": spec.audience.max_age,
        "min_income": spec.audience.min_income,
        "segments": spec.audience.segments,
        "max_per_week": spec.frequency_caps.max_per_week,
        "min_gap": spec.frequency_caps.min_days_between,
    }


# One customer in one round trip (real time): the row of ``customers`` (or none), the audience
# verdict and its reasons, and the channels consented to by the latest record before ``until``.
# The rules are the batch query's expressions above, for one customer: the parity test holds
# the two together at every cap boundary.
_ONE_CUSTOMER_SQL = """
with f as (select * from {customers} one_row where one_row.customer_id = %(customer)s::text),
recent as (
    select count(*) as sends_7d, max(decision_date) as last_send
    from ops.decisions
    where customer_id = %(customer)s::text
      and decision_date > %(d)s::date - 7 and decision_date < %(cap_end)s::date
),
consent as (
    select array_agg(channel) filter (where granted) as granted_channels
    from (select distinct on (channel) channel, granted from raw.consents
          where customer_id = %(customer)s::text and recorded_at < %(until)s
            and channel = any(%(channels)s::text[])
          order by channel, recorded_at desc) latest
)
select f.customer_id, f.segment, {columns},
       ('x' || substr(md5(%(name)s || ':' || f.customer_id), 1, 8))::bit(32)::bigint / 4294967296.0
           as holdout_draw,
       (f.age between %(min_age)s and %(max_age)s
        and f.income >= %(min_income)s
        and (%(segments)s::text[] is null or f.segment = any(%(segments)s::text[]))) as in_audience,
       exists (select 1 from ops.suppressions s
               where s.customer_id = %(customer)s::text and s.campaign_id in (0, %(cid)s)) as suppressed,
       r.sends_7d, r.last_send,
       r.sends_7d < %(max_per_week)s
           and (r.last_send is null or r.last_send <= %(d)s::date - %(min_gap)s) as under_caps,
       c.granted_channels
from recent r cross join consent c left join f on true
"""


def one_customer_sql(customers: str = MART_CUSTOMERS) -> str:
    """:func:`audience_sql`'s rules and the consents of one customer (``customer``) in one query.

    Parameters: :func:`audience_params` plus ``until`` (consents recorded before) and ``channels``
    (the campaign's channels). One row; its customer columns are null when ``customers`` has no
    row of the customer."""
    return _ONE_CUSTOMER_SQL.format(columns=customer_columns_sql("f"), customers=customers)


_CONSENT_SQL = """
select distinct on (customer_id, channel) customer_id, channel, granted
from raw.consents
where recorded_at < %(until)s and channel = any(%(channels)s::text[])
  and (%(customer)s::text is null or customer_id = %(customer)s::text)
  and {in_bucket}
order by customer_id, channel, recorded_at desc
""".format(in_bucket=in_bucket_sql("customer_id"))


def eligible_audience(
    conn: sa.Connection, campaign: Campaign, day: date, bucket: tuple[int, int] = (0, 1)
) -> tuple[pd.DataFrame, np.ndarray]:
    """The day's eligible customers and their allowed-arm mask.

    ``bucket`` (bucket, bucket count) reads that bucket's customers only (pipelines/shards.py);
    together the buckets hold exactly the customers of the whole audience.

    Returns
    -------
    customers : DataFrame, one row per eligible customer, ordered by customer_id
        customer_id, segment, segment_idx, the customer attributes, shard, is_control (bool).
    allowed : bool array of shape (n_customers, n_arms)
        Arms whose channel the customer consented to (arms without a channel: always).
    """
    customers, allowed = _eligible(conn, campaign, day, bucket)
    limit = campaign.spec.audience.max_customers
    if limit is not None and len(customers):
        # The subset is a rule over the whole audience: a bucket reads everyone's draws once
        # to find where the cut falls (only campaigns with max_customers pay for it).
        everyone = customers if bucket[1] == 1 else _eligible(conn, campaign, day, (0, 1))[0]
        if len(everyone) > limit:
            take = np.flatnonzero(_in_subset(customers, _subset_cut(everyone, limit)))
            customers, allowed = customers.iloc[take].reset_index(drop=True), allowed[take]
    customers["segment_idx"] = (
        customers["segment"].map({s: i for i, s in enumerate(SEGMENTS)}).astype(np.int64)
    )
    customers["is_control"] = customers["holdout_draw"].to_numpy() < campaign.spec.holdout_share
    return customers.drop(columns="holdout_draw"), allowed


def _eligible(
    conn: sa.Connection, campaign: Campaign, day: date, bucket: tuple[int, int]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The audience rules and consent, before the max_customers subset."""
    params = audience_params(campaign, day, cap_end=day, bucket=bucket)
    customers = read_frame(conn, audience_sql(), params)
    if customers.empty:
        return _empty_frame(), np.zeros((0, len(campaign.arm_ids)), dtype=bool)
    customers["customer_id"] = customers["customer_id"].astype(str)
    until = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)  # consents recorded by D's end
    allowed = consent_mask(conn, campaign, until, customers["customer_id"], bucket=bucket)
    keep = allowed.any(axis=1)
    return customers.loc[keep].reset_index(drop=True), allowed[keep]


def _subset_draw(customers: pd.DataFrame) -> np.ndarray:
    """A stable pseudo-random order for the max_customers subset: the holdout draw's fractional
    digits, scrambled so the subset keeps the control share (the low draws are the control group)."""
    return np.modf(customers["holdout_draw"].to_numpy() * 7919.0)[0]


def _subset_cut(everyone: pd.DataFrame, limit: int) -> tuple[float, str]:
    """The (draw, customer_id) of the last customer the subset of ``limit`` takes."""
    draw = _subset_draw(everyone)
    last = np.argsort(draw, kind="stable")[limit - 1]  # ties: customer_id order (the frame's)
    return float(draw[last]), str(everyone["customer_id"].iloc[last])


def _in_subset(customers: pd.DataFrame, cut: tuple[float, str]) -> np.ndarray:
    draw, ids = _subset_draw(customers), customers["customer_id"].to_numpy(dtype=str)
    return (draw < cut[0]) | ((draw == cut[0]) & (ids <= cut[1]))


def consent_mask(
    conn: sa.Connection,
    campaign: Campaign,
    until: datetime,
    customer_ids: pd.Series,
    one: bool = False,
    bucket: tuple[int, int] = (0, 1),
) -> np.ndarray:
    """Allowed arms, shape (n, n_arms): the arm's channel consented to by the latest record before
    ``until`` (arms without a channel: always). ``one``: read the only customer's records alone;
    ``bucket``: read the records of that bucket's customers only."""
    arm_channels = [p.get("channel") for p in campaign.arm_params]
    channels = sorted({c for c in arm_channels if c})
    n, k = len(customer_ids), len(arm_channels)
    if not channels:
        return np.ones((n, k), dtype=bool)
    only = str(customer_ids.iloc[0]) if one else None
    params = {
        "until": until,
        "channels": channels,
        "customer": only,
        "bucket": bucket[0],
        "n_buckets": bucket[1],
    }
    consents = read_frame(conn, _CONSENT_SQL, params)
    granted = np.zeros((n, len(channels)), dtype=bool)  # no record: no consent (opt-in)
    if not consents.empty:
        consents = consents[consents["granted"].astype(str).str.lower().isin(["t", "true"])]
        rows = pd.Index(customer_ids).get_indexer(consents["customer_id"].astype(str))
        cols = pd.Index(channels).get_indexer(consents["channel"])
        hit = rows >= 0
        granted[rows[hit], cols[hit]] = True
    channel_col = {c: i for i, c in enumerate(channels)}
    mask = np.ones((n, k), dtype=bool)
    for j, channel in enumerate(arm_channels):
        if channel:
            mask[:, j] = granted[:, channel_col[channel]]
    return mask


def _empty_frame() -> pd.DataFrame:
    columns = ["customer_id", "segment", *CUSTOMER_COLUMNS, *extra_feature_names(), "holdout_draw", "shard"]
    return pd.DataFrame(columns=columns)
