"""Fair-lending monitor: which offers and terms reach which customers, against who was eligible.

For one campaign and decision day D:

- the *eligible* customers are everyone the day's batch list decided, treatment and holdout
  alike (the audience rules put them there, not the policy);
- the *recipients* of an offer are the treatment customers whose arm carries it: a value of the
  campaign's offer parameters (``offer_type``, and its terms, ``discount``);
- per protected attribute the customer data holds (``gender``; ``age_band``, the segments' age
  bands, from the customer's latest snapshot up to D; and each proxy named in
  ``FAIRNESS_PROXY_FEATURES``, a categorical ``CUSTOMER_EXTRA_FEATURES`` column such as region),
  the share of each group among the recipients is set against its share among the eligible.

The *variance* of an offer is the total variation distance between the two group distributions:
the smallest share of recipients that would have to be exchanged for people of another group
for the recipients to look like the eligible audience. It is the shuffle distance behind Meta's
Variance Reduction System under its 2022 settlement with the US Department of Justice, whose
target was a variance of at most 10% for most ads. Its 95% interval is a seeded parametric
bootstrap of the recipients' group counts (the eligible audience is the whole population, not a
sample); a group's share among recipients has a Wilson interval.

An offer is flagged when even the interval's lower end exceeds ``FAIRNESS_MAX_VARIANCE``, or when
a group's share among recipients is significantly (upper Wilson bound) below
``FAIRNESS_MIN_SHARE_RATIO`` times its eligible share; offers with fewer than
``FAIRNESS_MIN_RECIPIENTS`` recipients are reported, never flagged. The monitor step raises one
``fair_lending:<parameter>=<value>:<attribute>`` alert per flagged offer and attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pipelines.db import read_frame
from pipelines.domain import AGE_BANDS

FAIR_LENDING = "fair_lending:"  # alert kind prefix: fair_lending:<parameter>=<value>:<attribute>
OFFER_PARAMETERS = ("offer_type", "discount")
ATTRIBUTES = ("gender", "age_band")
UNKNOWN = "unknown"  # a customer without a snapshot up to D, or without the attribute
BOOTSTRAP_DRAWS = 400
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Thresholds:
    """When an offer's distribution is flagged (see the module docstring)."""

    max_variance: float = 0.10
    min_share_ratio: float = 0.8
    min_recipients: int = 100

    @classmethod
    def from_settings(cls) -> Thresholds:
        from pipelines.settings import get_settings

        s = get_settings()
        return cls(s.fairness_max_variance, s.fairness_min_share_ratio, s.fairness_min_recipients)


def _age_band_sql(column: str) -> str:
    """The age band of ``column`` in SQL, the bands of pipelines/domain.py (lower-inclusive)."""
    cases = " ".join(f"when {column} >= {lower} then '{name}'" for name, lower in reversed(AGE_BANDS))
    return f"case {cases} else '{UNKNOWN}' end"


def proxy_features() -> tuple[str, ...]:
    """The configured proxy attributes (FAIRNESS_PROXY_FEATURES), checked against the settings."""
    from pipelines.settings import get_settings

    return tuple(n.strip() for n in get_settings().fairness_proxy_features.split(",") if n.strip())


def attributes() -> tuple[str, ...]:
    """The attributes the monitor groups by: gender, age band, then the configured proxies."""
    return ATTRIBUTES + proxy_features()


# One row per (arm, group, gender, age band[, proxies]) with its count. The attributes are those
# of the customer's latest snapshot up to D. A bank sends full extracts, so most customers are in
# the latest one, read by one hash join; only those missing from it are looked up one by one
# (raw.customers holds every snapshot: a lookup for all would cost an index probe per decision).
_COUNTS_SQL = """
with latest as (
    select max(snapshot_date) as snapshot_date from raw.customers where snapshot_date <= %(d)s
),
current as (
    select r.customer_id, r.gender, r.age, r.extra_features
    from raw.customers r join latest using (snapshot_date)
)
select d.arm_id, d.treatment_group,
       coalesce(c.gender, o.gender, '{unknown}') as gender,
       coalesce({age_band}, '{unknown}') as age_band{proxies},
       count(*) as n
from ops.decisions d
left join current c on c.customer_id = d.customer_id
left join lateral (
    select r.gender, r.age, r.extra_features from raw.customers r
    where c.customer_id is null and r.customer_id = d.customer_id and r.snapshot_date <= %(d)s
    order by r.snapshot_date desc limit 1
) o on true
where d.campaign_id = %(cid)s and d.decision_date = %(d)s and d.source = 'batch'
group by {group_by}
"""


def counts_sql(proxies: tuple[str, ...]) -> str:
    """:data:`_COUNTS_SQL` with one column per proxy attribute (names validated by the settings)."""
    columns = "".join(
        f",\n       coalesce(c.extra_features ->> '{p}', o.extra_features ->> '{p}', '{UNKNOWN}') as {p}"
        for p in proxies
    )
    return _COUNTS_SQL.format(
        unknown=UNKNOWN,
        age_band=_age_band_sql("coalesce(c.age, o.age)"),
        proxies=columns,
        group_by=", ".join(str(i) for i in range(1, 5 + len(proxies))),
    )


def decision_counts(conn: sa.Connection, campaign_id: int, day: date) -> pd.DataFrame:
    """The day's batch decisions counted by arm, treatment group and protected attributes, with
    the arm's offer parameters as columns."""
    counts = read_frame(conn, counts_sql(proxy_features()), {"cid": campaign_id, "d": day})
    arms = conn.execute(
        sa.text("select arm_id, params from ops.arms where campaign_id = :c"), {"c": campaign_id}
    ).all()
    params = pd.DataFrame(
        [{"arm_id": arm_id, **{p: v.get(p) for p in OFFER_PARAMETERS}} for arm_id, v in arms],
        columns=["arm_id", *OFFER_PARAMETERS],
    )
    return counts.merge(params, on="arm_id", how="left")


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Half the L1 distance between distributions ``p`` (..., k) and ``q`` (k,)."""
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(axis=-1)


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def variance_interval(recipients: np.ndarray, eligible_share: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile interval of the variance: recipients' counts redrawn from their own shares."""
    n = int(recipients.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, recipients / n, size=BOOTSTRAP_DRAWS) / n
    low, high = np.quantile(total_variation(draws, eligible_share), [0.025, 0.975])
    return float(low), float(high)


def _offer_attribute(eligible: pd.Series, recipients: pd.Series, thresholds: Thresholds, seed: int) -> dict:
    """The figures of one offer and attribute: ``eligible`` and ``recipients`` are counts per group."""
    groups = sorted(eligible.index.union(recipients.index))
    e = eligible.reindex(groups, fill_value=0).to_numpy(dtype=float)
    r = recipients.reindex(groups, fill_value=0).to_numpy(dtype=float)
    e_share, n = e / e.sum(), r.sum()
    variance = float(total_variation(r / n, e_share))
    low, high = variance_interval(r, e_share, seed)
    rows, short = [], []
    for i, group in enumerate(groups):
        lo, hi = wilson(r[i], n)
        ratio = (r[i] / n) / e_share[i] if e_share[i] > 0 else float("nan")
        rows.append(
            {
                "group": group,
                "eligible": int(e[i]),
                "eligible_share": float(e_share[i]),
                "recipients": int(r[i]),
                "recipient_share": float(r[i] / n),
                "recipient_share_low": lo,
                "recipient_share_high": hi,
                "share_ratio": float(ratio),
            }
        )
        if e_share[i] > 0 and hi < thresholds.min_share_ratio * e_share[i]:
            short.append(group)
    enough = n >= thresholds.min_recipients
    return {
        "recipients": int(n),
        "variance": variance,
        "variance_low": low,
        "variance_high": high,
        "groups": rows,
        "over_variance": bool(enough and low > thresholds.max_variance),
        "under_represented": short if enough else [],
    }


def campaign_fairness(
    conn: sa.Connection, campaign_id: int, day: date, thresholds: Thresholds | None = None
) -> dict:
    """The fair-lending figures of one campaign's list of ``day`` (module docstring)."""
    thresholds = thresholds or Thresholds.from_settings()
    counts = decision_counts(conn, campaign_id, day)
    offers: list[dict] = []
    for parameter in OFFER_PARAMETERS:
        treated = counts[(counts["treatment_group"] == "treatment") & counts[parameter].notna()]
        for value in sorted(treated[parameter].unique()):
            of_offer = treated[treated[parameter] == value]
            for attribute in attributes():
                seed = _seed(campaign_id, day, parameter, value, attribute)
                figures = _offer_attribute(
                    counts.groupby(attribute)["n"].sum(),
                    of_offer.groupby(attribute)["n"].sum(),
                    thresholds,
                    seed,
                )
                figures["flagged"] = figures["over_variance"] or bool(figures["under_represented"])
                offers.append({"parameter": parameter, "value": value, "attribute": attribute, **figures})
    return {
        "campaign_id": campaign_id,
        "date": day.isoformat(),
        "eligible": int(counts["n"].sum()),
        "treatment": int(counts.loc[counts["treatment_group"] == "treatment", "n"].sum()),
        "thresholds": thresholds.__dict__,
        "offers": offers,
    }


def _seed(campaign_id: int, day: date, *parts: str) -> int:
    """A bootstrap seed fixed by what is measured: a re-run gives the same interval."""
    import hashlib

    key = ":".join([str(campaign_id), day.isoformat(), *parts]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def latest_list_day(conn: sa.Connection, campaign_id: int, name: str) -> date:
    """The day of the campaign's latest send list; NotFound when it has none."""
    from pipelines.errors import NotFound

    day = conn.execute(
        sa.text("select max(list_date) from ops.send_lists where campaign_id = :c"), {"c": campaign_id}
    ).scalar()
    if day is None:
        raise NotFound(f"campaign {name!r} has no send list yet")
    return day


def fairness_alerts(conn: sa.Connection, day: date, thresholds: Thresholds | None = None) -> list[dict]:
    """The monitor's fair-lending alerts of ``day``: one per flagged offer and attribute."""
    thresholds = thresholds or Thresholds.from_settings()
    campaigns = conn.execute(
        sa.text(
            """select distinct c.campaign_id, c.name from ops.send_lists s
               join ops.campaigns c using (campaign_id) where s.list_date = :d order by 1"""
        ),
        {"d": day},
    ).all()
    alerts = []
    for campaign_id, name in campaigns:
        for offer in campaign_fairness(conn, campaign_id, day, thresholds)["offers"]:
            if offer["flagged"]:
                alerts.append(_alert(campaign_id, name, offer, thresholds))
    return alerts


def _alert(campaign_id: int, name: str, offer: dict, thresholds: Thresholds) -> dict:
    what = f"{offer['parameter']}={offer['value']}"
    reasons = []
    if offer["over_variance"]:
        reasons.append(
            f"variance {offer['variance']:.1%} (95% CI {offer['variance_low']:.1%}-"
            f"{offer['variance_high']:.1%}) above {thresholds.max_variance:.0%}"
        )
    for group in offer["under_represented"]:
        row = next(g for g in offer["groups"] if g["group"] == group)
        reasons.append(
            f"{group} {row['recipient_share']:.1%} of recipients against {row['eligible_share']:.1%} "
            f"of the eligible (below {thresholds.min_share_ratio:.0%} of it)"
        )
    return {
        "campaign_id": campaign_id,
        "kind": f"{FAIR_LENDING}{what}:{offer['attribute']}",
        "severity": "warning",
        "message": f"{name}: {what} by {offer['attribute']}: " + "; ".join(reasons),
        "details": {
            k: offer[k]
            for k in (
                "parameter",
                "value",
                "attribute",
                "recipients",
                "variance",
                "variance_low",
                "variance_high",
                "under_represented",
                "groups",
            )
        },
    }
