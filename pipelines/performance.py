"""How a campaign performs, for the API's read endpoints (and the dashboard to come).

:func:`campaign_performance` pools the decisions of a window of decision days, batch and real
time alike, straight from ``ops.decisions`` and ``raw.interactions`` (so a real-time decision
or event counts at once, not at the next daily build), attributed by the marts' rule
(dbt/models/intermediate/int_decisions_attributed.sql, pipelines/attribution.py): a day window
of w days gives a decision of UTC day d the events of days [d, d + w], matured once day d + w is
over; a minute or hour window gives it the events of [decided_at, decided_at + w]. That
rule is written here once, in :data:`_ATTRIBUTED_CTES`; a change of the marts' rule changes that
query too.

:func:`parameter_performance` turns (segment x arm) statistics — the service's live snapshot,
or the mart when the campaign is not in it — into Beta posteriors per arm and per parameter
value, with the probability of being best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from pipelines.attribution import AttributionWindow
from pipelines.campaign_spec import arm_key
from pipelines.campaign_store import Campaign, load_campaign_by_id
from pipelines.db import read_frame
from pipelines.decide import segment_stats
from pipelines.domain import PARAMETERS, SEGMENTS
from pipelines.errors import UserError
from pipelines.monitor import _estimated_regret
from pipelines.realtime.snapshot import Snapshot, has_table

DEFAULT_DAYS = 30
MAX_DAYS = 3660
LIFT_METHOD = "newcombe_wilson"  # Newcombe's hybrid score interval (method 10, 1998)
PROB_BEST_DRAWS = 20_000  # Monte Carlo standard error <= 0.5 / sqrt(draws) = 0.0035
PROB_BEST_SEED = 20_261_201  # fixed: the same statistics give the same probabilities


@dataclass(frozen=True)
class Window:
    """Decision days ``since`` .. ``until``, both included."""

    since: date
    until: date

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1


def resolve_window(today: date, since: date | None, until: date | None, days: int | None) -> Window:
    """The window a request names: ``until`` defaults to ``today``; ``since`` to ``days``
    (default :data:`DEFAULT_DAYS`) days up to ``until``. UserError naming the bad parameter."""
    if since is not None and days is not None:
        raise UserError("days: give since or days, not both")
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise UserError(f"days: must be between 1 and {MAX_DAYS}, got {days}")
    until = until if until is not None else today
    if since is None:
        try:
            since = until - timedelta(days=(days or DEFAULT_DAYS) - 1)
        except OverflowError:
            raise UserError(
                f"until: {until} leaves no room for {days or DEFAULT_DAYS} days before it"
            ) from None
    if since > until:
        raise UserError(f"since: {since} is after until ({until})")
    if (until - since).days + 1 > MAX_DAYS:
        raise UserError(f"since: the window may span at most {MAX_DAYS} days, got {(until - since).days + 1}")
    return Window(since, until)


# Per (group, channel): the window's decisions with their attributed events, by the rule of
# pipelines/attribution.py: a day window attributes the events of UTC days [d, d + w] and matures
# at the midnight after day d + w; a minute or hour window attributes events in
# [decided_at, decided_at + w] and matures at its end. Events land no earlier than the day before they
# occur (an inbox of day D takes the first hour of D + 1; real-time ones land when received,
# after the decision), so ``logical_date >= since - 1`` loses none and lets the BRIN index of
# raw.interactions skip the older days. Conversions and rates count matured decisions only:
# counting early successes but not early failures would inflate recent rates (the marts' rewards
# are null while pending; campaign_daily_kpis divides by every send, pending ones included).
_ATTRIBUTED_CTES = """
with decided as (
    select decision_id, arm_id, decision_date, treatment_group, explored, segment, propensity,
           decided_at, decision_date + %(w)s as window_end_date,
           case when %(by_day)s
                then cast(decision_date + %(w)s + 1 as timestamp) at time zone 'UTC'
                else decided_at + %(s)s * interval '1 second' end as matures_at
    from ops.decisions
    where campaign_id = %(c)s and decision_date between %(since)s and %(until)s
),
attributed as (
    select x.decision_id,
           bool_or(i.event_type = 'conversion') as converted,
           bool_or(i.event_type = 'open') as opened,
           bool_or(i.event_type = 'click') as clicked,
           bool_or(i.event_type = 'view') as viewed,
           sum(case when i.event_type = 'dwell' then i.value else 0 end) as dwell_seconds,
           sum(case when i.event_type <> 'conversion' then 0
                    when i.value > 0 then i.value
                    else %(conversion_value)s end) as revenue
    from decided x
    join raw.interactions i on i.decision_id = x.decision_id
    where i.logical_date >= %(since)s::date - 1
      and case when %(by_day)s
               then cast(i.occurred_at at time zone 'UTC' as date)
                    between x.decision_date and x.window_end_date
               else i.occurred_at between x.decided_at and x.matures_at end
    group by x.decision_id
)
"""
_ATTRIBUTED_SELECT = """
select {by} x.treatment_group, coalesce(a.params ->> 'channel', a.channel) as channel,
       count(*) as sends,
       count(*) filter (where x.matures_at <= %(now)s) as matured,
       count(*) filter (where x.matures_at <= %(now)s and f.converted) as conversions,
       count(*) filter (where x.matures_at <= %(now)s and f.opened) as opens,
       count(*) filter (where x.matures_at <= %(now)s and f.clicked) as clicks,
       count(*) filter (where x.matures_at <= %(now)s and f.viewed) as views,
       coalesce(sum(f.dwell_seconds) filter (where x.matures_at <= %(now)s), 0) as dwell_seconds,
       count(*) filter (where x.explored) as explored,
       coalesce(sum(f.revenue), 0) as revenue
from decided x
join ops.arms a on a.arm_id = x.arm_id
left join attributed f on f.decision_id = x.decision_id
group by {group_by}
"""
_ATTRIBUTED_SQL = _ATTRIBUTED_CTES + _ATTRIBUTED_SELECT.format(by="", group_by="1, 2")
# The same per decision day, in one query (the dashboard's daily chart: a query per day would read
# every later day's events again each time).
_ATTRIBUTED_BY_DAY_SQL = _ATTRIBUTED_CTES + _ATTRIBUTED_SELECT.format(
    by="x.decision_date,", group_by="1, 2, 3"
)
# One row per decision of the window, by the same rule (the dashboard's diagnostics need the
# decisions one by one: allocation per day, off-policy estimates).
_DECISION_OUTCOMES_SQL = _ATTRIBUTED_CTES + """
select x.decision_id, x.decision_date, x.treatment_group, x.arm_id, x.segment, x.propensity,
       x.explored::int as explored, (x.matures_at <= %(now)s)::int as matured,
       (x.matures_at <= %(now)s and coalesce(f.converted, false))::int as converted
from decided x
left join attributed f on f.decision_id = x.decision_id
order by x.decision_date, x.decision_id
"""


def _matured_through(window: AttributionWindow, now: datetime) -> date:
    """The last decision day all of whose decisions have matured at ``now``."""
    if window.by_day:
        return now.date() - timedelta(days=window.amount + 1)
    return (now - window.length).date() - timedelta(days=1)


def campaign_performance(engine: sa.Engine, campaign: Campaign, window: Window, *, now: datetime) -> dict:
    """Sends, conversions and rates per group, lift vs the holdout with a 95% CI, revenue, cost,
    ROI, exploration share, the regret estimate and the pending decisions of ``window``."""
    spec = campaign.spec
    with engine.connect() as conn:
        frame = read_frame(conn, _ATTRIBUTED_SQL, _attribution_params(campaign, window, now))
        regret = regret_estimate(conn, campaign.campaign_id)
    groups = _groups(campaign, frame)
    treatment, control = groups["treatment"], groups["control"]
    revenue = treatment["revenue"] + control["revenue"]
    cost = treatment["cost"] + control["cost"]
    return {
        "campaign_id": campaign.campaign_id,
        "campaign": spec.name,
        "window": {"since": window.since, "until": window.until, "days": window.days},
        "as_of": now,
        "attribution_window_days": spec.attribution_window_days,
        "matured_through": _matured_through(spec.window, now),
        **groups,
        "lift": lift(
            treatment["conversions"], treatment["matured"], control["conversions"], control["matured"]
        ),
        "exploration_share": treatment["explored"] / treatment["sends"] if treatment["sends"] else None,
        "revenue": revenue,
        "cost": cost,
        "roi": (revenue - cost) / cost if cost else None,
        "regret": regret,
        "pending": treatment["pending"] + control["pending"],
    }


def performance_by_day(engine: sa.Engine, campaign: Campaign, window: Window, *, now: datetime) -> dict:
    """Per decision day of ``window`` (days without a decision left out), each group's figures as
    :func:`campaign_performance` gives them for a one-day window, from one query."""
    with engine.connect() as conn:
        frame = read_frame(conn, _ATTRIBUTED_BY_DAY_SQL, _attribution_params(campaign, window, now))
    return {day: _groups(campaign, rows) for day, rows in frame.groupby("decision_date", sort=True)}


def _groups(campaign: Campaign, frame: Any) -> dict:
    """Rows per (group, channel) -> the figures of each group, with the channels' costs."""
    frame = frame.assign(
        cost=frame["sends"] * frame["channel"].map(campaign.spec.channel_costs).fillna(0.0).astype(float)
    )
    return {g: _group(frame[frame["treatment_group"] == g]) for g in ("treatment", "control")}


def decision_outcomes(engine: sa.Engine, campaign: Campaign, window: Window, *, now: datetime) -> Any:
    """The window's decisions one by one (decision_id, decision_date, treatment_group, arm_id,
    segment, propensity, explored, matured, converted), attributed as :func:`campaign_performance`
    counts them: ``converted`` is false while a decision is pending."""
    with engine.connect() as conn:
        return read_frame(conn, _DECISION_OUTCOMES_SQL, _attribution_params(campaign, window, now))


def _attribution_params(campaign: Campaign, window: Window, now: datetime) -> dict:
    spec = campaign.spec
    return {
        "c": campaign.campaign_id,
        "since": window.since,
        "until": window.until,
        "by_day": spec.window.by_day,
        "w": spec.window.amount if spec.window.by_day else 0,
        "s": spec.window.seconds,
        "now": now,
        "conversion_value": spec.reward.conversion_value,
    }


def _group(rows: Any) -> dict:
    sends, matured = int(rows["sends"].sum()), int(rows["matured"].sum())
    conversions = int(rows["conversions"].sum())
    return {
        **_engagement(rows, matured),
        "sends": sends,
        "matured": matured,
        "pending": sends - matured,
        "conversions": conversions,
        "conversion_rate": conversions / matured if matured else None,
        "explored": int(rows["explored"].sum()),
        "revenue": float(rows["revenue"].sum()),
        "cost": float(rows["cost"].sum()),
    }


def _engagement(rows: Any, matured: int) -> dict:
    """The funnel before the conversion, over matured decisions (as conversions are): the share
    of sends opened, clicked (click-through) and viewed, clicks per open, and dwell seconds per
    send and per view."""
    opens, clicks, views = (int(rows[k].sum()) for k in ("opens", "clicks", "views"))
    dwell = float(rows["dwell_seconds"].sum())

    def share(part: float, whole: int) -> float | None:
        return part / whole if whole else None

    return {
        "opens": opens,
        "clicks": clicks,
        "views": views,
        "dwell_seconds": dwell,
        "open_rate": share(opens, matured),
        "click_through_rate": share(clicks, matured),
        "click_to_open_rate": share(clicks, opens),
        "view_rate": share(views, matured),
        "dwell_seconds_per_send": share(dwell, matured),
        "dwell_seconds_per_view": share(dwell, views),
    }


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """Wilson's 95% score interval of a proportion (n > 0)."""
    from scipy import stats  # ~1 s to import: on the first request, not at every worker's start

    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def lift(x1: int, n1: int, x0: int, n0: int) -> dict:
    """Treatment minus control conversion rate (matured decisions) with Newcombe's 95% interval:
    it combines the groups' Wilson intervals, and stays sensible with few or no conversions
    (where the normal approximation collapses to a zero width)."""
    empty = [name for name, n in (("treatment", n1), ("control", n0)) if n == 0]
    if empty:
        none = dict.fromkeys(("absolute", "ci_low", "ci_high", "relative"))
        reason = f"no matured {' or '.join(empty)} decision in the window"
        return none | {"method": LIFT_METHOD, "reason": reason}
    p1, p0 = x1 / n1, x0 / n0
    (l1, u1), (l0, u0) = wilson_interval(x1, n1), wilson_interval(x0, n0)
    diff = p1 - p0
    return {
        "absolute": diff,
        "ci_low": diff - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
        "ci_high": diff + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2),
        "relative": p1 / p0 - 1 if p0 else None,
        "method": LIFT_METHOD,
        "reason": None,
    }


def regret_estimate(conn: sa.Connection, campaign_id: int) -> dict:
    """pipelines.monitor's estimate (all matured decisions as of the last daily build), or why none."""
    if not has_table(conn, "analytics.arm_stats"):
        return {"estimate": None, "reason": "no daily build yet (analytics.arm_stats does not exist)"}
    estimate = _estimated_regret(conn).get(campaign_id)
    if estimate is None:
        return {"estimate": None, "reason": "the campaign has no arm in the last daily build"}
    return {"estimate": estimate, "reason": None}


# -- posteriors per arm and per parameter value ---------------------------------------------
def learning_statistics(
    engine: sa.Engine, campaign_id: int, snapshot: Snapshot | None, refreshed_at: datetime | None
) -> tuple[Campaign, np.ndarray, np.ndarray, dict]:
    """(campaign, matured sends, reward sums, where they come from): the service's snapshot, so
    the figures are what it decides from (the mart plus matured real-time feedback); for a
    campaign not in it (not active today, or no engine loaded), the ``segment_arm_stats`` mart.
    NotFound naming an unknown campaign."""
    state = snapshot.campaigns.get(campaign_id) if snapshot is not None else None
    if state is not None:
        pulls, rewards = snapshot.stats(campaign_id)
        source = {
            "source": "service_snapshot",
            "marts_as_of": snapshot.marts_as_of,
            "realtime_matured_through": state.folded_through,
            "refreshed_at": refreshed_at,
        }
        return state.campaign, pulls, rewards, source
    campaign = load_campaign_by_id(engine, campaign_id)
    with engine.connect() as conn:
        built = has_table(conn, "analytics.segment_arm_stats")
        if built:
            pulls, rewards = segment_stats(conn, campaign)
        else:  # no daily build yet: the priors alone
            pulls = np.zeros((len(SEGMENTS), len(campaign.arm_ids)))
            rewards = np.zeros_like(pulls)
        as_of = conn.execute(sa.text("select max(list_date) from ops.send_lists")).scalar() if built else None
    source = {"source": "marts", "marts_as_of": as_of, "realtime_matured_through": None, "refreshed_at": None}
    return campaign, pulls, rewards, source


def policy_prior(campaign: Campaign) -> tuple[float, float]:
    """The base Beta prior of the campaign's policy (prior_alpha, prior_beta; 1, 1 without one, as
    the arm_stats mart). Summed over segments, the pooled prior's borrowing between segments has
    nothing left to borrow: the base prior is what Thompson sampling would use on these sums."""
    params = campaign.spec.policy.params  # validated: only a policy with a prior accepts these
    return float(params.get("prior_alpha", 1.0)), float(params.get("prior_beta", 1.0))


def prob_best(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """P(each Beta(alpha, beta) is the largest), by seeded Monte Carlo (:data:`PROB_BEST_DRAWS`
    draws, :data:`PROB_BEST_SEED`): the same posteriors give the same answer. Ties split evenly."""
    rng = np.random.default_rng(PROB_BEST_SEED)
    draws = rng.beta(alpha, beta, size=(PROB_BEST_DRAWS, len(alpha)))
    best = draws == draws.max(axis=1, keepdims=True)
    return (best / best.sum(axis=1, keepdims=True)).mean(axis=0)


def posteriors(
    sends: np.ndarray, matured: np.ndarray, rewards: np.ndarray, prior: tuple[float, float]
) -> list[dict]:
    """One row per entry: sends, matured, rewards, posterior mean, 95% equal-tailed credible
    interval and probability of being best among the entries."""
    from scipy import stats

    alpha = prior[0] + rewards
    beta = prior[1] + np.clip(matured - rewards, 0.0, None)
    low, high = stats.beta.ppf([[0.025], [0.975]], alpha, beta)
    best = prob_best(alpha, beta)
    return [
        {
            "sends": int(sends[k]),
            "matured": float(matured[k]),
            "rewards": float(rewards[k]),
            "posterior_alpha": float(alpha[k]),
            "posterior_beta": float(beta[k]),
            "posterior_mean": float(alpha[k] / (alpha[k] + beta[k])),
            "ci_low": float(low[k]),
            "ci_high": float(high[k]),
            "prob_best": float(best[k]),
        }
        for k in range(len(alpha))
    ]


def parameter_performance(
    engine: sa.Engine, campaign: Campaign, pulls: np.ndarray, rewards: np.ndarray, statistics: dict
) -> dict:
    """Posteriors of the campaign's active arms from ``pulls``/``rewards`` (matured sends and
    reward sums, shape (n_segments, n_arms), e.g. the service's snapshot), and of each parameter
    value pooled over the arms that have it (channel=email: every email arm's evidence summed;
    its probability of being best is among the values of the same parameter). ``statistics``
    says where the figures come from and as of when; it is returned as given."""
    arm_ids = np.asarray(campaign.arm_ids)
    matured, reward_sum = pulls.sum(axis=0), np.minimum(rewards, pulls).sum(axis=0)
    sends = _sends_per_arm(engine, campaign.campaign_id, arm_ids)
    prior = policy_prior(campaign)
    arms = [
        {
            "arm_id": int(a),
            "arm_key": arm_key(p),
            "parameters": p,
            "is_default": int(a) == campaign.control_arm_id,
        }
        | row
        for a, p, row in zip(
            arm_ids, campaign.arm_params, posteriors(sends, matured, reward_sum, prior), strict=True
        )
    ]
    values = []
    for name in (n for n in PARAMETERS if n in campaign.spec.parameters):
        # values with no active arm (all excluded) are not on offer: left out
        levels = [v for v in campaign.spec.parameters[name] if any(p[name] == v for p in campaign.arm_params)]
        has = np.array([[p[name] == v for p in campaign.arm_params] for v in levels], dtype=float)
        rows = posteriors(has @ sends, has @ matured, has @ reward_sum, prior)
        values += [
            {"parameter": name, "value": v, "arms": int(h.sum())} | r
            for v, h, r in zip(levels, has, rows, strict=True)
        ]
    return posterior_view(campaign, statistics) | {"arms": arms, "parameters": values}


def posterior_view(campaign: Campaign, statistics: dict) -> dict:
    """What every view of the posteriors says about them: the campaign, its reward, the prior,
    how P(best) is computed and where the statistics come from."""
    prior = policy_prior(campaign)
    return {
        "campaign_id": campaign.campaign_id,
        "campaign": campaign.spec.name,
        "reward_kind": campaign.spec.reward.kind,
        "prior": {"alpha": prior[0], "beta": prior[1]},
        "prob_best_method": f"monte_carlo ({PROB_BEST_DRAWS} draws, seed {PROB_BEST_SEED})",
        "statistics": statistics,
    }


def _sends_per_arm(engine: sa.Engine, campaign_id: int, arm_ids: np.ndarray) -> np.ndarray:
    """Every logged decision per arm (batch and real time, treatment and control, pending too)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select arm_id, count(*) from ops.decisions where campaign_id = :c group by arm_id"),
            {"c": campaign_id},
        ).all()
    counts = dict(rows)
    return np.array([counts.get(int(a), 0) for a in arm_ids], dtype=float)
