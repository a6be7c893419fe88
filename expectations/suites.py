"""Great Expectations suites, as code: what a landed batch and a send list must satisfy.

Loaded by ``pipelines.validation`` (from this file's path: ``expectations/`` is project
content next to ``dbt/``, not an installed package). Each expectation carries a short
``meta["name"]``: the name a failure reports. Queries embed only a date and an integer id.

- ``interactions_batch``: the rows of ``raw.interactions`` landed for logical date D
  (events of D, and late events of earlier days delivered in D's inbox).
- ``send_list``: the batch decisions of campaign C on day D (``ops.decisions``).

Volume checks (``volume_vs_recent_days``, ``volume_vs_recent_lists``): a batch must have at
least ``min_share`` (setting ``VOLUME_MIN_SHARE``, default 0.5) of the median row count of the
earlier batches that had rows within the last ``VOLUME_LOOKBACK_DAYS`` (14) days, rounded up:
earlier days of landed interactions, or earlier send lists of the same campaign. The check
applies only once ``VOLUME_MIN_HISTORY`` (3) such batches exist, so the first days of a
pipeline or a campaign (small, or empty because nothing was sent yet) pass; from then on an
empty or truncated day fails. Only days before D count: re-running D, or a backfill, sees the
same history.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, timedelta

import great_expectations as gx
import great_expectations.expectations as gxe

from pipelines.domain import EVENT_TYPES
from pipelines.ingest.schemas import latest_accepted

INTERACTIONS_BATCH = "interactions_batch"
SEND_LIST = "send_list"

# Control share tolerance: the larger of this and 3 standard errors of a binomial share.
MIN_CONTROL_TOLERANCE = 0.03


def _named(kind: type[gxe.Expectation], name: str, description: str, **kwargs: object) -> gxe.Expectation:
    return kind(meta={"name": name}, description=description, **kwargs)


# -- volume against recent batches ------------------------------------------------------------
@dataclass(frozen=True)
class VolumeFloor:
    """The fewest rows a batch may have, from the row counts of recent earlier batches."""

    min_rows: int
    median: float
    batches: int  # how many earlier batches the median is of
    min_share: float

    def explain(self, what: str) -> str:
        return (
            f"at least {self.min_rows} rows = {self.min_share:.0%} of the median {self.median:g} "
            f"of the {self.batches} earlier {what}"
        )


def volume_floor(counts: list[int], *, min_history: int, min_share: float) -> VolumeFloor | None:
    """The floor from earlier batches' row counts (empty ones ignored); None with too little history."""
    counts = [c for c in counts if c > 0]
    if len(counts) < min_history:
        return None
    median = float(statistics.median(counts))
    return VolumeFloor(math.ceil(min_share * median), median, len(counts), min_share)


def _volume_expectation(floor: VolumeFloor, name: str, what: str) -> gxe.Expectation:
    explanation = floor.explain(what)
    return gxe.ExpectTableRowCountToBeBetween(
        meta={"name": name, "explain": explanation},
        description=f"Volume: {explanation}.",
        min_value=floor.min_rows,
    )


def interactions_history_query(day: date, lookback_days: int) -> str:
    """Rows landed per logical date in the ``lookback_days`` days before ``day``."""
    start = day - timedelta(days=int(lookback_days))
    return f"""
select logical_date, count(*) as n from raw.interactions
where logical_date >= date '{start.isoformat()}' and logical_date < date '{day.isoformat()}'
group by logical_date
"""


def send_list_history_query(campaign_id: int, day: date, lookback_days: int) -> str:
    """Batch decisions per list date of one campaign in the ``lookback_days`` days before ``day``."""
    start = day - timedelta(days=int(lookback_days))
    return f"""
select decision_date, count(*) as n from ops.decisions
where campaign_id = {int(campaign_id)} and source = 'batch'
  and decision_date >= date '{start.isoformat()}' and decision_date < date '{day.isoformat()}'
group by decision_date
"""


# -- interactions_batch ---------------------------------------------------------------------
def interactions_batch_query(day: date) -> str:
    """The day's landed events, each with whether its arm belongs to its campaign."""
    return f"""
select
    i.event_id, i.decision_id, i.customer_id, i.campaign_id, i.arm_id, i.event_type,
    i.value, i.occurred_at, i.source_file,
    coalesce(a.campaign_id = i.campaign_id, false) as arm_in_campaign
from raw.interactions as i
left join ops.arms as a on a.arm_id = i.arm_id
where i.logical_date = date '{day.isoformat()}'
"""


def interactions_batch_suite(day: date, volume: VolumeFloor | None = None) -> gx.ExpectationSuite:
    latest = latest_accepted(day)
    e = _named
    expectations = [
        e(
            gxe.ExpectColumnValuesToNotBeNull,
            "event_id_present",
            "Every event has an event_id.",
            column="event_id",
        ),
        e(
            gxe.ExpectColumnValuesToBeUnique,
            "event_id_unique",
            "No event_id appears twice in the batch.",
            column="event_id",
        ),
        e(
            gxe.ExpectColumnValuesToNotBeNull,
            "decision_id_present",
            "Every event names its decision.",
            column="decision_id",
        ),
        e(
            gxe.ExpectColumnValuesToNotBeNull,
            "customer_id_present",
            "Every event names its customer.",
            column="customer_id",
        ),
        e(
            gxe.ExpectColumnValuesToBeInSet,
            "event_type_known",
            "event_type is one of pipelines.domain.EVENT_TYPES.",
            column="event_type",
            value_set=list(EVENT_TYPES),
        ),
        e(
            gxe.ExpectColumnValuesToNotBeNull,
            "occurred_at_present",
            "Every event has a timestamp.",
            column="occurred_at",
        ),
        e(
            gxe.ExpectColumnValuesToBeBetween,
            "occurred_at_not_in_future",
            # Late events (before D) are normal arrivals; only what ingestion would call the future fails.
            f"occurred_at is before the end of the logical date plus the grace: {latest.isoformat()}.",
            column="occurred_at",
            max_value=latest.to_pydatetime(),
            strict_max=True,
        ),
        e(
            gxe.ExpectColumnValuesToBeBetween,
            "value_non_negative",
            "Conversion values are >= 0.",
            column="value",
            min_value=0,
        ),
        e(
            gxe.ExpectColumnValuesToBeInSet,
            "arm_in_campaign",
            "The event's arm_id is an arm of the event's campaign (ops.arms).",
            column="arm_in_campaign",
            value_set=[True],
        ),
    ]
    if volume is not None:
        expectations.append(_volume_expectation(volume, "volume_vs_recent_days", "days"))
    return gx.ExpectationSuite(name=INTERACTIONS_BATCH, expectations=expectations)


# -- send_list ------------------------------------------------------------------------------
def send_list_query(campaign_id: int, day: date) -> str:
    """The campaign's batch decisions of the day, each with whether its arm may be sent."""
    return f"""
select
    d.decision_id, d.customer_id, d.arm_id, d.propensity, d.treatment_group,
    case when d.treatment_group = 'control' then 1 else 0 end as is_control,
    coalesce(a.campaign_id = d.campaign_id and a.active, false) as arm_allowed
from ops.decisions as d
left join ops.arms as a on a.arm_id = d.arm_id
where d.campaign_id = {int(campaign_id)}
  and d.decision_date = date '{day.isoformat()}'
  and d.source = 'batch'
"""


def control_share_bounds(holdout_share: float, n_rows: int) -> tuple[float, float]:
    """Accepted control share: holdout +- max(0.03, 3 standard errors), clipped to [0, 1]."""
    se = math.sqrt(holdout_share * (1.0 - holdout_share) / n_rows) if n_rows > 0 else 0.0
    tol = max(MIN_CONTROL_TOLERANCE, 3.0 * se)
    return max(0.0, holdout_share - tol), min(1.0, holdout_share + tol)


def send_list_suite(
    holdout_share: float, n_rows: int, volume: VolumeFloor | None = None
) -> gx.ExpectationSuite:
    low, high = control_share_bounds(holdout_share, n_rows)
    e = _named
    expectations = [
        e(
            gxe.ExpectTableRowCountToBeBetween,
            "list_not_empty",
            "The list has at least one row.",
            min_value=1,
        ),
        e(
            gxe.ExpectColumnValuesToNotBeNull,
            "customer_id_present",
            "Every row names a customer.",
            column="customer_id",
        ),
        e(
            gxe.ExpectColumnValuesToBeUnique,
            "one_row_per_customer",
            "A customer appears once in the list.",
            column="customer_id",
        ),
        e(
            gxe.ExpectColumnValuesToBeInSet,
            "arm_allowed",
            "Each row's arm belongs to the campaign and is active.",
            column="arm_allowed",
            value_set=[True],
        ),
        e(
            gxe.ExpectColumnValuesToNotBeNull,
            "propensity_present",
            "Every decision logs its propensity.",
            column="propensity",
        ),
        e(
            gxe.ExpectColumnValuesToBeBetween,
            "propensity_in_range",
            "Propensities are in (0, 1].",
            column="propensity",
            min_value=0,
            max_value=1,
            strict_min=True,
        ),
        e(
            gxe.ExpectColumnValuesToBeInSet,
            "treatment_group_known",
            "treatment_group is treatment or control.",
            column="treatment_group",
            value_set=["treatment", "control"],
        ),
        e(
            gxe.ExpectColumnMeanToBeBetween,
            "control_share",
            f"The control share is within [{low:.4f}, {high:.4f}] (holdout {holdout_share}, {n_rows} rows).",
            column="is_control",
            min_value=low,
            max_value=high,
        ),
    ]
    if volume is not None:
        expectations.append(_volume_expectation(volume, "volume_vs_recent_lists", "lists of the campaign"))
    return gx.ExpectationSuite(name=SEND_LIST, expectations=expectations)
